package bench

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
)

// TestOutboxScenario runs the outbox scenario on SQLite with a PostgreSQL and a MariaDB outbox:
// every pre-filled row is relayed, the latency rows arrive, and only PostgreSQL's latency has a
// target.
func TestOutboxScenario(t *testing.T) {
	sources := map[string]func(t *testing.T) string{
		"postgres": func(t *testing.T) string { return testenv.SchemaURL(testenv.PostgresSchema(t, "aviso_bench_ob_")) },
		"mariadb": func(t *testing.T) string {
			return testenv.MariaDBURL(testenv.MariaDBDatabase(t, "aviso_bench_ob_"))
		},
	}
	for kind, source := range sources {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			url := source(t)
			sizes := testSizes()
			sizes.OutboxRows, sizes.OutboxLatencyRows, sizes.OutboxRate = 2000, 50, 200
			if raceEnabled {
				sizes.OutboxRows, sizes.OutboxLatencyRows = 500, 20
			}
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			rep, err := Run(ctx, Config{Sizes: sizes, OutboxURL: url, DataDir: t.TempDir(),
				Scenarios: []string{ScenarioOutbox}, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Result{}
			for _, r := range rep.Results {
				if r.Scenario == ScenarioOutbox {
					got[r.Metric] = r
				}
			}
			if r := got["rows_per_s"]; !r.Complete || r.Count != int64(sizes.OutboxRows) || r.Value <= 0 || r.Target == nil {
				t.Errorf("rows_per_s %+v", r)
			}
			if r := got["p99_ms"]; !r.Complete || r.Count != int64(sizes.OutboxLatencyRows) || r.Value <= 0 {
				t.Errorf("p99_ms %+v", r)
			}
			if (kind == "postgres") != (got["p99_ms"].Target != nil) {
				t.Errorf("the latency target is PostgreSQL's only: %+v", got["p99_ms"])
			}
		})
	}
}

// TestOutboxScenarioNeeds: the outbox scenario is not part of a default run without a source,
// and asking for it without one, or against a running node, is refused.
func TestOutboxScenarioNeeds(t *testing.T) {
	if slices.Contains(Scenarios, ScenarioOutbox) {
		t.Error("a default run without a source would run the outbox scenario")
	}
	for _, cfg := range []Config{
		{Scenarios: []string{ScenarioOutbox}},
		{Scenarios: []string{ScenarioOutbox}, URL: "http://127.0.0.1:1", RootKey: "k", OutboxURL: "postgres://x/y"},
	} {
		if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "outbox scenario needs") {
			t.Errorf("%+v: error %v", cfg, err)
		}
	}
	c := Config{OutboxURL: "mysql://root@127.0.0.1/x"}
	if err := c.setDefaults(); err != nil || !slices.Contains(c.Scenarios, ScenarioOutbox) {
		t.Errorf("with a source the default run includes the outbox scenario: %v %v", c.Scenarios, err)
	}
}
