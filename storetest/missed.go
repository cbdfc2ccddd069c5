package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testMissedDeliveries: CreateMissedDeliveries gives an endpoint one pending delivery, due at
// Now, for each event of the window (and of its types) that has none to it — events published
// while it was disabled — and none for events that have one; calling it again creates nothing.
// ReplayDeliveries' Until bounds its window too.
func testMissedDeliveries(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep, other := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	at := func(m int) time.Time { return Base().Add(time.Duration(m) * time.Minute) }
	publish := func(typ string, m int, eps ...*aviso.Endpoint) *aviso.Event {
		t.Helper()
		res, err := s.InsertEvents(ctx, []aviso.NewEvent{NewEvent(ten.ID, typ, at(m), eps...)})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Event
	}
	had := publish("invoice.created", 0, ep, other) // delivered to both
	missed1 := publish("invoice.created", 1, other) // ep was disabled
	missed2 := publish("invoice.paid", 2, other)
	publish("customer.created", 3, other) // a type ep does not subscribe to
	outside := publish("invoice.created", 10, other)

	now := at(20)
	n, err := s.CreateMissedDeliveries(ctx, aviso.MissedParams{TenantID: ten.ID, EndpointID: ep.ID,
		Since: at(0), Until: at(5), Types: []string{"invoice.created", "invoice.paid"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("created %d missed deliveries, want 2", n)
	}
	page, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: ten.ID, EndpointID: ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, d := range page.Data {
		events = append(events, d.EventID)
		if d.EventID == had.ID {
			continue
		}
		if d.Status != aviso.StatusPending || d.NextAttemptAt == nil || !ms(*d.NextAttemptAt).Equal(ms(now)) ||
			d.AttemptCount != 0 || !ms(d.CreatedAt).Equal(ms(now)) {
			t.Errorf("missed delivery %+v: want pending, due and created at %v, no attempts", d, now)
		}
	}
	slices.Sort(events)
	want := []string{had.ID, missed1.ID, missed2.ID}
	slices.Sort(want)
	if !slices.Equal(events, want) {
		t.Fatalf("the endpoint's deliveries are of events %v, want %v (not %s, outside the window)", events, want, outside.ID)
	}
	if cs := Claim(t, s, "node", now, 100); !slices.ContainsFunc(cs, func(c *aviso.Claim) bool { return c.Delivery.EventID == missed1.ID }) {
		t.Errorf("a missed delivery is not claimable at Now")
	}

	// Again: nothing left to create. No end and every type: the events after the window.
	n, err = s.CreateMissedDeliveries(ctx, aviso.MissedParams{TenantID: ten.ID, EndpointID: ep.ID,
		Since: at(0), Until: at(5), Types: []string{"invoice.created", "invoice.paid"}, Now: now})
	if err != nil || n != 0 {
		t.Fatalf("second call created %d (%v), want 0", n, err)
	}
	n, err = s.CreateMissedDeliveries(ctx, aviso.MissedParams{TenantID: ten.ID, EndpointID: ep.ID, Since: at(0), Now: now})
	if err != nil || n != 2 {
		t.Fatalf("every type, no end: created %d (%v), want 2 (customer.created and the later event)", n, err)
	}

	if _, err := s.CreateMissedDeliveries(ctx, aviso.MissedParams{TenantID: ten.ID, EndpointID: "ep_nobody",
		Since: at(0), Now: now}); aviso.ErrorCode(err) != aviso.ENOTFOUND {
		t.Errorf("unknown endpoint: %v, want ENOTFOUND", err)
	}
	other2 := NewTenant(t, s)
	if _, err := s.CreateMissedDeliveries(ctx, aviso.MissedParams{TenantID: other2.ID, EndpointID: ep.ID,
		Since: at(0), Now: now}); aviso.ErrorCode(err) != aviso.ENOTFOUND {
		t.Errorf("another tenant's endpoint: %v, want ENOTFOUND", err)
	}

	t.Run("replay until", func(t *testing.T) {
		ep := NewEndpoint(t, s, ten.ID)
		var ds []*aviso.Delivery
		for m := range 3 {
			_, d := Publish(t, s, ten.ID, at(m), ep)
			ds = append(ds, d[0])
		}
		Claim(t, s, "node", at(30), 100)
		for _, d := range ds {
			Complete(t, s, Completion(d, "node", at(30), 500, true))
		}
		n, err := s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: ten.ID, EndpointID: ep.ID,
			Since: at(0), Until: at(2), Now: at(40)})
		if err != nil || n != 2 {
			t.Fatalf("replay of [0, 2) minutes: %d (%v), want 2", n, err)
		}
		if d := mustGetDelivery(t, s, ten.ID, ds[2].ID); d.Status != aviso.StatusFailed {
			t.Errorf("the delivery after Until is %s, want failed (not replayed)", d.Status)
		}
	})
}
