package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// explain runs an EXPLAIN statement and returns its plan, a line a step.
func explain(tb testing.TB, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, stmt string, args ...any) string {
	tb.Helper()
	rows, err := q.Query(tb.Context(), stmt, args...)
	if err != nil {
		tb.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// TestFeedPlan: a feed read walks events_feed_idx in order from the cursor and stops at the
// page, even for a tenant the statistics do not know (one that has just published thousands of
// events), instead of collecting and sorting the tenant's whole feed.
func TestFeedPlan(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "aviso_feedplan_")
	s, err := Open(t.Context(), url, Options{Migrate: true, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Now()
	if err := s.CreateTenant(ctx, &aviso.Tenant{ID: "acme", Name: "ACME", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	batch := make([]aviso.NewEvent, 3000)
	for i := range batch {
		batch[i] = aviso.NewEvent{Event: &aviso.Event{ID: fmt.Sprintf("e%d", i), TenantID: "acme", Type: "invoice.created",
			Data: []byte(`{}`), CreatedAt: now}}
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, set := range feedSettings {
		if _, err := tx.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	// The feed shows an event once every older writing transaction on the cluster has ended
	// (feed.go): other tests' transactions may hold these back for a moment, so each plan is
	// read again until the page holds its 51 rows.
	for _, types := range [][]string{nil, {"invoice.created"}} {
		var text string
		for deadline := time.Now().Add(30 * time.Second); ; {
			text = explain(t, tx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+feedSQL, "acme", "0", int64(0), types, 51, "", nil)
			if strings.Contains(text, "(actual rows=51 loops=1)") || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling the cluster's horizon: nothing to wait on
		}
		if !strings.Contains(text, "Index Scan using events_feed_idx on events ev") || strings.Contains(text, "Bitmap") || strings.Contains(text, "events_tenant_idx") ||
			!strings.Contains(text, "Index Scan using events_feed_idx on events ev (actual rows=51 loops=1)") {
			t.Errorf("types %v: the page is not read in index order, 51 rows:\n%s", types, text)
		}
	}
}
