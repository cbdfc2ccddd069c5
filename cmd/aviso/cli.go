package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/client"
)

// The API verbs: aviso <noun> <verb> [flags] [args], on the Go client. Every verb reads the
// server from --server (AVISO_URL, default http://127.0.0.1:8080) and the key from --key
// (AVISO_KEY); tenant-scoped nouns take --tenant (AVISO_TENANT). --output table (default) or
// json. Each verb's --help shows an example.

// verb is one CLI verb. define declares its flags and returns what runs it.
type verb struct {
	name, args, summary, example string
	tenant                       bool // scoped to --tenant
	define                       func(fs *flag.FlagSet) func(c *cli, args []string) error
}

// cli is what a verb runs with.
type cli struct {
	ctx    context.Context
	api    *client.Client
	tenant string
	out    io.Writer
	json   bool
}

// nouns are the API's resources, with their verbs.
var nouns = map[string][]verb{
	"tenants":     tenantVerbs,
	"event-types": eventTypeVerbs,
	"endpoints":   endpointVerbs,
	"events":      eventVerbs,
	"deliveries":  deliveryVerbs,
}

func (m *Main) nounUsage(noun string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: aviso %s <verb> [flags] [args]\n\nVerbs:\n", noun)
	for _, v := range nouns[noun] {
		fmt.Fprintf(&b, "  %-14s %s\n", v.name, v.summary)
	}
	fmt.Fprintf(&b, "\nRun 'aviso %s <verb> --help' for its flags and an example.\n", noun)
	return b.String()
}

// parseAPI reads `aviso <noun> <verb> …`.
func (m *Main) parseAPI(noun string, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(m.stdout, m.nounUsage(noun))
		if len(args) == 0 {
			return fmt.Errorf("%s: no verb given", noun)
		}
		return flag.ErrHelp
	}
	var v *verb
	for i := range nouns[noun] {
		if nouns[noun][i].name == args[0] {
			v = &nouns[noun][i]
		}
	}
	if v == nil {
		fmt.Fprint(m.stderr, m.nounUsage(noun))
		return fmt.Errorf("%s: unknown verb %q", noun, args[0])
	}
	fs := m.flagSet(noun + " " + v.name)
	url := fs.String("server", m.envString("AVISO_URL", "http://127.0.0.1:8080"), "the server's URL (env AVISO_URL)")
	key := fs.String("key", m.getenv("AVISO_KEY"), "API key: root or tenant (env AVISO_KEY)")
	output := fs.String("output", m.envString("AVISO_OUTPUT", "table"), "table or json (env AVISO_OUTPUT)")
	var tenant *string
	if v.tenant {
		tenant = fs.String("tenant", m.getenv("AVISO_TENANT"), "the tenant (env AVISO_TENANT)")
	}
	run := v.define(fs)
	fs.Usage = func() {
		fmt.Fprintf(m.stderr, "Usage: aviso %s %s [flags] %s\n\n%s.\n\nExample:\n  %s\n\nFlags:\n", noun, v.name, v.args, v.summary, v.example)
		fs.PrintDefaults()
	}
	if err := fs.Parse(interleave(fs, args[1:])); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("--output must be table or json, not %q", *output)
	}
	if *key == "" {
		return fmt.Errorf("%s %s: an API key is required: --key or AVISO_KEY", noun, v.name)
	}
	if v.tenant && *tenant == "" {
		return fmt.Errorf("%s %s: --tenant or AVISO_TENANT is required", noun, v.name)
	}
	rest := fs.Args()
	if want := strings.Count(v.args, "<"); len(rest) != want {
		return fmt.Errorf("%s %s takes %d argument(s) %s, got %d (see --help)", noun, v.name, want, v.args, len(rest))
	}
	m.run = func(ctx context.Context) error {
		c := &cli{ctx: ctx, api: client.New(*url, *key), out: m.stdout, json: *output == "json"}
		if tenant != nil {
			c.tenant = *tenant
		}
		return run(c, rest)
	}
	return nil
}

// interleave moves flags given after the positional arguments before them, so that both
// `aviso tenants get acme --output json` and `aviso tenants get --output json acme` work.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(flags, pos...)
}

