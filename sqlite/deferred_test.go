package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// A crash loses no deferred delivery: Open writes, pending and under their own IDs, those the
// crash kept from being written, and leaves alone those that were.
func TestDeferredSurviveCrash(t *testing.T) {
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
	if n := sqlite.DeferredCount(s); n != 3 {
		t.Fatalf("deferred: %d, want 3", n)
	}
	// The first succeeds: its row is written. The second is claimed, in flight at the crash.
	now := storetest.Base().Add(time.Second)
	cs := storetest.Claim(t, s, "node", now, 2)
	if len(cs) != 2 || cs[0].Delivery.ID != ds[0].ID || cs[1].Delivery.ID != ds[1].ID {
		t.Fatalf("claimed %v, want the first two of %v", claimIDs(cs), deliveryIDs(ds))
	}
	storetest.Complete(t, s, storetest.Completion(ds[0], "node", now, 200, false))
	if n := sqlite.DeferredCount(s); n != 2 {
		t.Fatalf("deferred after a completion: %d, want 2", n)
	}
	if err := sqlite.Abandon(s); err != nil {
		t.Fatalf("crash: %v", err)
	}

	s = open(t, path, sqlite.Options{})
	if n := sqlite.DeferredCount(s); n != 0 {
		t.Fatalf("deferred after reopening: %d, want 0: Open writes them as rows", n)
	}
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
	if len(page.Data) != 3 {
		t.Fatalf("deliveries after the crash: %d, want 3 (none lost, none twice)", len(page.Data))
	}
	// Both unfinished deliveries are claimable at once, in due order.
	if cs := storetest.Claim(t, s, "node", now, 10); !slices.Equal(claimIDs(cs), []string{ds[1].ID, ds[2].ID}) {
		t.Fatalf("claimed after the crash %v, want %v", claimIDs(cs), []string{ds[1].ID, ds[2].ID})
	}
}

// A read writes the deferred deliveries a chunk per write, oldest first, so that publishes wait
// behind none of it for long; it reads them all.
func TestFlushByChunks(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
	sqlite.SetDeferChunk(s, 2)
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	for i := range 5 {
		storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), ep)
	}
	before := sqlite.Commits(s)
	page, err := s.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: ten.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 5 || sqlite.DeferredCount(s) != 0 {
		t.Fatalf("listed %d deliveries, %d left deferred; want 5 and none", len(page.Data), sqlite.DeferredCount(s))
	}
	if writes := sqlite.Commits(s) - before; writes < 3 {
		t.Errorf("the read's flush took %d writes, want 3 (chunks of 2, 2 and 1)", writes)
	}
}

// A clean Close writes every deferred delivery, and the next Open has nothing to recover.
func TestCloseWritesDeferred(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	_, ds := storetest.Publish(t, s, ten.ID, storetest.Base(), ep)
	if n := sqlite.DeferredCount(s); n != 1 {
		t.Fatalf("deferred: %d, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := deferredMarkAndUnwritten(t, path); got != 0 {
		t.Fatalf("after Close, %d events from the mark on name deferred deliveries, want 0", got)
	}
	s = open(t, path, sqlite.Options{})
	d, err := s.GetDelivery(t.Context(), ten.ID, ds[0].ID)
	if err != nil || d.Status != aviso.StatusPending {
		t.Fatalf("delivery after Close and Open: %v, %v; want it pending", d, err)
	}
}

// deferredMarkAndUnwritten counts the events from the mark on that name deferred deliveries.
func deferredMarkAndUnwritten(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM events
		WHERE seq >= (SELECT seq FROM deferred_mark) AND deferred IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// What is deferred: at most DeferLimit deliveries, none of an event with more than 16; the rest
// are written at the publish. Both kinds are claimed together, in due order.
func TestDeferLimits(t *testing.T) {
	tests := []struct {
		name         string
		limit        int
		endpoints    int // per event
		events       int
		wantDeferred int
	}{
		{"default", 0, 1, 5, 5},
		{"limit reached", 3, 1, 5, 3},
		{"an event's deliveries are deferred all or none", 3, 2, 3, 2},
		{"fan-out is written", 0, 17, 1, 0},
		{"off", -1, 1, 5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{DeferLimit: tc.limit})
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
			if n := sqlite.DeferredCount(s); n != tc.wantDeferred {
				t.Fatalf("deferred: %d, want %d", n, tc.wantDeferred)
			}
			cs := storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 1000)
			got := claimIDs(cs)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("claimed %d deliveries, want all %d", len(got), len(want))
			}
		})
	}
}

