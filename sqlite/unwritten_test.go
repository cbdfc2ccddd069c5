package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// unfinished is sqlite.Unfinished on the file at path, read beside the store.
func unfinished(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	n, err := sqlite.Unfinished(t.Context(), tx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A crash loses no unwritten delivery and sends none twice: after it, those without a recorded
// outcome (one in flight, one never claimed) are claimable at once, under their own IDs, and
// the one that succeeded keeps its row and is not claimed again. Open writes nothing for it.
func TestUnwrittenSurviveCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	var ds []*aviso.Delivery
	for i := range 3 {
		_, got := storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), ep)
		ds = append(ds, got...)
	}
	if n := unfinished(t, path); n != 3 {
		t.Fatalf("unwritten after publishing: %d, want 3 (no delivery row written)", n)
	}
	// The first succeeds: its row is written. The second is claimed, in flight at the crash.
	now := storetest.Base().Add(time.Second)
	cs := storetest.Claim(t, s, "node", now, 2)
	if len(cs) != 2 || cs[0].Delivery.ID != ds[0].ID || cs[1].Delivery.ID != ds[1].ID {
		t.Fatalf("claimed %v, want the first two of %v", claimIDs(cs), deliveryIDs(ds))
	}
	storetest.Complete(t, s, storetest.Completion(ds[0], "node", now, 200, false))
	if err := sqlite.Abandon(s); err != nil {
		t.Fatalf("crash: %v", err)
	}
	if n := unfinished(t, path); n != 2 {
		t.Fatalf("unwritten after the crash: %d, want 2", n)
	}

	s = open(t, path, sqlite.Options{})
	before := sqlite.Commits(s)
	want := map[string]aviso.DeliveryStatus{ds[0].ID: aviso.StatusSucceeded, ds[1].ID: aviso.StatusPending, ds[2].ID: aviso.StatusPending}
	for id, status := range want {
		d, err := s.GetDelivery(t.Context(), ten.ID, id)
		if err != nil {
			t.Fatalf("delivery %s after the crash: %v", id, err)
		}
		if d.Status != status || d.EndpointID != ep.ID || d.EventType != "invoice.created" {
			t.Errorf("delivery %s: status %s endpoint %s type %s, want %s %s invoice.created", id, d.Status, d.EndpointID, d.EventType, status, ep.ID)
		}
		if status == aviso.StatusSucceeded && (d.AttemptCount != 1 || len(d.Attempts) != 1) {
			t.Errorf("delivery %s: %d attempts, %d recorded, want 1: the written row was kept", id, d.AttemptCount, len(d.Attempts))
		}
	}
	page, err := s.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: ten.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deliveryIDs(page.Data), deliveryIDs(ds)) {
		t.Fatalf("deliveries after the crash: %v, want %v (none lost, none twice)", deliveryIDs(page.Data), deliveryIDs(ds))
	}
	if n := sqlite.Commits(s) - before; n != 0 {
		t.Errorf("the reads committed %d writes, want none", n)
	}
	if cs := storetest.Claim(t, s, "node", now, 10); !slices.Equal(claimIDs(cs), []string{ds[1].ID, ds[2].ID}) {
		t.Fatalf("claimed after the crash %v, want %v", claimIDs(cs), []string{ds[1].ID, ds[2].ID})
	}
}

// Reads answer unwritten deliveries, in memory or only in the log, from the event rows: they
// write nothing and leave the window as it is.
func TestReadsDoNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s := open(t, path, sqlite.Options{Window: 2})
	ten, ep, ds := backlogOf(t, s, 5)
	// Loads two into the window and claims one; three stay in the log.
	if cs := storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 1); len(cs) != 1 {
		t.Fatalf("claimed %d, want 1", len(cs))
	}
	if n := sqlite.WindowCount(s); n != 2 {
		t.Fatalf("window: %d, want 2", n)
	}
	before := sqlite.Commits(s)
	for _, want := range ds {
		d, err := s.GetDelivery(t.Context(), ten.ID, want.ID)
		if err != nil {
			t.Fatalf("get %s: %v", want.ID, err)
		}
		if d.Status != aviso.StatusPending || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(*want.NextAttemptAt) ||
			d.EventID != want.EventID || d.AttemptCount != 0 || len(d.Attempts) != 0 {
			t.Errorf("delivery %s: %+v, want it pending, never attempted, due %v", want.ID, d, want.NextAttemptAt)
		}
	}
	for _, p := range []aviso.ListDeliveriesParams{
		{TenantID: ten.ID},
		{TenantID: ten.ID, Desc: true},
		{TenantID: ten.ID, EndpointID: ep.ID, Status: aviso.StatusPending},
		{TenantID: ten.ID, EventID: ds[3].EventID},
		{TenantID: ten.ID, Status: aviso.StatusFailed},
	} {
		got := walkDeliveries(t, s, p, 2)
		want := deliveryIDs(ds)
		switch {
		case p.EventID != "":
			want = want[3:4]
		case p.Status == aviso.StatusFailed:
			want = []string{}
		case p.Desc:
			slices.Reverse(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("list %+v: %v, want %v", p, got, want)
		}
	}
	if n := sqlite.Commits(s) - before; n != 0 {
		t.Errorf("the reads committed %d writes, want none", n)
	}
	if n := sqlite.WindowCount(s); n != 2 {
		t.Errorf("window after the reads: %d, want 2", n)
	}
	if n := unfinished(t, path); n != 5 {
		t.Errorf("unwritten after the reads: %d, want 5", n)
	}
}

