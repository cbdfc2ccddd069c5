package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// TestConcurrentWritesStayAtomic runs many writes at once, so that they share group commits,
// half of them failing: each failing write returns its own error and leaves nothing behind, and
// each succeeding write is stored whatever its neighbours did.
func TestConcurrentWritesStayAtomic(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	const n = 64
	type outcome struct {
		tenantErr, eventErr error
		good, bad           string // event IDs
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Every tenant ID is created twice at once: one of the two must conflict.
			now := storetest.Base()
			out[i].tenantErr = s.CreateTenant(t.Context(), &aviso.Tenant{ID: fmt.Sprintf("t%02d", i/2), Name: "T", CreatedAt: now, UpdatedAt: now})
			// Odd writers publish a batch whose second event names a missing tenant: all of it fails.
			good := storetest.NewEvent(ten.ID, "invoice.created", now.Add(time.Duration(i)*time.Second), ep)
			batch := []aviso.NewEvent{good}
			out[i].good = good.Event.ID
			if i%2 == 1 {
				// Three events go in two statements (two rows, then one): the first succeeds.
				good2 := storetest.NewEvent(ten.ID, "invoice.created", now, ep)
				bad := storetest.NewEvent("no-such-tenant", "invoice.created", now, ep)
				batch = append(batch, good2, bad)
				out[i].bad = bad.Event.ID
			}
			_, out[i].eventErr = s.InsertEvents(t.Context(), batch)
		})
	}
	wg.Wait()

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"one of each pair of tenants conflicts", func(t *testing.T) {
			for i := 0; i < n; i += 2 {
				a, b := aviso.ErrorCode(out[i].tenantErr), aviso.ErrorCode(out[i+1].tenantErr)
				if (a == "") == (b == "") || (a != aviso.ECONFLICT && b != aviso.ECONFLICT) {
					t.Errorf("tenant t%02d: codes %q and %q, want one success and one %s", i/2, a, b, aviso.ECONFLICT)
				}
				if _, err := s.GetTenant(t.Context(), fmt.Sprintf("t%02d", i/2)); err != nil {
					t.Errorf("tenant t%02d: %v", i/2, err)
				}
			}
		}},
		{"failed batches leave nothing, the others are stored", func(t *testing.T) {
			for i, o := range out {
				_, err := s.GetEvent(t.Context(), ten.ID, o.good)
				switch {
				case i%2 == 0 && (o.eventErr != nil || err != nil):
					t.Errorf("writer %d: insert %v, get %v; want the event stored", i, o.eventErr, err)
				case i%2 == 1 && aviso.ErrorCode(o.eventErr) != aviso.ENOTFOUND:
					t.Errorf("writer %d: insert error %v, want %s", i, o.eventErr, aviso.ENOTFOUND)
				case i%2 == 1 && aviso.ErrorCode(err) != aviso.ENOTFOUND:
					t.Errorf("writer %d: the first event of a failed batch was stored (get: %v)", i, err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}