// show writes v as JSON, or as a table of the columns of each row.
func (c *cli) show(v any, header []string, rows [][]string) error {
	if c.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// collect gathers an iterator's items, at most limit (0: all).
func collect[T any](seq func(func(T, error) bool), limit int) ([]T, error) {
	out := []T{}
	for v, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func tsp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return ts(*t)
}

func kv(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// parseKV reads "a=1,b=2".
func parseKV(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, p := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", p)
		}
		out[k] = v
	}
	return out, nil
}

// jsonArg reads JSON given inline or, as @file, from a file ("@-": standard input).
func jsonArg(s string) (json.RawMessage, error) {
	b := []byte(s)
	if strings.HasPrefix(s, "@") {
		var err error
		if s == "@-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(s[1:])
		}
		if err != nil {
			return nil, err
		}
	}
	if !json.Valid(b) {
		return nil, errors.New("not valid JSON")
	}
	return b, nil
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

var tenantVerbs = []verb{
	{name: "list", summary: "List tenants (root key)", example: "aviso tenants list --output json",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			limit := fs.Int("limit", 0, "at most this many (0: all)")
			return func(c *cli, _ []string) error {
				tenants, err := collect(c.api.Tenants(c.ctx), *limit)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, t := range tenants {
					rows = append(rows, []string{t.ID, t.Name, kv(t.Metadata), ts(t.CreatedAt)})
				}
				return c.show(tenants, []string{"ID", "NAME", "METADATA", "CREATED"}, rows)
			}
		}},
	{name: "get", args: "<tenant>", summary: "Show a tenant", example: "aviso tenants get acme",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				t, err := c.api.GetTenant(c.ctx, a[0])
				if err != nil {
					return err
				}
				return c.show(t, []string{"ID", "NAME", "METADATA", "CREATED"}, [][]string{{t.ID, t.Name, kv(t.Metadata), ts(t.CreatedAt)}})
			}
		}},
	{name: "create", summary: "Create a tenant (root key)", example: "aviso tenants create --id acme --name 'ACME S.A.' --metadata plan=pyme",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			id := fs.String("id", "", "the tenant's id (default: minted)")
			name := fs.String("name", "", "its name (required)")
			meta := fs.String("metadata", "", "key=value,…")
			return func(c *cli, _ []string) error {
				md, err := parseKV(*meta)
				if err != nil {
					return fmt.Errorf("--metadata: %w", err)
				}
				t, err := c.api.CreateTenant(c.ctx, client.TenantInput{ID: *id, Name: *name, Metadata: md})
				if err != nil {
					return err
				}
				return c.show(t, []string{"ID", "NAME"}, [][]string{{t.ID, t.Name}})
			}
		}},
	{name: "update", args: "<tenant>", summary: "Rename a tenant or replace its metadata (root key)", example: "aviso tenants update acme --name 'ACME SpA'",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			name := fs.String("name", "", "new name")
			meta := fs.String("metadata", "", "new metadata key=value,… (replaces it)")
			return func(c *cli, a []string) error {
				var p client.TenantPatch
				if *name != "" {
					p.Name = name
				}
				if *meta != "" {
					md, err := parseKV(*meta)
					if err != nil {
						return fmt.Errorf("--metadata: %w", err)
					}
					p.Metadata = &md
				}
				t, err := c.api.UpdateTenant(c.ctx, a[0], p)
				if err != nil {
					return err
				}
				return c.show(t, []string{"ID", "NAME", "METADATA"}, [][]string{{t.ID, t.Name, kv(t.Metadata)}})
			}
		}},
	{name: "delete", args: "<tenant>", summary: "Delete a tenant and everything it owns (root key)", example: "aviso tenants delete acme",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				if err := c.api.DeleteTenant(c.ctx, a[0]); err != nil {
					return err
				}
				return c.show(map[string]string{"deleted": a[0]}, []string{"DELETED"}, [][]string{{a[0]}})
			}
		}},
	{name: "create-key", args: "<tenant>", summary: "Issue an API key scoped to a tenant (shown once)", example: "aviso tenants create-key acme",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				k, err := c.api.CreateKey(c.ctx, a[0])
				if err != nil {
					return err
				}
				return c.show(k, []string{"KEY", "ID", "TENANT"}, [][]string{{k.Key, k.ID, k.TenantID}})
			}
		}},
	{name: "portal-link", args: "<tenant>", summary: "A signed link to the tenant portal", example: "aviso tenants portal-link acme --ttl 1h",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			ttl := fs.Duration("ttl", 0, "how long the link works (default 15m, at most 24h)")
			return func(c *cli, a []string) error {
				l, err := c.api.PortalLink(c.ctx, a[0], *ttl)
				if err != nil {
					return err
				}
				return c.show(l, []string{"URL", "EXPIRES"}, [][]string{{l.URL, ts(l.ExpiresAt)}})
			}
		}},
}