// walkDeliveries lists every page of p, size at a time, and returns the IDs.
func walkDeliveries(t *testing.T, s *sqlite.Store, p aviso.ListDeliveriesParams, size int) []string {
	t.Helper()
	out := []string{}
	p.Limit = size
	for {
		page, err := s.ListDeliveries(t.Context(), p)
		if err != nil {
			t.Fatalf("list %+v: %v", p, err)
		}
		out = append(out, deliveryIDs(page.Data)...)
		if !page.HasMore {
			return out
		}
		p.After = page.NextCursor
	}
}

// A clean Close writes every unwritten delivery as a row: nothing is left for a tool that reads
// the tables, and the next Open finds them as rows.
func TestCloseWritesUnwritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ten, _, ds := backlogOf(t, s, 3)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := unfinished(t, path); n != 0 {
		t.Fatalf("after Close, %d unwritten deliveries, want 0", n)
	}
	s = open(t, path, sqlite.Options{})
	for _, want := range ds {
		if d, err := s.GetDelivery(t.Context(), ten.ID, want.ID); err != nil || d.Status != aviso.StatusPending {
			t.Fatalf("delivery after Close and Open: %v, %v; want it pending", d, err)
		}
	}
	if cs := storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 10); len(cs) != len(ds) {
		t.Fatalf("claimed %d, want %d", len(cs), len(ds))
	}
}

// What a publish names in its event's row instead of writing rows: deliveries of an event with
// at most 16, with the window on. Both kinds are claimed together.
func TestWhatIsNamed(t *testing.T) {
	tests := []struct {
		name        string
		window      int
		endpoints   int // per event
		events      int
		wantWritten int
	}{
		{"default", 0, 1, 5, 0},
		{"a window smaller than the burst", 2, 2, 5, 0},
		{"fan-out is written", 0, 17, 1, 17},
		{"off", -1, 1, 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviso.db")
			s := open(t, path, sqlite.Options{Window: tc.window})
			ten := storetest.NewTenant(t, s)
			var eps []*aviso.Endpoint
			for range tc.endpoints {
				eps = append(eps, storetest.NewEndpoint(t, s, ten.ID))
			}
			var want []string
			for i := range tc.events {
				_, ds := storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), eps...)
				want = append(want, deliveryIDs(ds)...)
			}
			if n := len(want) - unfinished(t, path); n != tc.wantWritten {
				t.Fatalf("rows written at the publish: %d, want %d", n, tc.wantWritten)
			}
			var got []string
			for range 10 {
				got = append(got, claimIDs(storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 1000))...)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("claimed %d deliveries, want all %d once", len(got), len(want))
			}
		})
	}
}

// A delivery scheduled for later at its publish (a test send's, which is attempted at once
// outside the engine and queued a minute ahead) is written as a row, so that an outcome
// recorded without a claim finds it; the engine does not send it again.
func TestCompleteWithoutClaim(t *testing.T) {
	s := testStore(t)
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	ne := storetest.NewEvent(ten.ID, "invoice.created", storetest.Base(), ep)
	later := storetest.Base().Add(time.Minute)
	ne.Deliveries[0].NextAttemptAt = &later
	if _, err := s.InsertEvents(t.Context(), []aviso.NewEvent{ne}); err != nil {
		t.Fatal(err)
	}
	d := ne.Deliveries[0]
	storetest.Complete(t, s, storetest.Completion(d, "test-send", storetest.Base(), 200, false))
	got, err := s.GetDelivery(t.Context(), ten.ID, d.ID)
	if err != nil || got.Status != aviso.StatusSucceeded || len(got.Attempts) != 1 {
		t.Fatalf("delivery after its outcome: %+v, %v; want succeeded with one attempt", got, err)
	}
	if cs := storetest.Claim(t, s, "node", later.Add(time.Hour), 10); len(cs) != 0 {
		t.Fatalf("claimed %v after its outcome was recorded", claimIDs(cs))
	}
}

