package storetest

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testQueueStats: pending deliveries of enabled endpoints count as due or scheduled against now,
// leased ones still count (they are pending), finished ones and those of disabled endpoints do
// not; OldestDue is the earliest due one.
func testQueueStats(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	now := Base()
	stats := func(t *testing.T) aviso.QueueStats {
		t.Helper()
		st, err := s.QueueStats(ctx, now)
		if err != nil {
			t.Fatalf("queue stats: %v", err)
		}
		return st
	}
	if st := stats(t); st.Due != 0 || st.Scheduled != 0 || st.OldestDue != nil || st.DisabledEndpoints != 0 {
		t.Fatalf("empty store: got %+v, want zeros", st)
	}

	ten := NewTenant(t, s)
	ep, gone := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	first := now.Add(-3 * time.Minute)
	Publish(t, s, ten.ID, first, ep)                   // due, oldest
	Publish(t, s, ten.ID, now.Add(-2*time.Minute), ep) // due; claimed below and left leased
	_, ds := Publish(t, s, ten.ID, now.Add(-time.Minute), ep)
	Publish(t, s, ten.ID, now.Add(time.Minute), ep)       // scheduled
	Publish(t, s, ten.ID, now.Add(-10*time.Minute), gone) // of an endpoint disabled below
	if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: gone.ID,
		Disabled: true, Reason: aviso.DisabledByUser, Now: now}); err != nil {
		t.Fatalf("disable: %v", err)
	}
	// Claim the two oldest due of ep, succeed the third one (claimed by ID order of due time).
	cs := Claim(t, s, "queue", now, 3)
	if len(cs) != 3 {
		t.Fatalf("claimed %d, want 3", len(cs))
	}
	for _, c := range cs {
		if c.Delivery.ID == ds[0].ID {
			Complete(t, s, Completion(c.Delivery, "queue", now, 200, true))
		}
	}

	st := stats(t)
	if st.Due != 2 || st.Scheduled != 1 || st.DisabledEndpoints != 1 {
		t.Errorf("got due %d, scheduled %d, disabled endpoints %d; want 2, 1, 1", st.Due, st.Scheduled, st.DisabledEndpoints)
	}
	if st.OldestDue == nil || !st.OldestDue.Equal(ms(first)) {
		t.Errorf("oldest due: got %v, want %v", st.OldestDue, ms(first))
	} else {
		checkUTC(t, "oldest due", *st.OldestDue)
	}
}
