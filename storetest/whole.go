package storetest

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// Each store method is one transaction (aviso.Store): a disabling or a tenant's deletion has
// done all its work when it returns, however much there is, with nothing left for a later write
// or the next Open to finish. These cases give them a backlog of deliveries in every state a
// store may hold them in: attempted and waiting for a retry, in flight, never attempted, in
// batches of many.

// backlog publishes n events to ep, in batches of 100, due at Base, and returns their
// deliveries; the first retries of them are claimed and completed with a retry scheduled.
func backlog(t *testing.T, s aviso.Store, tenantID string, ep *aviso.Endpoint, n, retries int) []*aviso.Delivery {
	t.Helper()
	var ds []*aviso.Delivery
	for done := 0; done < n; done += 100 {
		var batch []aviso.NewEvent
		for i := done; i < min(n, done+100); i++ {
			ne := NewEvent(tenantID, "invoice.created", Base().Add(time.Duration(i)*time.Microsecond), ep)
			batch = append(batch, ne)
			ds = append(ds, ne.Deliveries...)
		}
		if _, err := s.InsertEvents(t.Context(), batch); err != nil {
			t.Fatalf("insert events: %v", err)
		}
	}
	if retries > 0 {
		cs := Claim(t, s, "node-a", Base().Add(time.Second), retries)
		var done []aviso.Completion
		for _, c := range cs {
			done = append(done, Completion(c.Delivery, "node-a", Base().Add(time.Second), 503, false))
		}
		Complete(t, s, done...)
	}
	return ds
}

func testDisableFailsAllAtOnce(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep, other := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	ds := backlog(t, s, ten.ID, ep, 250, 20)
	_, kept := Publish(t, s, ten.ID, Base().Add(time.Minute), other)
	// One more in flight when the endpoint is disabled: its retry is recorded failed.
	inFlight := Claim(t, s, "node-b", Base().Add(time.Hour), 1)
	if len(inFlight) != 1 || inFlight[0].Delivery.EndpointID != ep.ID {
		t.Fatalf("claimed %d, want one of the endpoint's deliveries in flight", len(inFlight))
	}

	at := Base().Add(2 * time.Hour)
	if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID, Disabled: true,
		Reason: aviso.DisabledByUser, Now: at}); err != nil {
		t.Fatalf("disable: %v", err)
	}
	page, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: ten.ID, EndpointID: ep.ID, Status: aviso.StatusPending})
	if err != nil {
		t.Fatalf("list pending: %v", err)
	}
	if len(page.Data) != 0 {
		t.Fatalf("%d deliveries of the disabled endpoint still pending (first %s), want none", len(page.Data), page.Data[0].ID)
	}
	failed := walk(t, 500, func(after string, limit int) (*aviso.Page[*aviso.Delivery], error) {
		return s.ListDeliveries(ctx, aviso.ListDeliveriesParams{ListParams: aviso.ListParams{After: after, Limit: limit},
			TenantID: ten.ID, EndpointID: ep.ID, Status: aviso.StatusFailed})
	})
	if len(failed) != len(ds) {
		t.Fatalf("%d of the endpoint's %d deliveries failed by the disabling", len(failed), len(ds))
	}
	for _, d := range failed {
		if d.LastError != "endpoint disabled" || d.NextAttemptAt != nil || !d.UpdatedAt.Equal(ms(at)) {
			t.Fatalf("delivery %s: %q, next %v, updated %v; want endpoint disabled, none, %v", d.ID, d.LastError,
				d.NextAttemptAt, d.UpdatedAt, ms(at))
		}
	}
	if st, err := s.QueueStats(ctx, at); err != nil || st.Due+st.Scheduled != 1 {
		t.Errorf("queue stats after disabling: %+v, %v; want only the other endpoint's delivery", st, err)
	}
	// The attempt that was in flight is recorded, failed; re-enabled, nothing comes back.
	Complete(t, s, Completion(inFlight[0].Delivery, "node-b", at.Add(time.Minute), 503, false))
	if d := mustGetDelivery(t, s, ten.ID, inFlight[0].Delivery.ID); d.Status != aviso.StatusFailed {
		t.Errorf("the attempt in flight at the disabling left its delivery %s, want failed", d.Status)
	}
	if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID, Now: at.Add(2 * time.Minute)}); err != nil {
		t.Fatalf("enable: %v", err)
	}
	cs := Claim(t, s, "node-c", at.Add(24*time.Hour), 100)
	if len(cs) != 1 || cs[0].Delivery.ID != kept[0].ID {
		t.Errorf("claim after re-enabling: %d claims, want only the other endpoint's delivery", len(cs))
	}
}

func testDeleteTenantAllAtOnce(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	gone, kept := NewTenant(t, s), NewTenant(t, s)
	epGone, epKept := NewEndpoint(t, s, gone.ID), NewEndpoint(t, s, kept.ID)
	ds := backlog(t, s, gone.ID, epGone, 250, 20)
	_, dKept := Publish(t, s, kept.ID, Base(), epKept)
	if err := s.DeleteTenant(ctx, gone.ID); err != nil {
		t.Fatalf("delete tenant: %v", err)
	}
	for _, d := range []*aviso.Delivery{ds[0], ds[len(ds)/2], ds[len(ds)-1]} {
		_, err := s.GetDelivery(ctx, gone.ID, d.ID)
		wantCode(t, "delivery of a deleted tenant", err, aviso.ENOTFOUND)
		_, err = s.GetEvent(ctx, gone.ID, d.EventID)
		wantCode(t, "event of a deleted tenant", err, aviso.ENOTFOUND)
	}
	if st, err := s.QueueStats(ctx, Base().Add(time.Hour)); err != nil || st.Due != 1 {
		t.Errorf("queue stats after the deletion: %+v, %v; want the other tenant's delivery alone", st, err)
	}
	cs := Claim(t, s, "node", Base().Add(24*time.Hour), 100)
	if len(cs) != 1 || cs[0].Delivery.ID != dKept[0].ID {
		t.Errorf("claim after deleting a tenant: %d claims, want only the other tenant's delivery", len(cs))
	}
}