// When the window is full of deliveries a claim leaves out (an endpoint that holds enough work
// on the node) and the log holds more, the claim writes those as rows and loads the log's next
// ones: the other endpoints' deliveries do not wait behind them.
func TestFullWindowWritesIdle(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{Window: 3})
	ten := storetest.NewTenant(t, s)
	slow, fast := storetest.NewEndpoint(t, s, ten.ID), storetest.NewEndpoint(t, s, ten.ID)
	for i := range 5 {
		storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), slow)
	}
	var want []string
	for i := range 2 {
		_, ds := storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(10+i)*time.Millisecond), fast)
		want = append(want, deliveryIDs(ds)...)
	}
	var got []string
	for range 3 {
		cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: storetest.Base().Add(time.Second), Limit: 10,
			Owner: "node", LeaseUntil: storetest.Base().Add(time.Minute), ExcludeEndpoints: []string{slow.ID}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, claimIDs(cs)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want the fast endpoint's %v", got, want)
	}
	page, err := s.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: ten.ID, EndpointID: slow.ID})
	if err != nil || len(page.Data) != 5 {
		t.Fatalf("slow endpoint's deliveries: %d, %v; want 5", len(page.Data), err)
	}
	if cs := storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 10); len(cs) != 5 {
		t.Fatalf("claimed %d of the slow endpoint's, want 5", len(cs))
	}
}

// When the window is full of deliveries a claim leaves out and the log holds only more of the
// same endpoint's, writing them as rows would bring nothing claimable in: the claim comes up
// empty and writes nothing (one endpoint with a burst far beyond its share of the node).
func TestFullWindowOfOneEndpointWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s := open(t, path, sqlite.Options{Window: 3})
	ten := storetest.NewTenant(t, s)
	busy := storetest.NewEndpoint(t, s, ten.ID)
	for i := range 6 {
		storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), busy)
	}
	for range 3 {
		cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: storetest.Base().Add(time.Second), Limit: 10,
			Owner: "node", LeaseUntil: storetest.Base().Add(time.Minute), ExcludeEndpoints: []string{busy.ID}})
		if err != nil || len(cs) != 0 {
			t.Fatalf("claim leaving the only endpoint out: %d, %v; want none", len(cs), err)
		}
	}
	if n := unfinished(t, path); n != 6 {
		t.Fatalf("unwritten after the claims: %d, want all 6 (no row written)", n)
	}
	// Its deliveries stay claimable, in order, once it is no longer left out.
	var got int
	for range 4 {
		got += len(storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 10))
	}
	if got != 6 {
		t.Fatalf("claimed %d of the endpoint's deliveries, want 6", got)
	}
}

// Disabling an endpoint writes its unwritten deliveries, in the window or only in the log, as
// failed rows in its own transaction, as of the disabling: re-enabling does not bring them back,
// a crash keeps them failed, and nothing claims them.
func TestDisableFailsUnwritten(t *testing.T) {
	disabledAt := storetest.Base().Add(time.Second)
	path := filepath.Join(t.TempDir(), "aviso.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{Window: 1})
	if err != nil {
		t.Fatal(err)
	}
	ten, ep, ds := backlogOf(t, s, 3)
	storetest.Claim(t, s, "node", storetest.Base().Add(-time.Hour), 10) // loads one
	if n := sqlite.WindowCount(s); n != 1 {
		t.Fatalf("window: %d, want 1", n)
	}
	if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
		Disabled: true, Reason: aviso.DisabledByUser, Now: disabledAt}); err != nil {
		t.Fatal(err)
	}
	if n := sqlite.WindowCount(s); n != 0 {
		t.Fatalf("window after disabling: %d, want 0", n)
	}
	if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
		Disabled: false, Now: disabledAt.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if cs := storetest.Claim(t, s, "node", disabledAt.Add(time.Hour), 10); len(cs) != 0 {
		t.Fatalf("re-enabled, claimed %v: the disabling failed them", claimIDs(cs))
	}
	if err := sqlite.Abandon(s); err != nil {
		t.Fatal(err)
	}
	if n := unfinished(t, path); n != 0 {
		t.Fatalf("unwritten after disabling: %d, want 0", n)
	}
	s = open(t, path, sqlite.Options{})
	for _, want := range ds {
		d, err := s.GetDelivery(t.Context(), ten.ID, want.ID)
		if err != nil {
			t.Fatalf("delivery %s: %v", want.ID, err)
		}
		if d.Status != aviso.StatusFailed || d.LastError != "endpoint disabled" || !d.UpdatedAt.Equal(disabledAt) || d.NextAttemptAt != nil {
			t.Errorf("delivery %s: %s %q updated %v next %v; want failed, endpoint disabled, at %v, no next attempt",
				want.ID, d.Status, d.LastError, d.UpdatedAt, d.NextAttemptAt, disabledAt)
		}
	}
}

