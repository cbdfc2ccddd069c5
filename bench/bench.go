// Package bench is Aviso's load tool, the library behind `aviso bench`. It starts loopback
// receivers and an Aviso node — in-process on a temporary data directory, once per store, or a
// running node at a URL — measures the machine's own HTTP ceiling with a bare Go client, runs
// bounded scenarios (end-to-end delivery, the publish API, publish→receive latency, fan-out,
// isolation beside a dead endpoint, a backlog drained after an outage) and reports each figure
// beside its target and, for throughputs, as a fraction of the ceiling. On PostgreSQL the
// end-to-end scenario can run on several nodes sharing the database (Config.Nodes), publishing
// to each in turn, for the figure of a group of nodes.
//
// Every scenario has a count and a time bound and stops by itself; one that runs out of time is
// reported incomplete with what it saw, never padded. The load generator, the receivers and the
// node share the machine, so figures are comparable only run to run on the same machine with the
// same build and flags — which is why each throughput is also given as a ratio to the ceiling
// measured in the same run.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
)

// Scenario names, in the order they run.
const (
	ScenarioEndToEnd = "end_to_end"
	ScenarioPublish  = "publish"
	ScenarioLatency  = "latency"
	ScenarioFanout   = "fanout"
	ScenarioIsolate  = "isolation"
	ScenarioBacklog  = "backlog"
	ScenarioOutbox   = "outbox"
	ScenarioFeed     = "feed"
	ScenarioOrdering = "ordering"
	// ScenarioRateLimit: an endpoint limited to 100/s beside a healthy one (ratelimit.go).
	ScenarioRateLimit = "rate_limit"
)

// Scenarios lists every scenario of a default run in the order Run runs them. The ceiling is
// always measured. The outbox scenario (ScenarioOutbox), which needs a source database, runs
// when Config.Scenarios names it or Config.OutboxURL is set.
var Scenarios = []string{ScenarioEndToEnd, ScenarioPublish, ScenarioLatency, ScenarioFanout, ScenarioIsolate, ScenarioOrdering,
	ScenarioRateLimit, ScenarioBacklog, ScenarioFeed}

// Config configures a run. Zero fields take the documented defaults.
type Config struct {
	// URL is the base URL of a running Aviso node to measure (it must allow private networks so
	// that it can deliver to the loopback receivers). Default "": start in-process nodes.
	URL string
	// RootKey is the root API key of the node at URL. Ignored without URL.
	RootKey string
	// DatabaseURL, when set, runs every scenario a second time on an in-process node storing
	// in this PostgreSQL database, after SQLite. Ignored with URL.
	DatabaseURL string
	// Nodes is how many in-process nodes run the end-to-end scenario on PostgreSQL: each opens
	// DatabaseURL with a delivery engine of its own, events are published round-robin across
	// their APIs (one batch each in turn) and the deliveries counted at the one receiver, so the
	// figure is the group's. Default 1. Above 1 it needs DatabaseURL and no URL (an SQLite store
	// belongs to one node); the SQLite figures and the other scenarios stay on one node.
	Nodes int
	// Quick scales the counts down (QuickSizes) so that the whole run takes under a minute.
	// Default false: FullSizes, the figures of issue 6.
	Quick bool
	// Sizes, when set, replaces the counts and bounds chosen by Quick (tests use it).
	Sizes *Sizes
	// Scenarios names the scenarios to run (see Scenarios). Default: all of them.
	Scenarios []string
	// Concurrency is how many requests the ceiling's bare client keeps in flight. Default 8,
	// the server's default cap of attempts in flight to one endpoint, so the ceiling is the most
	// Aviso could reach to the single endpoint of the end-to-end scenario.
	Concurrency int
	// SQLiteSynchronous is the SQLite synchronous pragma of in-process nodes: "FULL" (default,
	// the server's: every commit on disk before it is acknowledged) or "NORMAL".
	SQLiteSynchronous string
	// OutboxURL is the database (postgres://… or mysql://…) in which the outbox scenario makes
	// a fresh outbox (a schema, or a database) to relay from. Default: DatabaseURL; without
	// either the scenario is skipped.
	OutboxURL string
	// DataDir is where in-process SQLite nodes keep their files, one subdirectory per node.
	// Default: a temporary directory, removed at the end.
	DataDir string
	// NodeCommand, when set, starts the backlog scenario's node as a child process with this
	// command line (the cmd/aviso bench subcommand passes itself with --node, see ServeNode), so
	// that the peak RSS reported is Aviso's alone. Default: in process, where the peak RSS is
	// the whole process's, load generator and receivers included.
	NodeCommand []string
	// Out receives the table. Default: nothing is printed.
	Out io.Writer
	// JSONPath, when set, is the file the report is written to as JSON.
	JSONPath string
	// Progress receives one line, rewritten in place with \r, while the run goes. Default: none.
	Progress io.Writer
	// Logger receives the bench's notes and the in-process nodes' logs. Default: discard.
	Logger *slog.Logger
}