var eventTypeVerbs = []verb{
	{name: "list", summary: "List the event catalog", example: "aviso event-types list",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, _ []string) error {
				ets, err := collect(c.api.EventTypes(c.ctx), 0)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, t := range ets {
					rows = append(rows, []string{t.Name, t.Description})
				}
				return c.show(ets, []string{"NAME", "DESCRIPTION"}, rows)
			}
		}},
	{name: "get", args: "<name>", summary: "Show an event type with its schema", example: "aviso event-types get invoice.created --output json",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				t, err := c.api.GetEventType(c.ctx, a[0])
				if err != nil {
					return err
				}
				return c.show(t, []string{"NAME", "DESCRIPTION", "SCHEMA"}, [][]string{{t.Name, t.Description, string(t.Schema)}})
			}
		}},
	{name: "create", summary: "Add an event type to the catalog (root key)", example: `aviso event-types create --name shipment.sent --description "A shipment left" --schema @schema.json`,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			name := fs.String("name", "", "e.g. shipment.sent (required)")
			desc := fs.String("description", "", "what it means")
			schema := fs.String("schema", "", "JSON Schema of its data, inline or @file")
			return func(c *cli, _ []string) error {
				in := client.EventTypeInput{Name: *name, Description: *desc}
				if *schema != "" {
					s, err := jsonArg(*schema)
					if err != nil {
						return fmt.Errorf("--schema: %w", err)
					}
					in.Schema = s
				}
				t, err := c.api.CreateEventType(c.ctx, in)
				if err != nil {
					return err
				}
				return c.show(t, []string{"NAME", "DESCRIPTION"}, [][]string{{t.Name, t.Description}})
			}
		}},
	{name: "delete", args: "<name>", summary: "Remove an event type (root key)", example: "aviso event-types delete shipment.sent",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				if err := c.api.DeleteEventType(c.ctx, a[0]); err != nil {
					return err
				}
				return c.show(map[string]string{"deleted": a[0]}, []string{"DELETED"}, [][]string{{a[0]}})
			}
		}},
}

func endpointRow(e *aviso.Endpoint) []string {
	state := "enabled"
	if e.Disabled {
		state = "disabled (" + e.DisabledReason + ")"
	}
	types := strings.Join(e.EventTypes, ",")
	if types == "" {
		types = "*"
	}
	return []string{e.ID, e.URL, types, string(e.Format), state}
}

var endpointHeader = []string{"ID", "URL", "EVENT TYPES", "FORMAT", "STATE"}

func endpointSet(name, summary, example string, disabled bool) verb {
	return verb{name: name, args: "<endpoint>", summary: summary, example: example, tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				e, err := c.api.UpdateEndpoint(c.ctx, c.tenant, a[0], client.EndpointPatch{Disabled: &disabled})
				if err != nil {
					return err
				}
				return c.show(e, endpointHeader, [][]string{endpointRow(e)})
			}
		}}
}

