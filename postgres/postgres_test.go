package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/jackc/pgx/v5"
)

// testSchema returns the database URL and a fresh schema name, dropped when tb ends.
func testSchema(tb testing.TB) (string, string) {
	tb.Helper()
	return testenv.PostgresSchema(tb, "aviso_test_")
}

// openSchema opens a migrated store on schema, closed when tb ends.
func openSchema(tb testing.TB, url, schema string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), url, postgres.Options{Migrate: true, Schema: schema})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// openStore opens a migrated store on a fresh schema of its own.
func openStore(tb testing.TB) *postgres.Store {
	tb.Helper()
	url, schema := testSchema(tb)
	return openSchema(tb, url, schema)
}

var base = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func mustTenant(tb testing.TB, s aviso.Store, id string) {
	tb.Helper()
	if err := s.CreateTenant(tb.Context(), &aviso.Tenant{ID: id, Name: id, CreatedAt: base, UpdatedAt: base}); err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
}

func mustEndpoint(tb testing.TB, s aviso.Store, tenantID string) *aviso.Endpoint {
	tb.Helper()
	e := &aviso.Endpoint{ID: aviso.NewID(aviso.PrefixEndpoint, base), TenantID: tenantID, URL: "https://example.com/h",
		Format: aviso.FormatStandard, TimeoutSeconds: 10, CreatedAt: base, UpdatedAt: base}
	if err := s.CreateEndpoint(tb.Context(), e); err != nil {
		tb.Fatalf("create endpoint: %v", err)
	}
	return e
}

// newEvent returns an event with the given ID and one delivery, due at base, to each endpoint.
func newEvent(tenantID, id string, eps ...*aviso.Endpoint) aviso.NewEvent {
	ev := &aviso.Event{ID: id, TenantID: tenantID, Type: "invoice.created",
		Data: json.RawMessage(`{"n": 1, "a": [true, null]}`), CreatedAt: base}
	ne := aviso.NewEvent{Event: ev}
	for _, e := range eps {
		due := base
		ne.Deliveries = append(ne.Deliveries, &aviso.Delivery{ID: aviso.NewID(aviso.PrefixDelivery, base),
			TenantID: tenantID, EventID: id, EndpointID: e.ID, EventType: ev.Type, Status: aviso.StatusPending,
			NextAttemptAt: &due, CreatedAt: base, UpdatedAt: base})
	}
	return ne
}