// Sizes are the counts and time bounds of the scenarios.
type Sizes struct {
	CeilingRequests int           `json:"ceiling_requests"`  // bare-client requests
	EndToEnd        int           `json:"end_to_end_events"` // events to one endpoint
	PublishRequests int           `json:"publish_requests"`  // single-event publish requests
	PublishClients  int           `json:"publish_clients"`   // concurrent single-event publishers
	BatchEvents     int           `json:"batch_events"`      // events published by batch
	BatchSize       int           `json:"batch_size"`        // events per batch request
	LatencyRate     int           `json:"latency_rate"`      // offered events/s
	LatencyEvents   int           `json:"latency_events"`    // events at that rate
	FanoutEndpoints int           `json:"fanout_endpoints"`  // endpoints one event goes to
	FanoutRounds    int           `json:"fanout_rounds"`     // events published one after another
	Isolation       int           `json:"isolation_events"`  // events to the healthy endpoint, solo and beside the dead one
	IsolationRounds int           `json:"isolation_rounds"`  // solo/beside pairs; the medians are reported
	Backlog         int           `json:"backlog_deliveries"`
	Timeout         time.Duration `json:"timeout_ns"`         // bound of each scenario but the backlog
	BacklogTimeout  time.Duration `json:"backlog_timeout_ns"` // bound of the backlog scenario
	// The outbox scenario: rows drained from a pre-filled outbox, then rows inserted one per
	// transaction at OutboxRate rows/s for the commit-to-receipt latency. 0 rows: skipped.
	OutboxRows        int `json:"outbox_rows"`
	OutboxLatencyRows int `json:"outbox_latency_rows"`
	OutboxRate        int `json:"outbox_rate"`
	// The feed scenario (feed.go): events read by one SSE consumer, long-poll rounds and pollers,
	// idle streams. 0 events: skipped.
	FeedEvents     int `json:"feed_events"`
	FeedPollRounds int `json:"feed_poll_rounds"`
	FeedPollers    int `json:"feed_pollers"`
	FeedStreams    int `json:"feed_streams"`
	// The ordering scenario (ordering.go): events to an unordered then an ordered endpoint, their
	// external references spread over OrderingReferences; rounds of the pair. 0 events: skipped.
	OrderingEvents     int `json:"ordering_events"`
	OrderingReferences int `json:"ordering_references"`
	OrderingRounds     int `json:"ordering_rounds"`
	// RateLimited is the backlog of the rate_limit scenario's limited endpoint (100/s) in each
	// of IsolationRounds rounds beside Isolation events to a healthy one, and how many of its
	// deliveries its rate is timed over in the last.
	RateLimited int `json:"rate_limited_deliveries"`
}

// FullSizes are the sizes of issue 6.
var FullSizes = Sizes{
	CeilingRequests: 100_000, EndToEnd: 100_000, PublishRequests: 20_000, PublishClients: 16,
	BatchEvents: 200_000, BatchSize: 500, LatencyRate: 1000, LatencyEvents: 10_000,
	FanoutEndpoints: 1000, FanoutRounds: 3, Isolation: 20_000, IsolationRounds: 5, Backlog: 1_000_000,
	Timeout: 3 * time.Minute, BacklogTimeout: 10 * time.Minute,
	OutboxRows: 100_000, OutboxLatencyRows: 5_000, OutboxRate: 500,
	FeedEvents: 200_000, FeedPollRounds: 500, FeedPollers: 8, FeedStreams: 1000,
	OrderingEvents: 50_000, OrderingReferences: 1000, OrderingRounds: 3, RateLimited: 3_000,
}

// QuickSizes make a run of under a minute: the same scenarios with small counts and bounds
// that add up to less than a minute (a slow machine reports incomplete scenarios rather than
// overrunning).
var QuickSizes = Sizes{
	CeilingRequests: 10_000, EndToEnd: 3_000, PublishRequests: 1_000, PublishClients: 16,
	BatchEvents: 5_000, BatchSize: 500, LatencyRate: 1000, LatencyEvents: 1_000,
	FanoutEndpoints: 100, FanoutRounds: 2, Isolation: 1_000, IsolationRounds: 1, Backlog: 10_000,
	Timeout: 7 * time.Second, BacklogTimeout: 12 * time.Second,
	OutboxRows: 10_000, OutboxLatencyRows: 500, OutboxRate: 500,
	FeedEvents: 20_000, FeedPollRounds: 100, FeedPollers: 8, FeedStreams: 1000,
	OrderingEvents: 3_000, OrderingReferences: 1000, OrderingRounds: 1, RateLimited: 300,
}

