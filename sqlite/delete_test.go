package sqlite_test

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// DeleteTenant deletes a large tenant's events in chunks, each its own write; all of them go,
// whether their count is a multiple of the chunk or not, and another tenant keeps its own.
func TestDeleteTenantInChunks(t *testing.T) {
	for _, events := range []int{0, 2, 3, 7, 9} {
		s := testStore(t)
		sqlite.SetDeleteChunk(s, 3)
		ten, other := storetest.NewTenant(t, s), storetest.NewTenant(t, s)
		ep, otherEp := storetest.NewEndpoint(t, s, ten.ID), storetest.NewEndpoint(t, s, other.ID)
		var ds []*aviso.Delivery
		for i := range events {
			_, d := storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Second), ep)
			ds = append(ds, d...)
		}
		otherEv, otherDs := storetest.Publish(t, s, other.ID, storetest.Base(), otherEp)

		before := sqlite.Commits(s)
		if err := s.DeleteTenant(t.Context(), ten.ID); err != nil {
			t.Fatalf("%d events: delete tenant: %v", events, err)
		}
		// A write per full chunk, one that finds the chunk short, and the tenant's own: each its
		// own commit, as nothing else writes meanwhile.
		if got, want := sqlite.Commits(s)-before, uint64(events/3+2); got != want {
			t.Errorf("%d events: deleted in %d writes, want %d (chunks of 3)", events, got, want)
		}
		if _, err := s.GetTenant(t.Context(), ten.ID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
			t.Errorf("%d events: the tenant is still there: %v", events, err)
		}
		for _, d := range ds {
			if _, err := s.GetDelivery(t.Context(), ten.ID, d.ID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
				t.Errorf("%d events: delivery %s survived: %v", events, d.ID, err)
			}
		}
		if _, err := s.GetEvent(t.Context(), other.ID, otherEv.ID); err != nil {
			t.Errorf("%d events: the other tenant's event: %v", events, err)
		}
		if _, err := s.GetDelivery(t.Context(), other.ID, otherDs[0].ID); err != nil {
			t.Errorf("%d events: the other tenant's delivery: %v", events, err)
		}
		if err := s.DeleteTenant(t.Context(), ten.ID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
			t.Errorf("%d events: deleting it again: %v, want %s", events, err, aviso.ENOTFOUND)
		}
	}
}
