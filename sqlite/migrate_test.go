package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
)

// version2 writes a database at schema version 2 (migrations 0001 and 0002, as an older Aviso
// left it) holding one tenant, endpoint and event, two deliveries and three attempts, and
// returns the IDs of the deliveries.
func version2(tb testing.TB, path string) (pending, succeeded string) {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		tb.Helper()
		if _, err := db.ExecContext(tb.Context(), q, args...); err != nil {
			tb.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`)
	for v, name := range []string{"0001_init.sql", "0002_deliveries_endpoint_due.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			tb.Fatalf("read migration: %v", err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 1)`, v+1, name)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	us := at.UnixMicro()
	ten, ep, evt := aviso.NewID(aviso.PrefixTenant, at), aviso.NewID(aviso.PrefixEndpoint, at), aviso.NewID(aviso.PrefixEvent, at)
	pending, succeeded = aviso.NewID(aviso.PrefixDelivery, at), aviso.NewID(aviso.PrefixDelivery, at.Add(time.Millisecond))
	exec(`INSERT INTO tenants (id, name, created_at, updated_at) VALUES (?, 'Acme', ?, ?)`, ten, us, us)
	exec(`INSERT INTO endpoints (id, tenant_id, url, description, format, timeout_seconds, created_at, updated_at)
		VALUES (?, ?, 'https://example.com/hook', '', 'standard', 10, ?, ?)`, ep, ten, us, us)
	exec(`INSERT INTO events (seq, tenant_id, id, type, data, created_at) VALUES (7, ?, ?, 'invoice.created', '{}', ?)`, ten, evt, us)
	exec(`INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
		round_attempts, next_attempt_at, last_response_status, last_error, lease_owner, lease_until, created_at, updated_at)
		VALUES (?, ?, 7, ?, ?, 'invoice.created', 'pending', 2, 2, ?, 503, 'unavailable', 'node-a', ?, ?, ?)`,
		pending, ten, evt, ep, us+60e6, us+30e6, us, us+1e6)
	exec(`INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
		round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
		VALUES (?, ?, 7, ?, ?, 'invoice.created', 'succeeded', 1, 1, NULL, 200, '', ?, ?)`, succeeded, ten, evt, ep, us, us+2e6)
	for i, d := range []string{pending, pending, succeeded} {
		status := map[bool]int{true: 503, false: 200}[d == pending]
		exec(`INSERT INTO attempts (id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers,
			response_status, response_body, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?, 'https://example.com/hook',
			'{"webhook-id":"x"}', ?, 'body', 12, '')`,
			aviso.NewID(aviso.PrefixAttempt, at.Add(time.Duration(i)*time.Second)), d, ten, ep, evt, us+int64(i)*1e6, status)
	}
	return pending, succeeded
}

func TestMigrationWithoutRowidKeepsRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	pending, succeeded := version2(t, path)
	s := open(t, path, sqlite.Options{})
	if got := migrations(t, path); len(got) < 3 {
		t.Fatalf("schema_migrations has %d rows, want at least 3", len(got))
	}

	tenant := tenantOf(t, path)
	for _, tc := range []struct {
		name     string
		id       string
		status   aviso.DeliveryStatus
		count    int
		attempts int
		response int
	}{
		{name: "pending", id: pending, status: aviso.StatusPending, count: 2, attempts: 2, response: 503},
		{name: "succeeded", id: succeeded, status: aviso.StatusSucceeded, count: 1, attempts: 1, response: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := s.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: tenant})
			if err != nil {
				t.Fatalf("list deliveries: %v", err)
			}
			if len(ds.Data) != 2 {
				t.Fatalf("listed %d deliveries, want 2", len(ds.Data))
			}
			d, err := s.GetDelivery(t.Context(), tenant, tc.id)
			if err != nil {
				t.Fatalf("get delivery: %v", err)
			}
			if d.Status != tc.status || d.AttemptCount != tc.count || len(d.Attempts) != tc.attempts || d.LastResponseStatus != tc.response {
				t.Errorf("delivery = status %s, %d attempts counted, %d listed, last response %d; want %s, %d, %d, %d",
					d.Status, d.AttemptCount, len(d.Attempts), d.LastResponseStatus, tc.status, tc.count, tc.attempts, tc.response)
			}
			for _, a := range d.Attempts {
				if a.RequestHeaders["webhook-id"] != "x" || a.ResponseBody != "body" {
					t.Errorf("attempt %s: headers %v, body %q: not as written", a.ID, a.RequestHeaders, a.ResponseBody)
				}
			}
		})
	}

	// The lease of the previous run is released and the pending delivery is claimable again.
	now := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 10, Owner: "node-b", LeaseUntil: now.Add(time.Minute)})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if len(cs) != 1 || cs[0].Delivery.ID != pending {
		t.Fatalf("claimed %d deliveries, want the pending one", len(cs))
	}

	// The foreign keys still cascade: deleting the endpoint removes its deliveries and attempts.
	if err := s.DeleteEndpoint(t.Context(), tenant, cs[0].Endpoint.ID); err != nil {
		t.Fatalf("delete endpoint: %v", err)
	}
	if _, err := s.GetDelivery(t.Context(), tenant, pending); aviso.ErrorCode(err) != aviso.ENOTFOUND {
		t.Errorf("get delivery after deleting its endpoint: %v, want not found", err)
	}
	if n := count(t, path, "attempts"); n != 0 {
		t.Errorf("%d attempts left after deleting their endpoint, want 0", n)
	}
}