// Report is the outcome of a run, as written to JSON.
type Report struct {
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Quick   bool      `json:"quick"`
	Machine Machine   `json:"machine"`
	Sizes   Sizes     `json:"sizes"`
	// Ceiling is the bare client's requests/s; every throughput's OfCeiling divides by it.
	Ceiling float64  `json:"ceiling_per_s"`
	Results []Result `json:"results"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs         int    `json:"cpus"`
	CPUModel     string `json:"cpu_model"`
	MemoryMiB    int    `json:"memory_mib"`
	OS           string `json:"os"`
	Arch         string `json:"arch"`
	GoVersion    string `json:"go_version"`
	AvisoVersion string `json:"aviso_version"`
}

// Result is one figure of one scenario on one store.
type Result struct {
	Store    string  `json:"store"`           // "sqlite", "postgres", "remote"; "" for the ceiling
	Scenario string  `json:"scenario"`        // "ceiling" or one of Scenarios
	Nodes    int     `json:"nodes,omitempty"` // Aviso nodes that served it: 0 for the ceiling, 1 for a URL
	Metric   string  `json:"metric"`          // e.g. "deliveries_per_s", "p99_ms"
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// OfCeiling is a throughput divided by the ceiling (0 for figures that are not throughputs).
	OfCeiling float64 `json:"of_ceiling,omitempty"`
	Target    *Target `json:"target,omitempty"`
	Met       *bool   `json:"met,omitempty"` // nil without a target, or when incomplete
	// Count is what was done or arrived; Expected what the scenario set out to do. Complete
	// is false when the time bound passed first.
	Count    int64   `json:"count"`
	Expected int64   `json:"expected"`
	Complete bool    `json:"complete"`
	Seconds  float64 `json:"seconds"`
	// NodeAttempts, for a scenario run on several nodes, is how many attempts each node's
	// delivery engine made, in the order the nodes were started.
	NodeAttempts []int64 `json:"node_attempts,omitempty"`
	// WriterBusy, for a throughput on an SQLite node in this process, is the share of the
	// measured time its single writer was running transactions (see sqlite.WriterStats): near 1,
	// the writer bound the figure. 0 when not measured.
	WriterBusy float64 `json:"writer_busy,omitempty"`
	Note       string  `json:"note,omitempty"`
}

// Target is the figure issue 6 asks for: Value at least (">=") or at most ("<=").
type Target struct {
	Op    string  `json:"op"`
	Value float64 `json:"value"`
}

func (t *Target) String() string {
	if t == nil {
		return ""
	}
	op := map[string]string{">=": "≥", "<=": "≤"}[t.Op]
	return op + " " + formatValue(t.Value)
}

func atLeast(v float64) *Target { return &Target{Op: ">=", Value: v} }
func atMost(v float64) *Target  { return &Target{Op: "<=", Value: v} }

// judge sets Met from Target and Value when the result is complete.
func (r *Result) judge() {
	if r.Target == nil || !r.Complete {
		r.Met = nil
		return
	}
	met := r.Value >= r.Target.Value
	if r.Target.Op == "<=" {
		met = r.Value <= r.Target.Value
	}
	r.Met = &met
}

// Run measures the ceiling, then runs the selected scenarios on each store, prints the table to
// cfg.Out and writes the JSON report. A scenario that fails is reported with its error in Note
// and the run goes on; Run returns an error only when nothing could be measured or the report
// cannot be written.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, log: cfg.Logger, sizes: *cfg.Sizes, runID: randomHex(4), e2e: map[string]float64{}}
	r.dataDir = cfg.DataDir
	if r.dataDir == "" && cfg.URL == "" {
		dir, err := os.MkdirTemp("", "aviso-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: data directory: %w", err)
		}
		defer os.RemoveAll(dir)
		r.dataDir = dir
	}
	r.progress = newProgress(cfg.Progress)
	defer r.progress.clear()
	rep := &Report{Started: time.Now().UTC(), Quick: cfg.Quick, Machine: machine(), Sizes: r.sizes}

	cctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	ceil, err := measureCeiling(cctx, r.sizes.CeilingRequests, cfg.Concurrency, r.progress.set)
	cancel()
	if err != nil {
		return nil, err
	}
	r.ceiling = ceil.perSecond()
	rep.Ceiling = r.ceiling
	rep.Results = append(rep.Results, Result{Scenario: "ceiling", Metric: "requests_per_s", Value: r.ceiling,
		Unit: "req/s", OfCeiling: 1, Count: ceil.Requests, Expected: int64(r.sizes.CeilingRequests),
		Complete: ceil.Complete, Seconds: ceil.Elapsed.Seconds(),
		Note: fmt.Sprintf("bare Go client, %d in flight, no Aviso", ceil.Concurrency)})

	for _, store := range r.stores() {
		if ctx.Err() != nil {
			break
		}
		rep.Results = append(rep.Results, r.runStore(ctx, store)...)
	}
	for i := range rep.Results {
		rep.Results[i].judge()
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	r.progress.clear()
	if err := WriteTable(cfg.Out, rep); err != nil {
		return rep, fmt.Errorf("write table: %w", err)
	}
	if cfg.JSONPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return rep, fmt.Errorf("encode report: %w", err)
		}
		if err := os.WriteFile(cfg.JSONPath, append(b, '\n'), 0o644); err != nil {
			return rep, fmt.Errorf("write report: %w", err)
		}
	}
	return rep, ctx.Err()
}

func (c *Config) setDefaults() error {
	if c.Sizes == nil {
		s := FullSizes
		if c.Quick {
			s = QuickSizes
		}
		c.Sizes = &s
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = slices.Clone(Scenarios)
		if c.OutboxURL != "" {
			c.Scenarios = append(c.Scenarios, ScenarioOutbox)
		}
	}
	known := append(slices.Clone(Scenarios), ScenarioOutbox)
	for _, s := range c.Scenarios {
		if !slices.Contains(known, s) {
			return fmt.Errorf("bench: unknown scenario %q (known: %s)", s, strings.Join(known, ", "))
		}
	}
	if slices.Contains(c.Scenarios, ScenarioOutbox) {
		switch {
		case c.URL != "":
			return errors.New("bench: the outbox scenario needs a node started by the bench (no --url)")
		case c.OutboxURL == "" && c.DatabaseURL == "":
			return errors.New("bench: the outbox scenario needs a source database: --outbox-source postgres://… or mysql://… (or --database)")
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.URL != "" && c.RootKey == "" {
		return errors.New("bench: a root key is required with a URL")
	}
	switch {
	case c.Nodes == 0:
		c.Nodes = 1
	case c.Nodes < 0:
		return fmt.Errorf("bench: %d nodes: the count of nodes must be at least 1", c.Nodes)
	case c.Nodes > 1 && c.URL != "":
		return fmt.Errorf("bench: %d nodes: several nodes are started by the bench on PostgreSQL, not measured at a URL", c.Nodes)
	case c.Nodes > 1 && c.DatabaseURL == "":
		return fmt.Errorf("bench: %d nodes need a shared PostgreSQL database (--database): an SQLite store belongs to one node", c.Nodes)
	}
	return nil
}

// runner holds what the scenarios of one run share.
type runner struct {
	cfg      Config
	log      *slog.Logger
	sizes    Sizes
	runID    string
	ceiling  float64
	progress *progress
	dataDir  string             // parent of the in-process nodes' data directories
	nodes    int                // nodes started, to name their directories
	e2e      map[string]float64 // end-to-end deliveries/s by store, for the backlog's drain ratio
}

func (r *runner) stores() []string {
	if r.cfg.URL != "" {
		return []string{"remote"}
	}
	stores := []string{"sqlite"}
	if r.cfg.DatabaseURL != "" {
		stores = append(stores, "postgres")
	}
	return stores
}

// clusterSize is how many nodes the end-to-end scenario runs on for store.
func (r *runner) clusterSize(store string) int {
	if store == "postgres" {
		return r.cfg.Nodes
	}
	return 1
}

func (r *runner) wants(s string) bool { return slices.Contains(r.cfg.Scenarios, s) }

// ofCeiling returns v as a fraction of the ceiling.
func (r *runner) ofCeiling(v float64) float64 {
	if r.ceiling <= 0 {
		return 0
	}
	return v / r.ceiling
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		GoVersion: runtime.Version(), AvisoVersion: aviso.Version}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, ok := procStatusKB("/proc/meminfo", "MemTotal"); ok {
		m.MemoryMiB = int(kb / 1024)
	}
	return m
}

// progress writes one status line, rewritten in place.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	last int
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) set(s string) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pad := max(0, p.last-len(s))
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
	p.last = len(s)
}

func (p *progress) clear() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.last))
		p.last = 0
	}
}

// formatValue prints a figure with as many decimals as its size deserves.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case a >= 1000:
		return thousands(int64(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// thousands prints n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