var endpointVerbs = []verb{
	{name: "list", summary: "List a tenant's endpoints", example: "aviso endpoints list --tenant acme", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, _ []string) error {
				eps, err := collect(c.api.Endpoints(c.ctx, c.tenant), 0)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, e := range eps {
					rows = append(rows, endpointRow(e))
				}
				return c.show(eps, endpointHeader, rows)
			}
		}},
	{name: "get", args: "<endpoint>", summary: "Show an endpoint", example: "aviso endpoints get --tenant acme ep_01J…", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				e, err := c.api.GetEndpoint(c.ctx, c.tenant, a[0])
				if err != nil {
					return err
				}
				return c.show(e, endpointHeader, [][]string{endpointRow(e)})
			}
		}},
	{name: "create", summary: "Subscribe an endpoint (after the handshake)", tenant: true,
		example: "aviso endpoints create --tenant acme --url https://erp.example.com/hooks --event-types invoice.created,invoice.paid",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			url := fs.String("url", "", "where deliveries go (required)")
			types := fs.String("event-types", "", "comma-separated; empty: every type")
			format := fs.String("format", "", "standard (default), alegra, facturascripts or tusfacturas")
			desc := fs.String("description", "", "a note for people")
			noVerify := fs.Bool("no-verify", false, "skip the subscription handshake")
			ordering := fs.String("ordering", "", "external_reference: the events of one reference one at a time, in publish order; none (default)")
			sendTP := fs.Bool("send-traceparent", false, "send each attempt's W3C trace context (traceparent) to the receiver")
			rateLimit := fs.Int("rate-limit", 0, "deliveries per second at most, over every node; 0: no limit")
			return func(c *cli, _ []string) error {
				in := client.EndpointInput{URL: *url, EventTypes: list(*types), Format: aviso.Format(*format), Description: *desc,
					Ordering: orderingFlag(*ordering), SendTraceparent: *sendTP, RateLimit: *rateLimit}
				if *noVerify {
					f := false
					in.Verify = &f
				}
				e, err := c.api.CreateEndpoint(c.ctx, c.tenant, in)
				if err != nil {
					return err
				}
				return c.show(e, endpointHeader, [][]string{endpointRow(e)})
			}
		}},
	{name: "update", args: "<endpoint>", summary: "Change an endpoint's URL, event types or description", tenant: true,
		example: "aviso endpoints update --tenant acme ep_01J… --event-types invoice.created",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			url := fs.String("url", "", "new URL (runs the handshake again)")
			types := fs.String("event-types", "", "new comma-separated event types")
			desc := fs.String("description", "", "new description")
			ordering := fs.String("ordering", "", "external_reference, or none to deliver unordered")
			var sendTP *bool
			fs.BoolFunc("send-traceparent", "send (or with =false, stop sending) the trace context to the receiver", func(v string) error {
				b, err := strconv.ParseBool(v)
				sendTP = &b
				return err
			})
			rateLimit := fs.Int("rate-limit", -1, "new rate limit, deliveries per second; 0 removes it")
			return func(c *cli, a []string) error {
				p := client.EndpointPatch{SendTraceparent: sendTP}
				if *rateLimit >= 0 {
					p.RateLimit = rateLimit
				}
				if *ordering != "" {
					o := orderingFlag(*ordering)
					p.Ordering = &o
				}
				if *url != "" {
					p.URL = url
				}
				if *types != "" {
					l := list(*types)
					p.EventTypes = &l
				}
				if *desc != "" {
					p.Description = desc
				}
				e, err := c.api.UpdateEndpoint(c.ctx, c.tenant, a[0], p)
				if err != nil {
					return err
				}
				return c.show(e, endpointHeader, [][]string{endpointRow(e)})
			}
		}},
	endpointSet("disable", "Disable an endpoint: it gets no deliveries", "aviso endpoints disable --tenant acme ep_01J…", true),
	endpointSet("enable", "Enable an endpoint again", "aviso endpoints enable --tenant acme ep_01J…", false),
	{name: "delete", args: "<endpoint>", summary: "Delete an endpoint with its deliveries", example: "aviso endpoints delete --tenant acme ep_01J…", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				if err := c.api.DeleteEndpoint(c.ctx, c.tenant, a[0]); err != nil {
					return err
				}
				return c.show(map[string]string{"deleted": a[0]}, []string{"DELETED"}, [][]string{{a[0]}})
			}
		}},
	{name: "secret", args: "<endpoint>", summary: "Show the signing secrets", example: "aviso endpoints secret --tenant acme ep_01J…", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			rotate := fs.Bool("rotate", false, "make a new secret first (the old ones sign 24 h more)")
			return func(c *cli, a []string) error {
				get := c.api.GetSecret
				if *rotate {
					get = c.api.RotateSecret
				}
				s, err := get(c.ctx, c.tenant, a[0])
				if err != nil {
					return err
				}
				var rows [][]string
				for _, x := range s.Secrets {
					rows = append(rows, []string{x.Value, tsp(x.ExpiresAt)})
				}
				return c.show(s, []string{"SECRET", "EXPIRES"}, rows)
			}
		}},
	{name: "test", args: "<endpoint>", summary: "Send a test event and show the attempt", example: "aviso endpoints test --tenant acme ep_01J…", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			typ := fs.String("type", "", "event type (default: the endpoint's first)")
			return func(c *cli, a []string) error {
				at, err := c.api.SendTest(c.ctx, c.tenant, a[0], client.TestInput{Type: *typ})
				if err != nil {
					return err
				}
				return c.show(at, []string{"STATUS", "DURATION", "ERROR"}, [][]string{{strconv.Itoa(at.ResponseStatus), fmt.Sprintf("%d ms", at.DurationMS), at.Error}})
			}
		}},
	{name: "replay", args: "<endpoint>", summary: "Queue the endpoint's failed (or all) deliveries since a time again", tenant: true,
		example: "aviso endpoints replay --tenant acme ep_01J… --since 24h --status failed",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			since := fs.String("since", "24h", "an RFC 3339 time, or a duration back from now such as 2h")
			status := fs.String("status", "failed", "failed or all")
			return func(c *cli, a []string) error {
				t, err := sinceArg(*since)
				if err != nil {
					return err
				}
				n, err := c.api.Replay(c.ctx, c.tenant, a[0], client.ReplayInput{Since: t, Status: *status})
				if err != nil {
					return err
				}
				return c.show(map[string]int{"queued": n}, []string{"QUEUED"}, [][]string{{strconv.Itoa(n)}})
			}
		}},
	{name: "deliveries", args: "<endpoint>", summary: "List the endpoint's deliveries, newest first", tenant: true,
		example: "aviso endpoints deliveries --tenant acme ep_01J… --status failed --limit 20",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			status := fs.String("status", "", "pending, succeeded or failed")
			limit := fs.Int("limit", 50, "at most this many (0: all)")
			return func(c *cli, a []string) error {
				ds, err := collect(c.api.EndpointDeliveries(c.ctx, c.tenant, a[0], aviso.DeliveryStatus(*status)), *limit)
				if err != nil {
					return err
				}
				return showDeliveries(c, ds)
			}
		}},
}

