package bench

import (
	"context"
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
			sizes.OutboxRows, sizes.OutboxLatencyRows, sizes.OutboxRate = 3000, 100, 200
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
			if r := got["rows_per_s"]; !r.Complete || r.Count != 3000 || r.Value <= 0 || r.Target == nil {
				t.Errorf("rows_per_s %+v", r)
			}
			if r := got["p99_ms"]; !r.Complete || r.Count != 100 || r.Value <= 0 {
				t.Errorf("p99_ms %+v", r)
			}
			if (kind == "postgres") != (got["p99_ms"].Target != nil) {
				t.Errorf("the latency target is PostgreSQL's only: %+v", got["p99_ms"])
			}
		})
	}
}
