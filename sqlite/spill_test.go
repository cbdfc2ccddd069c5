package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// rowCount counts the delivery rows of the database at path, read beside the store.
func rowCount(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM deliveries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Beyond a full set, deliveries are spilled: no row is written at the publish, and the claims
// load them, in publication order, as the set frees room; a crash loses none of them.
func TestSpill(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "claimed"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviso.db")
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{DeferLimit: 4})
			if err != nil {
				t.Fatal(err)
			}
			_, _, ds := backlogOf(t, s, 12)
			want := deliveryIDs(ds)
			if n, sp := sqlite.DeferredCount(s), sqlite.Spilled(s); n != 4 || sp != 8 {
				t.Fatalf("deferred %d, spilled events %d; want 4 and 8", n, sp)
			}
			if n := rowCount(t, path); n != 0 {
				t.Fatalf("%d delivery rows after the publishes, want none", n)
			}
			if crash {
				if err := sqlite.Abandon(s); err != nil {
					t.Fatal(err)
				}
				s = open(t, path, sqlite.Options{DeferLimit: 4})
				if n := rowCount(t, path); n != 12 {
					t.Fatalf("%d delivery rows after reopening, want all 12: Open writes the spill", n)
				}
			} else {
				t.Cleanup(func() { s.Close() })
			}
			now := storetest.Base().Add(time.Second)
			var got []string
			for len(got) < len(want) {
				cs := storetest.Claim(t, s, "node", now, 3)
				if len(cs) == 0 {
					t.Fatalf("claimed %v, then nothing; want %v", got, want)
				}
				for _, c := range cs {
					got = append(got, c.Delivery.ID)
					storetest.Complete(t, s, storetest.Completion(c.Delivery, "node", now, 200, false))
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("claimed %v, want in publication order %v", got, want)
			}
			if sp := sqlite.Spilled(s); sp != 0 {
				t.Fatalf("spilled events %d after every claim, want 0", sp)
			}
		})
	}
}

// A claim loads the spill a chunk at a time, however much room the set has: what one write
// reads and holds in memory stays bounded. The deliveries still come in publication order.
func TestSpillLoadedByChunk(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{DeferLimit: 8})
	sqlite.SetDeferChunk(s, 2)
	_, _, ds := backlogOf(t, s, 20)
	want := deliveryIDs(ds)
	if sp := sqlite.Spilled(s); sp != 12 {
		t.Fatalf("spilled events %d, want 12", sp)
	}
	now := storetest.Base().Add(time.Second)
	var got []string
	claim := func(limit int) {
		t.Helper()
		for _, c := range storetest.Claim(t, s, "node", now, limit) {
			got = append(got, c.Delivery.ID)
			storetest.Complete(t, s, storetest.Completion(c.Delivery, "node", now, 200, false))
		}
	}
	claim(8) // the set, now empty: room for all 8 of the next
	claim(3) // two chunks of 2 loaded: the first claimed alone came up short
	if sp := sqlite.Spilled(s); sp != 8 {
		t.Fatalf("spilled events %d after a claim of 3, want 8: two chunks of 2 loaded", sp)
	}
	for len(got) < len(want) {
		n := len(got)
		if claim(8); len(got) == n {
			t.Fatalf("claimed %v, then nothing; want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want in publication order %v", got, want)
	}
}

// A set held by an endpoint the claims leave out (one that never answers) does not hold back
// the spilled deliveries of the others: a claim that comes up short writes the spill.
func TestSpillBesideHeldSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviso.db")
	s := open(t, path, sqlite.Options{DeferLimit: 4})
	ten := storetest.NewTenant(t, s)
	dead, healthy := storetest.NewEndpoint(t, s, ten.ID), storetest.NewEndpoint(t, s, ten.ID)
	for i := range 4 {
		storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), dead)
	}
	var want []string
	for i := range 3 {
		_, ds := storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(10+i)*time.Millisecond), healthy)
		want = append(want, ds[0].ID)
	}
	if sp := sqlite.Spilled(s); sp != 3 {
		t.Fatalf("spilled events %d, want the healthy endpoint's 3", sp)
	}
	now := storetest.Base().Add(time.Second)
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 10, Owner: "node",
		LeaseUntil: now.Add(time.Minute), ExcludeEndpoints: []string{dead.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if got := claimIDs(cs); !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want the healthy endpoint's %v", got, want)
	}
}

// A spilled delivery of an endpoint disabled since its publish is failed as of the disabling,
// even if the endpoint is enabled again before the delivery is read.
func TestSpillDisabled(t *testing.T) {
	for _, reenable := range []bool{false, true} {
		t.Run(map[bool]string{false: "disabled", true: "enabled again"}[reenable], func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{DeferLimit: 1})
			ten, ep, ds := backlogOf(t, s, 3)
			if sp := sqlite.Spilled(s); sp != 2 {
				t.Fatalf("spilled events %d, want 2", sp)
			}
			at := storetest.Base().Add(time.Minute)
			for i, off := range []bool{true, false}[:map[bool]int{false: 1, true: 2}[reenable]] {
				if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
					Disabled: off, Reason: aviso.DisabledByUser, Now: at.Add(time.Duration(i) * time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range ds {
				got, err := s.GetDelivery(t.Context(), ten.ID, d.ID)
				if err != nil {
					t.Fatalf("delivery %s: %v", d.ID, err)
				}
				if got.Status != aviso.StatusFailed || !got.UpdatedAt.Equal(at) {
					t.Errorf("delivery %s: %s at %v, want failed at the disabling, %v", d.ID, got.Status, got.UpdatedAt, at)
				}
			}
		})
	}
}