// publish stores n events with a delivery each to ep and returns the delivery IDs.
func publish(tb testing.TB, s aviso.Store, tenantID string, n int, ep *aviso.Endpoint) []string {
	tb.Helper()
	var batch []aviso.NewEvent
	var ids []string
	for i := range n {
		ne := newEvent(tenantID, fmt.Sprintf("evt_%d_%s", i, aviso.NewID("", base)), ep)
		batch = append(batch, ne)
		ids = append(ids, ne.Deliveries[0].ID)
	}
	if _, err := s.InsertEvents(tb.Context(), batch); err != nil {
		tb.Fatalf("insert events: %v", err)
	}
	return ids
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	const nodes = 8
	errs := make(chan error, nodes)
	var wg sync.WaitGroup
	for range nodes {
		wg.Go(func() { errs <- postgres.Migrate(t.Context(), url, postgres.Options{Schema: schema}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("migrate: %v", err)
		}
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, versions int
	err = conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM `+
		pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&rows, &versions)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if rows != versions || rows == 0 {
		t.Errorf("schema_migrations has %d rows for %d versions, want each version once", rows, versions)
	}
	// A store opened without Migrate accepts the migrated schema.
	s, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("open migrated schema without Migrate: %v", err)
	}
	_ = s.Close()
}

func TestOpenUnmigrated(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	s, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
	if err == nil {
		_ = s.Close()
		t.Fatal("open of an empty schema without Migrate succeeded; want an error telling to migrate")
	}
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	mustTenant(t, s, "acme")
	ep := mustEndpoint(t, s, "acme")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unique", s.CreateTenant(ctx, &aviso.Tenant{ID: "acme", Name: "x", CreatedAt: base, UpdatedAt: base}), aviso.ECONFLICT},
		{"foreign key", s.CreateEndpoint(ctx, &aviso.Endpoint{ID: "ep_x", TenantID: "nobody", CreatedAt: base, UpdatedAt: base}), aviso.ENOTFOUND},
		{"no rows", func() error { _, err := s.GetTenant(ctx, "nobody"); return err }(), aviso.ENOTFOUND},
		{"other tenant", func() error { _, err := s.GetEndpoint(ctx, "other", ep.ID); return err }(), aviso.ENOTFOUND},
		{"events of unknown tenant", func() error {
			_, err := s.InsertEvents(ctx, []aviso.NewEvent{newEvent("nobody", "evt_1")})
			return err
		}(), aviso.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := aviso.ErrorCode(tt.err); got != tt.want {
				t.Errorf("code %q (%v), want %q", got, tt.err, tt.want)
			}
		})
	}
}

// TestTwoNodesClaim: two stores on one schema claim concurrently; no delivery is handed to both.
func TestTwoNodesClaim(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	a, b := openSchema(t, url, schema), openSchema(t, url, schema)
	mustTenant(t, a, "acme")
	ep := mustEndpoint(t, a, "acme")
	const total = 200
	ids := publish(t, a, "acme", total, ep)

	now := base.Add(time.Second)
	var mu sync.Mutex
	owners := map[string][]string{}
	var wg sync.WaitGroup
	for i, s := range []*postgres.Store{a, b, a, b} {
		owner := fmt.Sprintf("node-%d", i)
		wg.Go(func() {
			for {
				cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 7, Owner: owner,
					LeaseUntil: now.Add(time.Minute)})
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					owners[c.Delivery.ID] = append(owners[c.Delivery.ID], owner)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if got := owners[id]; len(got) != 1 {
			t.Errorf("delivery %s claimed by %v, want exactly one owner", id, got)
		}
	}
	if len(owners) != total {
		t.Errorf("claimed %d distinct deliveries, want %d", len(owners), total)
	}
}

// TestExpiredLease: a node that dies keeps its leases only until they expire.
func TestExpiredLease(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	dead, alive := openSchema(t, url, schema), openSchema(t, url, schema)
	mustTenant(t, dead, "acme")
	ep := mustEndpoint(t, dead, "acme")
	ids := publish(t, dead, "acme", 3, ep)

	now := base.Add(time.Second)
	leaseUntil := now.Add(30 * time.Second)
	cs, err := dead.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 10, Owner: "dead", LeaseUntil: leaseUntil})
	if err != nil || len(cs) != len(ids) {
		t.Fatalf("dead node claimed %d, %v; want %d", len(cs), err, len(ids))
	}
	_ = dead.Close() // kill -9: no release

	tests := []struct {
		name string
		at   time.Time
		want int
	}{
		{"lease valid", leaseUntil.Add(-time.Millisecond), 0},
		{"lease expired", leaseUntil.Add(time.Millisecond), len(ids)},
		{"re-leased", leaseUntil.Add(2 * time.Millisecond), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := alive.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: tt.at, Limit: 10, Owner: "alive",
				LeaseUntil: tt.at.Add(time.Minute)})
			if err != nil {
				t.Fatalf("claim: %v", err)
			}
			if len(cs) != tt.want {
				t.Errorf("claimed %d, want %d", len(cs), tt.want)
			}
		})
	}
}

// TestNotifyAcrossNodes: a publish on one store wakes another store's Wakeups.
func TestNotifyAcrossNodes(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	a, b := openSchema(t, url, schema), openSchema(t, url, schema)
	mustTenant(t, a, "acme")
	ep := mustEndpoint(t, a, "acme")

	// The listener signals once when it connects; wait for that, so the next signal is the NOTIFY.
	deadline := time.After(10 * time.Second)
	select {
	case <-b.Wakeups():
	case <-deadline:
		t.Fatal("store B's listener did not connect within 10s")
	}
	publish(t, a, "acme", 1, ep)
	select {
	case <-b.Wakeups():
	case <-deadline:
		t.Fatal("store B got no wakeup within 10s of a publish on store A")
	}
}

// TestNotifyNamesSchema: a publish is announced by a NOTIFY whose payload is the store's schema,
// which a store of another schema on the same database does not heed.
func TestNotifyNamesSchema(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "LISTEN aviso_work"); err != nil {
		t.Fatal(err)
	}
	a := openSchema(t, url, schema)
	mustTenant(t, a, "acme")
	publish(t, a, "acme", 1, mustEndpoint(t, a, "acme"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		n, err := conn.WaitForNotification(ctx) // other tests' stores notify on the channel too
		if err != nil {
			t.Fatalf("no notification with payload %q within 10s: %v", schema, err)
		}
		if n.Payload == schema {
			return
		}
	}
}

// TestSameEventTwoNodes: two nodes inserting the same event ID at once create it once.
func TestSameEventTwoNodes(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	a, b := openSchema(t, url, schema), openSchema(t, url, schema)
	mustTenant(t, a, "acme")
	ep := mustEndpoint(t, a, "acme")

	const rounds = 20
	for i := range rounds {
		id := fmt.Sprintf("evt_same_%d", i)
		results := make([][]aviso.InsertedEvent, 4)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j, s := range []*postgres.Store{a, b, a, b} {
			wg.Go(func() {
				<-start
				res, err := s.InsertEvents(t.Context(), []aviso.NewEvent{newEvent("acme", id, ep)})
				if err != nil {
					t.Errorf("insert: %v", err)
				}
				results[j] = res
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for _, res := range results {
			if len(res) == 1 && res[0].Created {
				created++
			}
			if len(res) == 1 && res[0].Event.ID != id {
				t.Errorf("result names event %s, want %s", res[0].Event.ID, id)
			}
		}
		if created != 1 {
			t.Errorf("event %s: %d inserts report Created, want 1", id, created)
		}
		page, err := a.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: "acme", EventID: id})
		if err != nil {
			t.Fatalf("list deliveries: %v", err)
		}
		if len(page.Data) != 1 {
			t.Errorf("event %s has %d deliveries, want 1", id, len(page.Data))
		}
	}
}

// TestInsertEventsBatch: duplicates inside one batch and against stored events.
func TestInsertEventsBatch(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	mustTenant(t, s, "acme")
	ep := mustEndpoint(t, s, "acme")
	first := newEvent("acme", "evt_a", ep)
	if _, err := s.InsertEvents(t.Context(), []aviso.NewEvent{first}); err != nil {
		t.Fatal(err)
	}
	dupOfStored := newEvent("acme", "evt_a", ep)
	dupOfStored.Event.Type = "invoice.voided"
	fresh := newEvent("acme", "evt_b", ep)
	dupInBatch := newEvent("acme", "evt_b", ep)
	res, err := s.InsertEvents(t.Context(), []aviso.NewEvent{dupOfStored, fresh, dupInBatch})
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	want := []struct {
		id, typ string
		created bool
	}{{"evt_a", "invoice.created", false}, {"evt_b", "invoice.created", true}, {"evt_b", "invoice.created", false}}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d", len(res), len(want))
	}
	for i, w := range want {
		if res[i].Event.ID != w.id || res[i].Event.Type != w.typ || res[i].Created != w.created {
			t.Errorf("result %d: %s %s created=%v, want %s %s created=%v", i, res[i].Event.ID, res[i].Event.Type,
				res[i].Created, w.id, w.typ, w.created)
		}
	}
	page, err := s.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 {
		t.Errorf("%d deliveries stored, want 2 (one per created event)", len(page.Data))
	}
}

// TestPruneBatches: pruning removes old events with their deliveries and attempts, batch by batch.
func TestPruneBatches(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	mustTenant(t, s, "acme")
	ep := mustEndpoint(t, s, "acme")
	ids := publish(t, s, "acme", 5, ep)
	now := base.Add(time.Second)
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 1, Owner: "n", LeaseUntil: now.Add(time.Minute)})
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	d := cs[0].Delivery
	_, err = s.CompleteDeliveries(t.Context(), []aviso.Completion{{Attempt: &aviso.Attempt{ID: "att_1", DeliveryID: d.ID,
		TenantID: d.TenantID, EndpointID: d.EndpointID, EventID: d.EventID, At: now, ResponseStatus: 200,
		ResponseBody: "ok\x00\xff"}, Status: aviso.StatusSucceeded, Owner: "n"}})
	if err != nil {
		t.Fatalf("complete (with a NUL and invalid UTF-8 in the body): %v", err)
	}
	for _, step := range []struct{ limit, want int }{{2, 2}, {2, 2}, {2, 1}, {2, 0}} {
		n, err := s.Prune(t.Context(), base.Add(time.Millisecond), step.limit)
		if err != nil || n != step.want {
			t.Fatalf("prune %d: %d, %v; want %d", step.limit, n, err, step.want)
		}
	}
	for _, id := range ids {
		if _, err := s.GetDelivery(t.Context(), "acme", id); aviso.ErrorCode(err) != aviso.ENOTFOUND {
			t.Errorf("delivery %s after prune: %v, want not found", id, err)
		}
	}
}

func BenchmarkInsertEvents(b *testing.B) {
	s := openStore(b)
	mustTenant(b, s, "acme")
	eps := []*aviso.Endpoint{mustEndpoint(b, s, "acme"), mustEndpoint(b, s, "acme")}
	i := 0
	for b.Loop() {
		batch := make([]aviso.NewEvent, 50)
		for j := range batch {
			i++
			batch[j] = newEvent("acme", fmt.Sprintf("evt_%d", i), eps...)
		}
		if _, err := s.InsertEvents(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// TestListenerReconnects: when the LISTEN connection is killed, the store reconnects and keeps
// receiving notifications.
func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	b := openSchema(t, url+"&application_name="+schema, schema)
	a := openSchema(t, url, schema)
	mustTenant(t, a, "acme")
	ep := mustEndpoint(t, a, "acme")
	deadline := time.After(20 * time.Second)
	wait := func(what string) {
		t.Helper()
		select {
		case <-b.Wakeups():
		case <-deadline:
			t.Fatalf("no wakeup %s within the deadline", what)
		}
	}
	wait("when the listener connected")

	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	err = conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query = 'LISTEN aviso_work'`, schema).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listener connections, %v; want 1", killed, err)
	}
	wait("when the listener reconnected")
	publish(t, a, "acme", 1, ep)
	wait("after a publish on the other store")
}

// TestCompleteBatchAutoDisable: failures counted within one batch disable the endpoint, and its
// other pending deliveries fail with it.
func TestCompleteBatchAutoDisable(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	mustTenant(t, s, "acme")
	ep := mustEndpoint(t, s, "acme")
	ids := publish(t, s, "acme", 4, ep)
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: base, Limit: 3, Owner: "n", LeaseUntil: base.Add(time.Minute)})
	if err != nil || len(cs) != 3 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	next := base.Add(time.Hour)
	var comps []aviso.Completion
	for i, c := range cs {
		d := c.Delivery
		comps = append(comps, aviso.Completion{Attempt: &aviso.Attempt{ID: fmt.Sprintf("att_%d", i), DeliveryID: d.ID,
			TenantID: d.TenantID, EndpointID: d.EndpointID, EventID: d.EventID, At: base, ResponseStatus: 500},
			Status: aviso.StatusPending, NextAttemptAt: &next, Owner: "n", DisableAfter: 3})
	}
	if _, err := s.CompleteDeliveries(t.Context(), comps); err != nil {
		t.Fatalf("complete: %v", err)
	}
	e, err := s.GetEndpoint(t.Context(), "acme", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Disabled || e.DisabledReason != aviso.DisabledConsecutiveFailed || e.ConsecutiveFailures != 3 {
		t.Errorf("endpoint disabled=%v reason=%q failures=%d; want true, %q, 3", e.Disabled, e.DisabledReason,
			e.ConsecutiveFailures, aviso.DisabledConsecutiveFailed)
	}
	for _, id := range ids {
		d, err := s.GetDelivery(t.Context(), "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != aviso.StatusFailed || d.LastError != "endpoint disabled" {
			t.Errorf("delivery %s: %s %q, want failed \"endpoint disabled\"", id, d.Status, d.LastError)
		}
	}
}