// tenantOf returns the ID of the only tenant in the database at path.
func tenantOf(tb testing.TB, path string) string {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	defer db.Close()
	var id string
	if err := db.QueryRowContext(tb.Context(), `SELECT id FROM tenants`).Scan(&id); err != nil {
		tb.Fatalf("read tenant: %v", err)
	}
	return id
}

// count returns the number of rows in table, read beside the store.
func count(tb testing.TB, path, table string) int {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(tb.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	return n
}

// A store at migration 18 that stopped without writing every delivery (its event rows named
// some with no row of their own) opens with each of them a pending row, claimable. Afterwards,
// the events' seqs still only grow, even once every event was pruned (the feed's cursors).
func TestMigrationWritesUnwrittenDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`)
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for v, name := range names[:18] {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 1)`, v+1, filepath.Base(name))
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	us := at.UnixMicro()
	ten, ep, evt := aviso.NewID(aviso.PrefixTenant, at), aviso.NewID(aviso.PrefixEndpoint, at), aviso.NewID(aviso.PrefixEvent, at)
	named, written := aviso.NewID(aviso.PrefixDelivery, at), aviso.NewID(aviso.PrefixDelivery, at.Add(time.Millisecond))
	exec(`INSERT INTO tenants (id, name, created_at, updated_at) VALUES (?, 'Acme', ?, ?)`, ten, us, us)
	exec(`INSERT INTO endpoints (id, tenant_id, url, description, format, timeout_seconds, created_at, updated_at)
		VALUES (?, ?, 'https://example.com/hook', '', 'standard', 10, ?, ?)`, ep, ten, us, us)
	// Event 5 names two deliveries; one was attempted once (its row written, with the outcome).
	deferred := fmt.Sprintf(`[["%s","%s",%d,%d,%d],["%s","%s",%d,%d,%d]]`, named, ep, us, us, us, written, ep, us, us, us)
	exec(`INSERT INTO events (seq, tenant_id, id, type, data, created_at, deferred) VALUES (5, ?, ?, 'invoice.created', '{}', ?, ?)`,
		ten, evt, us, deferred)
	exec(`INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
		round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
		VALUES (?, ?, 5, ?, ?, 'invoice.created', 'succeeded', 1, 1, NULL, 200, '', ?, ?)`, written, ten, evt, ep, us, us+1e6)
	exec(`UPDATE deferred_mark SET seq = 5`) // the first event that may name unwritten deliveries
	db.Close()

	s := open(t, path, sqlite.Options{})
	d, err := s.GetDelivery(t.Context(), ten, named)
	if err != nil || d.Status != aviso.StatusPending || d.AttemptCount != 0 || d.EndpointID != ep {
		t.Fatalf("the unwritten delivery after the migration: %+v, %v; want it pending, never attempted", d, err)
	}
	if d, err := s.GetDelivery(t.Context(), ten, written); err != nil || d.Status != aviso.StatusSucceeded || d.AttemptCount != 1 {
		t.Fatalf("the delivery written before: %+v, %v; want it as it was (succeeded, one attempt)", d, err)
	}
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: at.Add(time.Second), Limit: 10, Owner: "node",
		LeaseUntil: at.Add(time.Minute)})
	if err != nil || len(cs) != 1 || cs[0].Delivery.ID != named || cs[0].Event.ID != evt {
		t.Fatalf("claim after the migration: %d claims, %v; want the unwritten delivery with its event", len(cs), err)
	}
	// publish publishes one event and checks that it is the only one after the cursor after.
	publish := func(s *sqlite.Store, after string) {
		t.Helper()
		out, err := s.InsertEvents(t.Context(), []aviso.NewEvent{{Event: &aviso.Event{ID: aviso.NewID(aviso.PrefixEvent, at),
			TenantID: ten, Type: "invoice.created", Data: []byte(`{}`), CreatedAt: at}}})
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.ListEvents(t.Context(), aviso.ListEventsParams{TenantID: ten, ListParams: aviso.ListParams{After: after}})
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != out[0].Event.ID {
			t.Fatalf("events after seq %s: %v, %v; want only the one just published (a seq is never used twice)", after, page, err)
		}
	}
	publish(s, "5") // seq 6
	if n, err := s.Prune(t.Context(), at.Add(time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("prune: %d, %v; want both events pruned", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	publish(open(t, path, sqlite.Options{}), "6") // after every event was pruned, and a restart
}