// A claim writes, pending, the deliveries deferred more than the span of events ago (here 4), so
// that a crash never leaves Open many events to read.
func TestClaimWritesOldDeferred(t *testing.T) {
	s := testStore(t)
	sqlite.SetDeferSpan(s, 4)
	ten := storetest.NewTenant(t, s)
	slow := storetest.NewEndpoint(t, s, ten.ID)
	for i := range 10 {
		storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), slow)
	}
	// The slow endpoint is left out of the claim (it holds enough work elsewhere), as the
	// dispatcher does; its deliveries stay deferred until they are too old.
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: storetest.Base().Add(time.Second), Limit: 10,
		Owner: "node", LeaseUntil: storetest.Base().Add(time.Minute), ExcludeEndpoints: []string{slow.ID}})
	if err != nil || len(cs) != 0 {
		t.Fatalf("claim: %d claims, %v; want none", len(cs), err)
	}
	// Newest seq 10, span 4: those of events below 10 - 4/2 = 8 are written.
	if n := sqlite.DeferredCount(s); n != 3 {
		t.Fatalf("deferred after the claim: %d, want 3 (those of the events from seq 8 on)", n)
	}
	page, err := s.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: ten.ID, EndpointID: slow.ID})
	if err != nil || len(page.Data) != 10 {
		t.Fatalf("slow endpoint's deliveries: %d, %v; want 10", len(page.Data), err)
	}
}

// Disabling an endpoint fails its deferred deliveries in memory: no row is written then. They are
// never claimed, and whatever writes them next writes them failed as of the disabling: a read, the
// endpoint's re-enabling, a crash's recovery, a claim that finds the set full. Deleting the
// endpoint drops them unwritten.
func TestDisableFailsDeferred(t *testing.T) {
	disabledAt := storetest.Base().Add(time.Second)
	tests := []struct {
		name  string
		limit int
		then  func(t *testing.T, s *sqlite.Store, path string, ten *aviso.Tenant, ep *aviso.Endpoint) *sqlite.Store
		want  int // deliveries of the endpoint found failed afterwards
	}{
		{"read", 0, func(t *testing.T, s *sqlite.Store, _ string, _ *aviso.Tenant, _ *aviso.Endpoint) *sqlite.Store {
			return s
		}, 2},
		{"re-enabled", 0, func(t *testing.T, s *sqlite.Store, _ string, ten *aviso.Tenant, ep *aviso.Endpoint) *sqlite.Store {
			if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
				Disabled: false, Now: disabledAt.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if n := sqlite.DeferredCount(s); n != 0 {
				t.Fatalf("deferred after re-enabling: %d, want 0 (written failed)", n)
			}
			if cs := storetest.Claim(t, s, "node", disabledAt.Add(time.Hour), 10); len(cs) != 0 {
				t.Fatalf("re-enabled, claimed %v: the disabling failed them", claimIDs(cs))
			}
			return s
		}, 2},
		{"crash", 0, func(t *testing.T, s *sqlite.Store, path string, _ *aviso.Tenant, _ *aviso.Endpoint) *sqlite.Store {
			if err := sqlite.Abandon(s); err != nil {
				t.Fatal(err)
			}
			return open(t, path, sqlite.Options{})
		}, 2},
		{"set full", 2, func(t *testing.T, s *sqlite.Store, _ string, _ *aviso.Tenant, _ *aviso.Endpoint) *sqlite.Store {
			storetest.Claim(t, s, "node", disabledAt, 10)
			if n := sqlite.DeferredCount(s); n != 0 {
				t.Fatalf("deferred after a claim found the set full of failed deliveries: %d, want 0", n)
			}
			return s
		}, 2},
		{"endpoint deleted", 0, func(t *testing.T, s *sqlite.Store, _ string, ten *aviso.Tenant, ep *aviso.Endpoint) *sqlite.Store {
			if err := s.DeleteEndpoint(t.Context(), ten.ID, ep.ID); err != nil {
				t.Fatal(err)
			}
			if n := sqlite.DeferredCount(s); n != 0 {
				t.Fatalf("deferred after deleting the endpoint: %d, want 0", n)
			}
			return s
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviso.db")
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{DeferLimit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ten := storetest.NewTenant(t, s)
			ep := storetest.NewEndpoint(t, s, ten.ID)
			var ds []*aviso.Delivery
			for range 2 {
				_, got := storetest.Publish(t, s, ten.ID, storetest.Base(), ep)
				ds = append(ds, got...)
			}
			if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
				Disabled: true, Reason: aviso.DisabledByUser, Now: disabledAt}); err != nil {
				t.Fatal(err)
			}
			if n := sqlite.DeferredCount(s); n != 2 {
				t.Fatalf("deferred after disabling: %d, want 2: failed in memory, not written", n)
			}
			if tc.limit == 0 {
				if cs := storetest.Claim(t, s, "node", disabledAt, 10); len(cs) != 0 {
					t.Fatalf("claimed %v of a disabled endpoint", claimIDs(cs))
				}
			}
			s = tc.then(t, s, path, ten, ep)
			failed := 0
			for _, want := range ds {
				d, err := s.GetDelivery(t.Context(), ten.ID, want.ID)
				if tc.want == 0 {
					if aviso.ErrorCode(err) != aviso.ENOTFOUND {
						t.Errorf("delivery %s of a deleted endpoint: %v, %v; want ENOTFOUND", want.ID, d, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("delivery %s: %v", want.ID, err)
				}
				if d.Status != aviso.StatusFailed || d.LastError != "endpoint disabled" || !d.UpdatedAt.Equal(disabledAt) || d.NextAttemptAt != nil {
					t.Errorf("delivery %s: %s %q updated %v next %v; want failed, endpoint disabled, at %v, no next attempt",
						want.ID, d.Status, d.LastError, d.UpdatedAt, d.NextAttemptAt, disabledAt)
					continue
				}
				failed++
			}
			if failed != tc.want {
				t.Errorf("%d deliveries failed, want %d", failed, tc.want)
			}
		})
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

// A claim takes rows and deferred deliveries in one due order; a deferred delivery that lost its
// place to an older row stays claimable.
func TestClaimMergesRowsAndDeferred(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{DeferLimit: 1})
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	_, deferred := storetest.Publish(t, s, ten.ID, storetest.Base().Add(10*time.Millisecond), ep)
	_, row := storetest.Publish(t, s, ten.ID, storetest.Base(), ep) // no room left: a row, due first
	if n := sqlite.DeferredCount(s); n != 1 {
		t.Fatalf("deferred: %d, want 1", n)
	}
	now := storetest.Base().Add(time.Second)
	if cs := storetest.Claim(t, s, "node", now, 1); !slices.Equal(claimIDs(cs), deliveryIDs(row)) {
		t.Fatalf("first claim %v, want the older row %v", claimIDs(cs), deliveryIDs(row))
	}
	if cs := storetest.Claim(t, s, "node", now, 10); !slices.Equal(claimIDs(cs), deliveryIDs(deferred)) {
		t.Fatalf("second claim %v, want the deferred delivery %v", claimIDs(cs), deliveryIDs(deferred))
	}
}

// Deleting an endpoint or a tenant drops its deferred deliveries from memory at once, and only
// its own: they neither wait for a claim to find them gone nor take the room of new ones.
func TestDeletesForgetDeferred(t *testing.T) {
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
			s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
			doomedTen, keptTen := storetest.NewTenant(t, s), storetest.NewTenant(t, s)
			doomed, kept := storetest.NewEndpoint(t, s, doomedTen.ID), storetest.NewEndpoint(t, s, keptTen.ID)
			for range 3 {
				storetest.Publish(t, s, doomedTen.ID, storetest.Base(), doomed)
			}
			_, ds := storetest.Publish(t, s, keptTen.ID, storetest.Base(), kept)
			if n := sqlite.DeferredCount(s); n != 4 {
				t.Fatalf("deferred: %d, want 4", n)
			}
			if err := tc.remove(t, s, doomedTen, doomed); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if n := sqlite.DeferredCount(s); n != 1 {
				t.Fatalf("deferred after the delete: %d, want 1 (the other tenant's)", n)
			}
			if d, err := s.GetDelivery(t.Context(), keptTen.ID, ds[0].ID); err != nil || d.Status != aviso.StatusPending {
				t.Fatalf("the kept delivery: %v, %v; want it pending", d, err)
			}
		})
	}
}