// sinceArg reads an RFC 3339 time or a duration back from now.
func sinceArg(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: give an RFC 3339 time (2026-03-01T00:00:00Z) or a duration (24h)", s)
	}
	return t, nil
}

func showDeliveries(c *cli, ds []*aviso.Delivery) error {
	var rows [][]string
	for _, d := range ds {
		last := "-"
		if d.LastResponseStatus != 0 {
			last = strconv.Itoa(d.LastResponseStatus)
		}
		rows = append(rows, []string{d.ID, d.EventType, string(d.Status), strconv.Itoa(d.AttemptCount), last, tsp(d.NextAttemptAt)})
	}
	return c.show(ds, []string{"ID", "EVENT TYPE", "STATUS", "ATTEMPTS", "LAST STATUS", "NEXT ATTEMPT"}, rows)
}

var eventVerbs = []verb{
	{name: "list", summary: "List a tenant's events in publication order", example: "aviso events list --tenant acme --type invoice.created", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			typ := fs.String("type", "", "only this event type")
			ref := fs.String("external-reference", "", "only events naming this document")
			limit := fs.Int("limit", 50, "at most this many (0: all)")
			return func(c *cli, _ []string) error {
				evs, err := collect(c.api.Events(c.ctx, c.tenant, client.EventListOptions{Type: *typ, ExternalReference: *ref}), *limit)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, e := range evs {
					rows = append(rows, []string{e.ID, e.Type, e.ExternalReference, ts(e.CreatedAt)})
				}
				return c.show(evs, []string{"ID", "TYPE", "EXTERNAL REFERENCE", "CREATED"}, rows)
			}
		}},
	{name: "get", args: "<event>", summary: "Show an event with its data", example: "aviso events get --tenant acme evt_01J… --output json", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				e, err := c.api.GetEvent(c.ctx, c.tenant, a[0])
				if err != nil {
					return err
				}
				return c.show(e, []string{"ID", "TYPE", "DATA"}, [][]string{{e.ID, e.Type, string(e.Data)}})
			}
		}},
	{name: "publish", summary: "Publish an event", tenant: true,
		example: `aviso events publish --tenant acme --type invoice.created --id FAC-0001 --data '{"id":"FAC-0001","total":1190}'`,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			typ := fs.String("type", "", "event type (required)")
			data := fs.String("data", "", "the data: JSON inline, @file or @- for standard input (required)")
			id := fs.String("id", "", "idempotency id: published again, it is not delivered twice")
			ref := fs.String("external-reference", "", "the document it is about")
			return func(c *cli, _ []string) error {
				d, err := jsonArg(*data)
				if err != nil {
					return fmt.Errorf("--data: %w", err)
				}
				e, created, err := c.api.Publish(c.ctx, c.tenant, client.PublishInput{ID: *id, Type: *typ, Data: d, ExternalReference: *ref})
				if err != nil {
					return err
				}
				return c.show(e, []string{"ID", "TYPE", "CREATED"}, [][]string{{e.ID, e.Type, strconv.FormatBool(created)}})
			}
		}},
	{name: "deliveries", args: "<event>", summary: "List an event's deliveries", example: "aviso events deliveries --tenant acme evt_01J…", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				ds, err := collect(c.api.EventDeliveries(c.ctx, c.tenant, a[0]), 0)
				if err != nil {
					return err
				}
				return showDeliveries(c, ds)
			}
		}},
}

