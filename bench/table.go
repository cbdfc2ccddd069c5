package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the report as a table: one line per figure with its target, whether it was
// met and, for throughputs, its fraction of the ceiling.
func WriteTable(w io.Writer, rep *Report) error {
	m := rep.Machine
	mode := "full sizes"
	if rep.Quick {
		mode = "QUICK sizes (--quick: small counts, figures are indicative only)"
	}
	fmt.Fprintf(w, "aviso bench — %s — %d CPUs %s, %s/%s, %s, aviso %s\n", mode, m.CPUs, m.CPUModel,
		m.OS, m.Arch, m.GoVersion, m.AvisoVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tnodes\tscenario\tmetric\tvalue\tunit\t×ceiling\ttarget\tmet\tcount\t")
	for _, r := range rep.Results {
		of := ""
		if r.OfCeiling > 0 {
			of = fmt.Sprintf("%.2f", r.OfCeiling)
		}
		met := ""
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		count := thousands(r.Count) + "/" + thousands(r.Expected)
		if !r.Complete {
			count += " INCOMPLETE"
		}
		store, nodes := r.Store, "-"
		if store == "" {
			store = "-"
		}
		if r.Nodes > 0 {
			nodes = fmt.Sprint(r.Nodes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", store, nodes, r.Scenario, r.Metric,
			formatValue(r.Value), r.Unit, of, r.Target.String(), met, count)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r.Note != "" {
			store := r.Store
			if store != "" {
				store += " "
			}
			fmt.Fprintf(w, "  %s%s %s: %s\n", store, r.Scenario, r.Metric, r.Note)
		}
	}
	_, err := fmt.Fprintf(w, "ran %.1f s; ceiling %s req/s\n", rep.Seconds, formatValue(rep.Ceiling))
	return err
}
