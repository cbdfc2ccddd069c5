package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// A claim whose snapshot was taken before a completion committed still sees the delivery
// pending; the ended lease must keep it from being claimed again (lease.go). The hook pins the
// claim's snapshot, then completes the delivery on the writer before the claim walks.
func TestClaimSkipsLeaseEndedAfterItsSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		code      int // the completion's response status
		wantLater int // claims by a claim that sees the completion
	}{
		{"succeeded", 200, 0},
		{"retry scheduled", 503, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
			ten := storetest.NewTenant(t, s)
			ep := storetest.NewEndpoint(t, s, ten.ID)
			_, ds := storetest.Publish(t, s, ten.ID, storetest.Base(), ep)
			now := storetest.Base().Add(time.Second)
			cs := storetest.Claim(t, s, "node", now, 10)
			if len(cs) != 1 {
				t.Fatalf("first claim: %d claims, want 1", len(cs))
			}
			completion := storetest.Completion(ds[0], "node", now, tc.code, false)

			var pendingInSnapshot bool
			sqlite.SetClaimReadHook(s, func(tx *sql.Tx) {
				sqlite.SetClaimReadHook(s, nil)
				var status string
				if err := tx.QueryRow(`SELECT status FROM deliveries WHERE id = ?`, ds[0].ID).Scan(&status); err != nil {
					t.Errorf("pin the snapshot: %v", err)
					return
				}
				pendingInSnapshot = status == string(aviso.StatusPending)
				storetest.Complete(t, s, completion) // commits while the claim's snapshot is open
			})
			// Far enough ahead that both the lease and a scheduled retry are due.
			later := now.Add(time.Hour)
			if cs := storetest.Claim(t, s, "node", later, 10); len(cs) != 0 {
				t.Errorf("the claim with the old snapshot got %d claims, want 0: the completed delivery was claimed again", len(cs))
			}
			if !pendingInSnapshot {
				t.Fatalf("the pinned snapshot does not show the delivery pending: the hook did not pin it before the completion")
			}
			if cs := storetest.Claim(t, s, "node", later, 10); len(cs) != tc.wantLater {
				t.Errorf("a claim after the completion got %d claims, want %d", len(cs), tc.wantLater)
			}
		})
	}
}

func testStore(t *testing.T) *sqlite.Store {
	return open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
}

// Releasing gives up only the owner's own leases and writes nothing: the released delivery is
// claimable at once, another owner's is not.
func TestReleaseOnlyOwnLeases(t *testing.T) {
	s := testStore(t)
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	storetest.Publish(t, s, ten.ID, storetest.Base(), ep)
	now := storetest.Base().Add(time.Second)
	cs := storetest.Claim(t, s, "a", now, 10)
	if len(cs) != 1 {
		t.Fatalf("claim: %d, want 1", len(cs))
	}
	id := cs[0].Delivery.ID
	if err := s.ReleaseDeliveries(t.Context(), "b", []string{id}); err != nil {
		t.Fatalf("release by another owner: %v", err)
	}
	if got := storetest.Claim(t, s, "b", now, 10); len(got) != 0 {
		t.Fatalf("another owner's release freed the lease: claimed %d", len(got))
	}
	if err := s.ReleaseDeliveries(t.Context(), "a", []string{id}); err != nil {
		t.Fatalf("release: %v", err)
	}
	got := storetest.Claim(t, s, "b", now, 10)
	if len(got) != 1 || got[0].Delivery.ID != id {
		t.Fatalf("after release: %d claims, want %s", len(got), id)
	}
}
