package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// childNodeEnv makes the test binary act as the backlog node's child process (ServeNode), the
// part `aviso bench --node` plays for the real command.
const childNodeEnv = "AVISO_BENCH_TEST_CHILD_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(childNodeEnv) == "1" {
		os.Exit(serveChildNode())
	}
	os.Exit(m.Run())
}

func serveChildNode() int {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := ServeNode(ctx, NodeConfig{DataDir: *dataDir, DatabaseURL: os.Getenv("AVISO_DATABASE_URL"),
		RootKey: os.Getenv("AVISO_ROOT_KEY"), SQLiteSynchronous: os.Getenv("AVISO_SQLITE_SYNCHRONOUS")}, os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testSizes are QuickSizes shrunk so that the test stays well under a minute, more so under -race.
func testSizes() *Sizes {
	s := QuickSizes
	s.CeilingRequests, s.EndToEnd, s.PublishRequests, s.BatchEvents = 2000, 1500, 500, 2000
	s.LatencyEvents, s.FanoutEndpoints, s.Isolation, s.Backlog = 500, 50, 500, 3000
	s.BatchSize = 250
	s.IsolationRounds = 2 // more than one, so that the medians are taken
	s.RateLimited = 100   // a second at the scenario's 100/s
	s.Timeout, s.BacklogTimeout = 40*time.Second, 40*time.Second
	s.FeedEvents, s.FeedPollRounds, s.FeedPollers, s.FeedStreams = 2000, 20, 4, 300
	s.OrderingEvents, s.OrderingReferences = 1000, 100
	if raceEnabled {
		s.OrderingEvents = 300
		s.FeedEvents, s.FeedPollRounds, s.FeedStreams = 500, 10, 100
		s.CeilingRequests, s.EndToEnd, s.PublishRequests, s.BatchEvents = 500, 500, 200, 500
		s.LatencyEvents, s.LatencyRate, s.FanoutEndpoints, s.Isolation, s.Backlog = 200, 500, 20, 200, 1000
		s.BatchSize = 100
	}
	return &s
}

func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// checkReport asserts what every run must give: each wanted scenario reported on each store,
// no errors, counts that match, positive finite figures, and a JSON file that parses back.
func checkReport(tb testing.TB, rep *Report, jsonPath string, stores, scenarios []string) {
	tb.Helper()
	if rep.Ceiling <= 0 || math.IsInf(rep.Ceiling, 0) {
		tb.Errorf("ceiling = %v, want a positive finite rate", rep.Ceiling)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Store+"/"+r.Scenario] = true
		if r.Metric == "error" {
			tb.Errorf("%s %s failed: %s", r.Store, r.Scenario, r.Note)
			continue
		}
		if !r.Complete || r.Count != r.Expected || r.Expected <= 0 {
			tb.Errorf("%s %s %s: count %d of %d, complete %v; want every one", r.Store, r.Scenario, r.Metric,
				r.Count, r.Expected, r.Complete)
		}
		if !(r.Value > 0) || math.IsInf(r.Value, 0) || math.IsNaN(r.Value) {
			tb.Errorf("%s %s %s = %v, want a positive finite figure", r.Store, r.Scenario, r.Metric, r.Value)
		}
		if r.Target != nil && r.Met == nil {
			tb.Errorf("%s %s %s has a target but was not judged", r.Store, r.Scenario, r.Metric)
		}
	}
	for _, st := range stores {
		for _, sc := range scenarios {
			if !seen[st+"/"+sc] {
				tb.Errorf("no result for %s on %s", sc, st)
			}
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		tb.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		tb.Fatalf("the JSON report does not parse: %v", err)
	}
	if len(back.Results) != len(rep.Results) || back.Ceiling != rep.Ceiling || back.Machine.CPUs <= 0 {
		tb.Errorf("the JSON report differs from the returned one: %d results, ceiling %v, %d CPUs",
			len(back.Results), back.Ceiling, back.Machine.CPUs)
	}
}

func TestRunQuickSQLite(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var table, prog bytes.Buffer
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	rep, err := Run(ctx, Config{Quick: true, Sizes: testSizes(), DataDir: t.TempDir(), Out: &table,
		JSONPath: jsonPath, Progress: &prog, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	checkReport(t, rep, jsonPath, []string{"sqlite"}, Scenarios)
	if !rep.Quick || !strings.Contains(table.String(), "QUICK") {
		t.Error("a quick run does not say so in the table")
	}
	for _, s := range append(slices.Clone(Scenarios), "ceiling") {
		if !strings.Contains(table.String(), s) {
			t.Errorf("the table does not mention %s", s)
		}
	}
	for _, r := range rep.Results {
		if r.Metric == "healthy_kept" && !strings.Contains(r.Note, "median of 2 rounds") {
			t.Errorf("healthy_kept: note %q, want it to say it is the median of the 2 rounds run", r.Note)
		}
	}
	if !strings.Contains(prog.String(), "\r[sqlite] ") {
		t.Errorf("no progress line was written: %q", prog.String())
	}
	checkWriterBusy(t, rep)
}

// writerMetrics are the throughputs whose SQLite writer load the bench reports.
var writerMetrics = []string{"deliveries_per_s", "single_requests_per_s", "batch_events_per_s",
	"solo_deliveries_per_s", "beside_dead_deliveries_per_s", "beside_limited_deliveries_per_s", "drain_deliveries_per_s", "end_to_end_deliveries_per_s"}

// checkWriterBusy asserts that the throughputs of SQLite say how loaded its writer was, in
// (0, 1] and in their note, and that no other store's do (PostgreSQL has no single writer).
func checkWriterBusy(tb testing.TB, rep *Report) {
	tb.Helper()
	seen := 0
	for _, r := range rep.Results {
		if !slices.Contains(writerMetrics, r.Metric) {
			continue
		}
		said := strings.Contains(r.Note, "SQLite writer busy ")
		if r.Store != "sqlite" {
			if r.WriterBusy != 0 || said {
				tb.Errorf("%s %s: writer busy %v (%q); want none reported", r.Store, r.Metric, r.WriterBusy, r.Note)
			}
			continue
		}
		seen++
		if !(r.WriterBusy > 0 && r.WriterBusy <= 1) || !said {
			tb.Errorf("sqlite %s: writer busy %v, note %q; want a share in (0, 1], told in the note", r.Metric, r.WriterBusy, r.Note)
		}
	}
	if seen == 0 {
		tb.Error("no SQLite throughput reported its writer's load")
	}
}

func TestBacklogInChildProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childNodeEnv, "1") // inherited by the child only: TestMain has run in this process
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	rep, err := Run(ctx, Config{Sizes: testSizes(), DataDir: t.TempDir(), Scenarios: []string{ScenarioBacklog},
		NodeCommand: []string{exe}, JSONPath: jsonPath, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, jsonPath, []string{"sqlite"}, []string{ScenarioBacklog})
	byMetric := map[string]*Result{}
	for i, r := range rep.Results {
		byMetric[r.Metric] = &rep.Results[i]
	}
	if rss := byMetric["peak_rss_mib"]; rss == nil || !strings.Contains(rss.Note, "own process") {
		t.Fatalf("no peak RSS of the child process in %+v", rep.Results)
	}
	// The drain is compared with end-to-end measured on a child node too.
	ref, ratio, drain := byMetric["end_to_end_deliveries_per_s"], byMetric["drain_of_end_to_end"], byMetric["drain_deliveries_per_s"]
	if ref == nil || ratio == nil || drain == nil {
		t.Fatalf("want the drain, its reference and their ratio in %+v", rep.Results)
	}
	if got, want := ratio.Value, drain.Value/ref.Value; math.Abs(got-want) > 1e-9 || !strings.Contains(ratio.Note, "child process") {
		t.Errorf("drain_of_end_to_end = %v (%q), want drain/reference = %v, said to be of a child node", got, ratio.Note, want)
	}
	// The child node reports its writer over the same pipe: the drain and its reference say it.
	checkWriterBusy(t, rep)
	if drain.WriterBusy == 0 || ref.WriterBusy == 0 {
		t.Errorf("drain writer busy %v, reference %v; want both measured in the child process", drain.WriterBusy, ref.WriterBusy)
	}
}

func TestRunPostgres(t *testing.T) {
	dbURL := testenv.SchemaURL(testenv.PostgresSchema(t, "aviso_bench_"))
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	sizes := testSizes()
	sizes.Backlog = min(sizes.Backlog, 1000)
	scenarios := []string{ScenarioEndToEnd, ScenarioPublish, ScenarioBacklog, ScenarioFeed}
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	rep, err := Run(ctx, Config{Sizes: sizes, DatabaseURL: dbURL, DataDir: t.TempDir(), Scenarios: scenarios,
		JSONPath: jsonPath, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, jsonPath, []string{"sqlite", "postgres"}, scenarios)
	checkWriterBusy(t, rep)

	// The shared database keeps nothing of the run: every scenario's tenant, the backlog's
	// included (its node stops after the drain), was deleted with its events.
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tenants, events int
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM tenants WHERE id <> $1), (SELECT count(*) FROM events)`,
		aviso.OperationalTenant).Scan(&tenants, &events); err != nil {
		t.Fatal(err)
	}
	if tenants != 0 || events != 0 {
		t.Errorf("the run left %d tenants and %d events in the database, want none", tenants, events)
	}
}

// TestEndToEndOnTwoNodes runs the end-to-end scenario on two nodes sharing one PostgreSQL
// schema: every event published (round-robin to both APIs) arrives, both engines delivered, and
// the report and the table say two nodes — while SQLite's end-to-end stays on one.
func TestEndToEndOnTwoNodes(t *testing.T) {
	dbURL := testenv.SchemaURL(testenv.PostgresSchema(t, "aviso_bench_"))
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var table bytes.Buffer
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	rep, err := Run(ctx, Config{Sizes: testSizes(), DatabaseURL: dbURL, Nodes: 2, DataDir: t.TempDir(),
		Scenarios: []string{ScenarioEndToEnd}, Out: &table, JSONPath: jsonPath, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	checkReport(t, rep, jsonPath, []string{"sqlite", "postgres"}, []string{ScenarioEndToEnd})

	byStore := map[string]Result{}
	for _, r := range rep.Results {
		if r.Scenario == ScenarioEndToEnd {
			byStore[r.Store] = r
		}
	}
	if r := byStore["sqlite"]; r.Nodes != 1 || r.NodeAttempts != nil {
		t.Errorf("sqlite end-to-end ran on %d nodes (attempts by node %v), want 1", r.Nodes, r.NodeAttempts)
	}
	pg := byStore["postgres"]
	if pg.Nodes != 2 || len(pg.NodeAttempts) != 2 {
		t.Fatalf("postgres end-to-end: %d nodes, attempts by node %v; want 2 nodes, 2 counts", pg.Nodes, pg.NodeAttempts)
	}
	var sum int64
	for i, a := range pg.NodeAttempts {
		if a <= 0 {
			t.Errorf("node %d made %d attempts; want both nodes to deliver (attempts by node %v)", i, a, pg.NodeAttempts)
		}
		sum += a
	}
	if sum < pg.Count {
		t.Errorf("the nodes made %d attempts in all for %d deliveries received", sum, pg.Count)
	}
	if !strings.Contains(table.String(), "attempts by node: ") || !strings.Contains(pg.Note, "2 nodes on one database") {
		t.Errorf("the table does not tell the nodes apart:\n%s", table.String())
	}

	// The scenario's tenant was deleted with its deliveries: the shared database keeps nothing.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var tenants, deliveries int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM tenants WHERE id <> $1), (SELECT count(*) FROM deliveries)", aviso.OperationalTenant).
		Scan(&tenants, &deliveries); err != nil {
		t.Fatal(err)
	}
	if tenants != 0 || deliveries != 0 {
		t.Errorf("after the run the database holds %d tenants and %d deliveries, want none", tenants, deliveries)
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, r := range back.Results {
		if r.Store == "postgres" && (r.Nodes != 2 || !slices.Equal(r.NodeAttempts, pg.NodeAttempts)) {
			t.Errorf("JSON says %d nodes, attempts %v; want 2, %v", r.Nodes, r.NodeAttempts, pg.NodeAttempts)
		}
	}
}

func TestConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown scenario", Config{Scenarios: []string{"warp"}}, "unknown scenario"},
		{"URL without key", Config{URL: "http://127.0.0.1:1"}, "root key"},
		{"two nodes on SQLite", Config{Nodes: 2}, "PostgreSQL"},
		{"two nodes at a URL", Config{Nodes: 2, URL: "http://127.0.0.1:1", RootKey: "k", DatabaseURL: "postgres://x"}, "not measured at a URL"},
		{"no nodes", Config{Nodes: -1}, "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error about %q", err, tt.want)
			}
		})
	}
}
