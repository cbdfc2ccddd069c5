package sqlite_test

import (
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// open opens a store on path and closes it when tb ends.
func open(tb testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), path, opts)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

// backlogOf publishes n events, a millisecond apart, to a new endpoint of a new tenant, and
// returns them with the endpoint's deliveries.
func backlogOf(t *testing.T, s *sqlite.Store, n int) (*aviso.Tenant, *aviso.Endpoint, []*aviso.Delivery) {
	t.Helper()
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	var backlog []*aviso.Delivery
	for i := range n {
		_, ds := storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), ep)
		backlog = append(backlog, ds...)
	}
	return ten, ep, backlog
}

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) aviso.Store {
		return open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
	})
}

func BenchmarkStore(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run(sync, func(b *testing.B) {
			storetest.Benchmark(b, func(b *testing.B) aviso.Store {
				return open(b, filepath.Join(b.TempDir(), "aviso.db"), sqlite.Options{Synchronous: sync})
			})
		})
	}
}

// migrations returns the rows of schema_migrations, read beside the store.
func migrations(tb testing.TB, path string) map[int]int64 {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(tb.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		tb.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			tb.Fatalf("scan: %v", err)
		}
		out[v] = at
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read schema_migrations: %v", err)
	}
	return out
}

func TestReopenKeepsDataAndMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	ten := storetest.NewTenant(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	first := migrations(t, path)
	if len(first) == 0 || first[1] == 0 {
		t.Fatalf("schema_migrations after the first open: %v, want migration 1 recorded", first)
	}

	s = open(t, path, sqlite.Options{})
	if got := migrations(t, path); !maps.Equal(got, first) {
		t.Errorf("schema_migrations after reopening: %v, want unchanged %v (nothing applied twice)", got, first)
	}
	got, err := s.GetTenant(t.Context(), ten.ID)
	if err != nil {
		t.Fatalf("the tenant did not survive reopening: %v", err)
	}
	if got.Name != ten.Name {
		t.Errorf("tenant name %q after reopening, want %q", got.Name, ten.Name)
	}
}

func TestRestartReleasesLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	_, ds := storetest.Publish(t, s, ten.ID, storetest.Base(), ep)
	now := storetest.Base().Add(time.Second)
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 10, Owner: "before", LeaseUntil: now.Add(time.Hour)})
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %d, %v; want 1", len(cs), err)
	}
	if cs := storetest.Claim(t, s, "other", now, 10); len(cs) != 0 {
		t.Fatalf("a leased delivery was claimed again before the restart")
	}
	if err := s.Close(); err != nil { // the process stops with the attempt unfinished
		t.Fatalf("close: %v", err)
	}

	s = open(t, path, sqlite.Options{})
	cs = storetest.Claim(t, s, "after", now, 10)
	if len(cs) != 1 || cs[0].Delivery.ID != ds[0].ID {
		t.Fatalf("claim right after reopening got %d claims, want the in-flight delivery %s", len(cs), ds[0].ID)
	}
	if d := cs[0].Delivery; d.Status != aviso.StatusPending || d.AttemptCount != 0 {
		t.Errorf("resumed delivery: status %q, AttemptCount %d; want pending, 0", d.Status, d.AttemptCount)
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts sqlite.Options
	}{
		{"empty path", "", sqlite.Options{}},
		{"query in path", filepath.Join(dir, "a.db?mode=ro"), sqlite.Options{}},
		{"URI", "file:" + filepath.Join(dir, "a.db"), sqlite.Options{}},
		{"synchronous OFF", filepath.Join(dir, "b.db"), sqlite.Options{Synchronous: "OFF"}},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "c.db"), sqlite.Options{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tc.path, tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q, %+v) succeeded, want an error", tc.path, tc.opts)
			}
		})
	}
}

func TestOpenAcceptsSynchronousNormal(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{Synchronous: "normal"})
	ten := storetest.NewTenant(t, s)
	if _, err := s.GetTenant(t.Context(), ten.ID); err != nil {
		t.Errorf("get tenant: %v", err)
	}
}

