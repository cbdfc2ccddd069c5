package sqlite_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// InsertEvents calls that queue up together run as one merged body. Each call still gets its
// own events back, in order; a call that fails (an event of a missing tenant) gets its own error
// and stores nothing, while the calls beside it are stored; an event published by two calls of
// the group is created once.
func TestMergedInsertsKeepEachCallsOutcome(t *testing.T) {
	s := testStore(t)
	ten := storetest.NewTenant(t, s)
	ep := storetest.NewEndpoint(t, s, ten.ID)
	at := storetest.Base()
	ev := func(i int) aviso.NewEvent {
		return storetest.NewEvent(ten.ID, "invoice.created", at.Add(time.Duration(i)*time.Second), ep)
	}
	shared := ev(100)
	again := ev(100) // the same tenant and event ID, published by another call
	again.Event.ID = shared.Event.ID
	for _, d := range again.Deliveries {
		d.EventID = shared.Event.ID
	}
	bad := storetest.NewEvent("no-such-tenant", "invoice.created", at, ep)
	calls := []struct {
		events  []aviso.NewEvent
		wantErr bool
		created []bool
	}{
		{[]aviso.NewEvent{ev(1)}, false, []bool{true}},
		{[]aviso.NewEvent{ev(2), shared, ev(3)}, false, []bool{true, true, true}},
		{[]aviso.NewEvent{ev(4), bad}, true, nil},
		{[]aviso.NewEvent{ev(5)}, false, []bool{true}},
		{[]aviso.NewEvent{again, ev(6)}, false, []bool{false, true}},
	}

	type result struct {
		out []aviso.InsertedEvent
		err error
	}
	results := make([]result, len(calls))
	writes := make([]func(), len(calls))
	for i, c := range calls {
		writes[i] = func() { results[i].out, results[i].err = s.InsertEvents(t.Context(), c.events) }
	}
	runQueued(s, writes...)

	if got := sqlite.MergedInserts(s); got != int64(len(calls)) {
		t.Fatalf("%d calls ran merged, want all %d: the test did not exercise the merged body", got, len(calls))
	}
	for i, c := range calls {
		r := results[i]
		if c.wantErr {
			if r.err == nil {
				t.Errorf("call %d: no error, want the missing tenant's", i)
			}
			for _, ne := range c.events {
				if _, err := s.GetEvent(t.Context(), ten.ID, ne.Event.ID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
					t.Errorf("call %d failed but its event %s is stored: %v", i, ne.Event.ID, err)
				}
			}
			continue
		}
		if r.err != nil || len(r.out) != len(c.events) {
			t.Errorf("call %d: %d events, %v; want %d", i, len(r.out), r.err, len(c.events))
			continue
		}
		for j, ne := range c.events {
			got := r.out[j]
			if got.Event.ID != ne.Event.ID || got.Created != c.created[j] {
				t.Errorf("call %d event %d: %s created=%v, want %s created=%v", i, j, got.Event.ID, got.Created, ne.Event.ID, c.created[j])
			}
			if _, err := s.GetEvent(t.Context(), ten.ID, ne.Event.ID); err != nil {
				t.Errorf("call %d event %s: %v", i, ne.Event.ID, err)
			}
		}
	}
	// One delivery per created event: the shared event's second copy queued none.
	page, err := s.ListDeliveries(t.Context(), aviso.ListDeliveriesParams{TenantID: ten.ID, ListParams: aviso.ListParams{Limit: 100}})
	if err != nil {
		t.Fatalf("list deliveries: %v", err)
	}
	if len(page.Data) != 6 {
		t.Errorf("%d deliveries, want 6 (events 1, 2, 3, 5, 6 and the shared one)", len(page.Data))
	}
}

// runQueued runs writes, each a call of one write method, queued in this order behind a held
// writer, so that they run as one group; it returns once they all have.
func runQueued(s *sqlite.Store, writes ...func()) {
	release := sqlite.HoldWriter(s)
	var wg sync.WaitGroup
	for i, write := range writes {
		wg.Go(write)
		for sqlite.QueuedWrites(s) < i+1 {
			runtime.Gosched()
		}
	}
	release()
	wg.Wait()
}