// Deleting an endpoint or a tenant drops its window entries at once, and only its own, and its
// unwritten deliveries are gone with it.
func TestDeletesForgetUnwritten(t *testing.T) {
	tests := []struct {
		name   string
		remove func(t *testing.T, s *sqlite.Store, ten *aviso.Tenant, ep *aviso.Endpoint) error
	}{
		{"endpoint", func(t *testing.T, s *sqlite.Store, ten *aviso.Tenant, ep *aviso.Endpoint) error {
			return s.DeleteEndpoint(t.Context(), ten.ID, ep.ID)
		}},
		{"tenant", func(t *testing.T, s *sqlite.Store, ten *aviso.Tenant, _ *aviso.Endpoint) error {
			return s.DeleteTenant(t.Context(), ten.ID)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviso.db")
			s := open(t, path, sqlite.Options{})
			doomedTen, doomed, gone := backlogOf(t, s, 3)
			keptTen, _, ds := backlogOf(t, s, 1)
			storetest.Claim(t, s, "node", storetest.Base().Add(-time.Hour), 10) // loads them all
			if n := sqlite.WindowCount(s); n != 4 {
				t.Fatalf("window: %d, want 4", n)
			}
			if err := tc.remove(t, s, doomedTen, doomed); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if n := sqlite.WindowCount(s); n != 1 {
				t.Fatalf("window after the delete: %d, want 1 (the other tenant's)", n)
			}
			if n := unfinished(t, path); n != 1 {
				t.Fatalf("unwritten after the delete: %d, want 1", n)
			}
			if _, err := s.GetDelivery(t.Context(), doomedTen.ID, gone[0].ID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
				t.Fatalf("a deleted delivery: %v, want ENOTFOUND", err)
			}
			if d, err := s.GetDelivery(t.Context(), keptTen.ID, ds[0].ID); err != nil || d.Status != aviso.StatusPending {
				t.Fatalf("the kept delivery: %v, %v; want it pending", d, err)
			}
		})
	}
}

// A claim takes rows and window entries in one due order.
func TestClaimMergesRowsAndUnwritten(t *testing.T) {
	s := testStore(t)
	ten := storetest.NewTenant(t, s)
	var fanout []*aviso.Endpoint
	for range 17 {
		fanout = append(fanout, storetest.NewEndpoint(t, s, ten.ID))
	}
	_, unwritten := storetest.Publish(t, s, ten.ID, storetest.Base().Add(10*time.Millisecond), fanout[0])
	_, rows := storetest.Publish(t, s, ten.ID, storetest.Base(), fanout...) // a fan-out: rows, due first
	now := storetest.Base().Add(time.Second)
	if cs := storetest.Claim(t, s, "node", now, 17); !sameIDs(claimIDs(cs), deliveryIDs(rows)) {
		t.Fatalf("first claim %v, want the older rows %v", claimIDs(cs), deliveryIDs(rows))
	}
	if cs := storetest.Claim(t, s, "node", now, 10); !slices.Equal(claimIDs(cs), deliveryIDs(unwritten)) {
		t.Fatalf("second claim %v, want the unwritten delivery %v", claimIDs(cs), deliveryIDs(unwritten))
	}
}

func sameIDs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Events are numbered by the store, never reusing the seq of a deleted event: the mark counts
// on it. Reused, the seq of an event published after the newest events were deleted fell below
// the mark, and a crash lost its unwritten delivery.
func TestSeqsNotReusedAfterDeletes(t *testing.T) {
	for _, reopen := range []bool{true, false} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviso.db")
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			gone, _, _ := backlogOf(t, s, 5)
			if reopen {
				if err := s.Close(); err != nil { // writes them, and moves the mark past them
					t.Fatal(err)
				}
				if s, err = sqlite.Open(t.Context(), path, sqlite.Options{}); err != nil {
					t.Fatal(err)
				}
			} else {
				cs := storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 10)
				for _, c := range cs {
					storetest.Complete(t, s, storetest.Completion(c.Delivery, "node", storetest.Base().Add(time.Second), 200, false))
				}
				sqlite.MoveMark(s) // past all of them: they have rows
			}
			sqlite.FreezeMark(s)
			if err := s.DeleteTenant(t.Context(), gone.ID); err != nil { // the newest events
				t.Fatal(err)
			}
			ten, _, ds := backlogOf(t, s, 1)
			if err := sqlite.Abandon(s); err != nil {
				t.Fatal(err)
			}
			s = open(t, path, sqlite.Options{})
			d, err := s.GetDelivery(t.Context(), ten.ID, ds[0].ID)
			if err != nil || d.Status != aviso.StatusPending {
				t.Fatalf("delivery published after the deletion, after a crash: %v, %v; want it pending", d, err)
			}
		})
	}
}