// TestReadsDoNotWaitForWrites holds the database's write lock from another connection: reads
// still answer (WAL), and a write gives up after BusyTimeout with EUNAVAILABLE.
func TestReadsDoNotWaitForWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s := open(t, path, sqlite.Options{BusyTimeout: 50 * time.Millisecond})
	ten := storetest.NewTenant(t, s)

	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatalf("open another connection: %v", err)
	}
	defer other.Close()
	tx, err := other.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `UPDATE tenants SET name = 'locked' WHERE id = ?`, ten.ID); err != nil {
		t.Fatalf("update: %v", err)
	}

	got, err := s.GetTenant(t.Context(), ten.ID)
	if err != nil {
		t.Fatalf("read while another connection writes: %v", err)
	}
	if got.Name != ten.Name {
		t.Errorf("read an uncommitted name %q, want %q", got.Name, ten.Name)
	}
	err = s.CreateTenant(t.Context(), &aviso.Tenant{ID: "blocked", Name: "Blocked", CreatedAt: storetest.Base(), UpdatedAt: storetest.Base()})
	if code := aviso.ErrorCode(err); code != aviso.EUNAVAILABLE {
		t.Errorf("write while the lock is held: code %q (%v), want %q", code, err, aviso.EUNAVAILABLE)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if err := s.CreateTenant(t.Context(), &aviso.Tenant{ID: "free", Name: "Free", CreatedAt: storetest.Base(), UpdatedAt: storetest.Base()}); err != nil {
		t.Errorf("write once the lock is released: %v", err)
	}
}

// TestClaimExcludingEndpoints checks the endpoint-by-endpoint claim used when endpoints are left
// out: the oldest due deliveries of the other endpoints, merged across endpoints in due order,
// skipping leased, future and left-out ones, and nothing (without error) when only left-out
// endpoints have work.
func TestClaimExcludingEndpoints(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
	ten := storetest.NewTenant(t, s)
	a, b, out := storetest.NewEndpoint(t, s, ten.ID), storetest.NewEndpoint(t, s, ten.ID), storetest.NewEndpoint(t, s, ten.ID)
	at := func(sec int) time.Time { return storetest.Base().Add(time.Duration(sec) * time.Second) }
	id := func(ep *aviso.Endpoint, sec int) string {
		t.Helper()
		_, ds := storetest.Publish(t, s, ten.ID, at(sec), ep)
		return ds[0].ID
	}
	outFirst := id(out, -5)
	a1, b2, a3, b4, a5 := id(a, 1), id(b, 2), id(a, 3), id(b, 4), id(a, 5)
	id(b, 3600) // not due
	now := at(10)
	claim := func(limit int, exclude ...string) []string {
		t.Helper()
		caps := map[string]int{}
		for _, id := range exclude {
			caps[id] = 0
		}
		cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: limit, Owner: "node",
			LeaseUntil: now.Add(time.Minute), Caps: caps})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		var ids []string
		for _, c := range cs {
			if c.Event == nil || c.Endpoint == nil || c.Endpoint.ID != c.Delivery.EndpointID {
				t.Errorf("claim %s without its event or endpoint", c.Delivery.ID)
			}
			ids = append(ids, c.Delivery.ID)
		}
		return ids
	}
	tests := []struct {
		name    string
		limit   int
		exclude []string
		want    []string
	}{
		{"merged in due order", 3, []string{out.ID}, []string{a1, b2, a3}},
		{"leased ones skipped", 10, []string{out.ID}, []string{b4, a5}},
		{"only left-out work", 10, []string{out.ID}, nil},
		{"left out no more", 10, nil, []string{outFirst}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := claim(tt.limit, tt.exclude...); !slices.Equal(got, tt.want) {
				t.Errorf("claimed %v, want %v", got, tt.want)
			}
		})
	}
}