// Events are numbered by the store, never reusing the seq of a deleted event: the deferred mark
// and the deferred deliveries' age count on it. Reused, the seq of an event published after the
// newest events were deleted fell below the mark, and a crash lost its deferred delivery; and
// the delivery looked older than the age limit, so the next claim wrote it.
func TestSeqsNotReusedAfterDeletes(t *testing.T) {
	for _, reopen := range []bool{true, false} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviso.db")
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			gone := storetest.NewTenant(t, s)
			ep := storetest.NewEndpoint(t, s, gone.ID)
			var old []*aviso.Delivery
			for range 5 {
				_, ds := storetest.Publish(t, s, gone.ID, storetest.Base(), ep)
				old = append(old, ds...)
			}
			if reopen {
				if err := s.Close(); err != nil { // writes them, and moves the mark past them
					t.Fatal(err)
				}
				if s, err = sqlite.Open(t.Context(), path, sqlite.Options{}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := s.GetDelivery(t.Context(), gone.ID, old[0].ID); err != nil { // writes them
				t.Fatal(err)
			}
			sqlite.FreezeMark(s)
			sqlite.SetDeferSpan(s, 3)
			if err := s.DeleteTenant(t.Context(), gone.ID); err != nil { // the newest events
				t.Fatal(err)
			}
			ten := storetest.NewTenant(t, s)
			kept := storetest.NewEndpoint(t, s, ten.ID)
			_, ds := storetest.Publish(t, s, ten.ID, storetest.Base(), kept)
			if cs := storetest.Claim(t, s, "node", storetest.Base().Add(time.Second), 10); len(cs) != 1 {
				t.Fatalf("claimed %d, want 1", len(cs))
			}
			if n := sqlite.DeferredCount(s); n != 1 {
				t.Fatalf("deferred after a claim: %d, want 1: one event old, not past the age limit of 3", n)
			}
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