// A store stopped by the earlier design with deliveries only in its events' deferred column
// (one line per delivery) and a disabling cut short (failing_endpoints) opens and migrates:
// the unwritten delivery of an enabled endpoint is claimable, that of a disabled one is failed,
// and the disabling is finished.
func TestMigrateUnwrittenOfEarlierDesign(t *testing.T) {
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
	names, err := filepath.Glob(filepath.Join("migrations", "000[1-8]_*.sql"))
	if err != nil || len(names) != 8 {
		t.Fatalf("migrations 1 to 8: %v, %v", names, err)
	}
	for i, name := range names {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 1)`, i+1, filepath.Base(name))
	}
	at := storetest.Base()
	us := at.UnixMicro()
	id := func(prefix string, i int) string {
		return aviso.NewID(prefix, at.Add(time.Duration(i)*time.Millisecond))
	}
	ten, on, off, failing := id(aviso.PrefixTenant, 0), id(aviso.PrefixEndpoint, 1), id(aviso.PrefixEndpoint, 2), id(aviso.PrefixEndpoint, 3)
	exec(`INSERT INTO tenants (id, name, created_at, updated_at) VALUES (?, 'Acme', ?, ?)`, ten, us, us)
	for _, ep := range []string{on, off, failing} {
		disabled := map[bool]int{true: 1}[ep != on]
		exec(`INSERT INTO endpoints (id, tenant_id, url, description, format, timeout_seconds, disabled, created_at, updated_at)
			VALUES (?, ?, 'https://example.com/hook', '', 'standard', 10, ?, ?, ?)`, ep, ten, disabled, us, us+5e6)
	}
	dOn, dOff, dRow := id(aviso.PrefixDelivery, 4), id(aviso.PrefixDelivery, 5), id(aviso.PrefixDelivery, 6)
	exec(`INSERT INTO events (seq, tenant_id, id, type, data, created_at, deferred) VALUES (1, ?, 'evt_1', 'invoice.created', '{}', ?, ?)`,
		ten, us, fmt.Sprintf("%s %s %d %d %d\n%s %s %d %d %d", dOn, on, us, us, us, dOff, off, us, us, us))
	exec(`INSERT INTO events (seq, tenant_id, id, type, data, created_at) VALUES (2, ?, 'evt_2', 'invoice.created', '{}', ?)`, ten, us)
	exec(`INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, 2, 'evt_2', ?, 'invoice.created', 'pending', ?, ?, ?)`, dRow, ten, failing, us, us, us)
	exec(`UPDATE deferred_mark SET seq = 1`)
	exec(`INSERT INTO failing_endpoints (endpoint_id, at) VALUES (?, ?)`, failing, us+7e6)
	db.Close()

	s := open(t, path, sqlite.Options{})
	for _, want := range []struct {
		id, status, lastError string
		updated               int64
	}{
		{dOn, "pending", "", us},
		{dOff, "failed", "endpoint disabled", us + 5e6},
		{dRow, "failed", "endpoint disabled", us + 7e6},
	} {
		d, err := s.GetDelivery(t.Context(), ten, want.id)
		if err != nil {
			t.Fatalf("delivery %s: %v", want.id, err)
		}
		if string(d.Status) != want.status || d.LastError != want.lastError || d.UpdatedAt.UnixMicro() != want.updated {
			t.Errorf("delivery %s: %s %q at %d, want %s %q at %d", want.id, d.Status, d.LastError, d.UpdatedAt.UnixMicro(),
				want.status, want.lastError, want.updated)
		}
	}
	if cs := storetest.Claim(t, s, "node", at.Add(time.Second), 10); !slices.Equal(claimIDs(cs), []string{dOn}) {
		t.Fatalf("claimed %v, want %v", claimIDs(cs), []string{dOn})
	}
}

func claimIDs(cs []*aviso.Claim) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Delivery.ID
	}
	return out
}

func deliveryIDs(ds []*aviso.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