var deliveryVerbs = []verb{
	{name: "list", summary: "List the deliveries of an event or of an endpoint", tenant: true,
		example: "aviso deliveries list --tenant acme --endpoint ep_01J… --status failed",
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			event := fs.String("event", "", "the deliveries of this event")
			endpoint := fs.String("endpoint", "", "the deliveries of this endpoint (newest first)")
			status := fs.String("status", "", "with --endpoint: pending, succeeded or failed")
			limit := fs.Int("limit", 50, "at most this many (0: all)")
			return func(c *cli, _ []string) error {
				var ds []*aviso.Delivery
				var err error
				switch {
				case *event != "" && *endpoint == "":
					ds, err = collect(c.api.EventDeliveries(c.ctx, c.tenant, *event), *limit)
				case *endpoint != "" && *event == "":
					ds, err = collect(c.api.EndpointDeliveries(c.ctx, c.tenant, *endpoint, aviso.DeliveryStatus(*status)), *limit)
				default:
					return errors.New("deliveries list: give --event or --endpoint")
				}
				if err != nil {
					return err
				}
				return showDeliveries(c, ds)
			}
		}},
	{name: "get", args: "<delivery>", summary: "Show a delivery with every attempt", example: "aviso deliveries get --tenant acme dlv_01J…", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				d, err := c.api.GetDelivery(c.ctx, c.tenant, a[0])
				if err != nil {
					return err
				}
				if c.json {
					return c.show(d, nil, nil)
				}
				var rows [][]string
				for _, at := range d.Attempts {
					rows = append(rows, []string{ts(at.At), strconv.Itoa(at.ResponseStatus), fmt.Sprintf("%d ms", at.DurationMS), at.Error})
				}
				fmt.Fprintf(c.out, "%s  %s  %s  attempts: %d\n\n", d.ID, d.EventType, d.Status, d.AttemptCount)
				return c.show(d, []string{"AT", "STATUS", "DURATION", "ERROR"}, rows)
			}
		}},
	{name: "retry", args: "<delivery>", summary: "Queue a delivery for an attempt now", example: "aviso deliveries retry --tenant acme dlv_01J…", tenant: true,
		define: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, a []string) error {
				d, err := c.api.RetryDelivery(c.ctx, c.tenant, a[0])
				if err != nil {
					return err
				}
				return showDeliveries(c, []*aviso.Delivery{d})
			}
		}},
}

// orderingFlag reads --ordering: "none" is the API's "" (unordered).
func orderingFlag(v string) string {
	if v == "none" {
		return aviso.OrderingNone
	}
	return v
}
