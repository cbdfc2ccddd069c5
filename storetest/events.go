package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func testInsertEvents(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep1, ep2, gone := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	off := NewEndpoint(t, s, ten.ID)
	if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: off.ID,
		Disabled: true, Reason: aviso.DisabledByUser, Now: Base()}); err != nil {
		t.Fatalf("disable endpoint: %v", err)
	}
	// gone is deleted and off disabled after the caller listed them: their deliveries are skipped.
	a := NewEvent(ten.ID, "invoice.created", Base(), ep1, ep2, gone, off)
	a.Event.ExternalReference = "FV-0001"
	a.Event.Data = json.RawMessage(`{"number":"FV-0001","items":[{"sku":"A","qty":2}],"paid":false,"note":null}`)
	b := NewEvent(ten.ID, "invoice.voided", Base().Add(time.Millisecond), ep1)
	if err := s.DeleteEndpoint(ctx, ten.ID, gone.ID); err != nil {
		t.Fatalf("delete endpoint: %v", err)
	}
	res, err := s.InsertEvents(ctx, []aviso.NewEvent{a, b})
	if err != nil {
		t.Fatalf("insert events: %v", err)
	}
	if len(res) != 2 {
		t.Fatalf("insert events: %d results, want 2", len(res))
	}
	for i, ne := range []aviso.NewEvent{a, b} {
		if !res[i].Created {
			t.Errorf("result %d: Created false, want true", i)
		}
		checkEvent(t, res[i].Event, ne.Event)
		got, err := s.GetEvent(ctx, ten.ID, ne.Event.ID)
		if err != nil {
			t.Fatalf("get event: %v", err)
		}
		checkEvent(t, got, ne.Event)
	}
	for _, d := range append(a.Deliveries[:2:2], b.Deliveries...) {
		checkDelivery(t, mustGetDelivery(t, s, ten.ID, d.ID), d)
	}
	_, err = s.GetDelivery(ctx, ten.ID, a.Deliveries[2].ID)
	wantCode(t, "delivery to a deleted endpoint", err, aviso.ENOTFOUND)
	_, err = s.GetDelivery(ctx, ten.ID, a.Deliveries[3].ID)
	wantCode(t, "delivery to a disabled endpoint", err, aviso.ENOTFOUND)
	p, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: ten.ID, ListParams: aviso.ListParams{Limit: aviso.MaxLimit}})
	if err != nil {
		t.Fatalf("list deliveries: %v", err)
	}
	if len(p.Data) != 3 {
		t.Errorf("%d deliveries stored, want 3 (the deleted and the disabled endpoint's are skipped)", len(p.Data))
	}
	// Deliveries are stored as new, pending and never attempted, whatever they say; their times
	// are stored as given.
	later := Base().Add(time.Hour)
	for _, tc := range []struct {
		name string
		edit func(d *aviso.Delivery)
	}{
		{"said failed after attempts", func(d *aviso.Delivery) {
			d.Status, d.AttemptCount, d.RoundAttempts, d.LastResponseStatus, d.LastError = aviso.StatusFailed, 3, 2, 503, "HTTP 503"
		}},
		{"said succeeded", func(d *aviso.Delivery) {
			d.Status, d.AttemptCount, d.LastResponseStatus = aviso.StatusSucceeded, 1, 200
		}},
		{"due later", func(d *aviso.Delivery) { d.NextAttemptAt = &later }},
		{"updated later", func(d *aviso.Delivery) { d.UpdatedAt = later }},
	} {
		ne := NewEvent(ten.ID, "invoice.created", Base().Add(2*time.Millisecond), ep1)
		given := *ne.Deliveries[0]
		tc.edit(ne.Deliveries[0])
		if _, err := s.InsertEvents(ctx, []aviso.NewEvent{ne}); err != nil {
			t.Fatalf("%s: insert events: %v", tc.name, err)
		}
		want := *ne.Deliveries[0]
		want.Status, want.AttemptCount, want.RoundAttempts = aviso.StatusPending, 0, 0
		want.LastResponseStatus, want.LastError = given.LastResponseStatus, given.LastError
		checkDelivery(t, mustGetDelivery(t, s, ten.ID, want.ID), &want)
	}
	_, err = s.GetEvent(ctx, ten.ID, "evt_none")
	wantCode(t, "get a missing event", err, aviso.ENOTFOUND)
	if res, err := s.InsertEvents(ctx, nil); err != nil || len(res) != 0 {
		t.Errorf("insert no events: %v, %v; want nothing and no error", res, err)
	}
}

func testInsertEventsIdempotent(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	a, b := NewTenant(t, s), NewTenant(t, s)
	epA, epB := NewEndpoint(t, s, a.ID), NewEndpoint(t, s, b.ID)
	first := NewEvent(a.ID, "invoice.created", Base(), epA)
	first.Event.ID = "inv-2026-0001" // IDs come from the publisher
	if _, err := s.InsertEvents(ctx, []aviso.NewEvent{first}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	again := NewEvent(a.ID, "invoice.voided", Base().Add(time.Hour), epA)
	again.Event.ID = first.Event.ID
	again.Event.Data = json.RawMessage(`{"changed":true}`)
	otherTenant := NewEvent(b.ID, "invoice.created", Base(), epB)
	otherTenant.Event.ID = first.Event.ID
	fresh := NewEvent(a.ID, "invoice.created", Base().Add(time.Second), epA)
	res, err := s.InsertEvents(ctx, []aviso.NewEvent{again, otherTenant, fresh})
	if err != nil {
		t.Fatalf("insert again: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	if res[0].Created {
		t.Errorf("the same (tenant, id) twice: Created true, want false")
	}
	checkEvent(t, res[0].Event, first.Event) // the stored event, unchanged
	if !res[1].Created || !res[2].Created {
		t.Errorf("Created %v, %v for the other tenant's event and a fresh one, want true", res[1].Created, res[2].Created)
	}
	checkEvent(t, res[1].Event, otherTenant.Event)
	got, err := s.GetEvent(ctx, a.ID, first.Event.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	checkEvent(t, got, first.Event)
	_, err = s.GetDelivery(ctx, a.ID, again.Deliveries[0].ID)
	wantCode(t, "delivery of a duplicate event", err, aviso.ENOTFOUND)
	mustGetDelivery(t, s, b.ID, otherTenant.Deliveries[0].ID)

	// The same ID twice in one batch: the first is stored, the second reports it.
	twice1 := NewEvent(a.ID, "invoice.created", Base().Add(2*time.Second), epA)
	twice2 := NewEvent(a.ID, "invoice.voided", Base().Add(3*time.Second), epA)
	twice2.Event.ID = twice1.Event.ID
	res, err = s.InsertEvents(ctx, []aviso.NewEvent{twice1, twice2})
	if err != nil {
		t.Fatalf("insert the same ID twice in a batch: %v", err)
	}
	if len(res) != 2 || !res[0].Created || res[1].Created {
		t.Fatalf("the same ID twice in a batch: %+v, want Created true then false", res)
	}
	checkEvent(t, res[1].Event, twice1.Event)
	_, err = s.GetDelivery(ctx, a.ID, twice2.Deliveries[0].ID)
	wantCode(t, "delivery of the batch's duplicate", err, aviso.ENOTFOUND)
	for _, tc := range []struct {
		tenant string
		want   int
	}{{a.ID, 3}, {b.ID, 1}} {
		p, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: tc.tenant})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(p.Data) != tc.want {
			t.Errorf("tenant %s: %d deliveries, want %d", tc.tenant, len(p.Data), tc.want)
		}
	}
}

func testInsertEventsUnknownTenant(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	ok := NewEvent(ten.ID, "invoice.created", Base(), ep)
	bad := NewEvent("nobody", "invoice.created", Base())
	_, err := s.InsertEvents(ctx, []aviso.NewEvent{ok, bad})
	wantCode(t, "insert for an unknown tenant", err, aviso.ENOTFOUND)
	// One transaction: the good event is not stored either.
	_, err = s.GetEvent(ctx, ten.ID, ok.Event.ID)
	wantCode(t, "get an event of a failed batch", err, aviso.ENOTFOUND)
	if _, ok, err := s.NextDueAt(ctx); err != nil || ok {
		t.Errorf("NextDueAt after a failed batch: %v, %v; want none", ok, err)
	}
}

func testListEvents(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten, other := NewTenant(t, s), NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	var all []*aviso.Event
	for i := range 13 {
		typ := "invoice.created"
		if i%3 == 0 {
			typ = "payment.received"
		}
		ne := NewEvent(ten.ID, typ, Base().Add(time.Duration(i)*time.Millisecond), ep)
		// IDs that do not sort in publication order: the list follows publication order.
		ne.Event.ID = fmt.Sprintf("evt_%02d", (i*7)%13)
		ne.Deliveries[0].EventID = ne.Event.ID
		ne.Event.ExternalReference = fmt.Sprintf("ref-%d", i%2)
		if _, err := s.InsertEvents(ctx, []aviso.NewEvent{ne}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		all = append(all, ne.Event)
	}
	foreign, _ := Publish(t, s, other.ID, Base(), NewEndpoint(t, s, other.ID))

	ids := func(evs []*aviso.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	filter := func(keep func(*aviso.Event) bool) []string {
		var out []string
		for _, e := range all {
			if keep(e) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	reversed := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }
	tests := []struct {
		name string
		p    aviso.ListEventsParams
		want []string
	}{
		{"all", aviso.ListEventsParams{}, ids(all)},
		{"desc", aviso.ListEventsParams{Desc: true}, reversed(ids(all))},
		{"type", aviso.ListEventsParams{Type: "payment.received"}, filter(func(e *aviso.Event) bool { return e.Type == "payment.received" })},
		{"reference", aviso.ListEventsParams{ExternalReference: "ref-1"}, filter(func(e *aviso.Event) bool { return e.ExternalReference == "ref-1" })},
		{"type and reference desc", aviso.ListEventsParams{Type: "invoice.created", ExternalReference: "ref-0", Desc: true},
			reversed(filter(func(e *aviso.Event) bool { return e.Type == "invoice.created" && e.ExternalReference == "ref-0" }))},
		{"no match", aviso.ListEventsParams{Type: "nothing.here"}, nil},
		// IDs: in publication order whatever order they are given in; unknown IDs and another
		// tenant's are not listed.
		{"ids", aviso.ListEventsParams{IDs: []string{"evt_11", "evt_00", "evt_05", "evt_nope", foreign.ID, "evt_03"}},
			filter(func(e *aviso.Event) bool {
				return slices.Contains([]string{"evt_00", "evt_03", "evt_05", "evt_11"}, e.ID)
			})},
		{"ids and type desc", aviso.ListEventsParams{IDs: []string{"evt_11", "evt_00", "evt_05", "evt_03"}, Type: "payment.received", Desc: true},
			reversed(filter(func(e *aviso.Event) bool {
				return slices.Contains([]string{"evt_00", "evt_03", "evt_05", "evt_11"}, e.ID) && e.Type == "payment.received"
			}))},
	}
	for _, tc := range tests {
		for _, size := range []int{1, 4, 50} {
			t.Run(fmt.Sprintf("%s/limit %d", tc.name, size), func(t *testing.T) {
				got := walk(t, size, func(after string, limit int) (*aviso.Page[*aviso.Event], error) {
					p := tc.p
					p.TenantID, p.After, p.Limit = ten.ID, after, limit
					return s.ListEvents(ctx, p)
				})
				if !slices.Equal(ids(got), tc.want) {
					t.Errorf("listed %v, want %v", ids(got), tc.want)
				}
			})
		}
	}
	t.Run("fields", func(t *testing.T) {
		p, err := s.ListEvents(ctx, aviso.ListEventsParams{TenantID: ten.ID, ListParams: aviso.ListParams{Limit: 1}})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(p.Data) != 1 {
			t.Fatalf("%d events, want 1", len(p.Data))
		}
		checkEvent(t, p.Data[0], all[0])
	})
}

func testDeliveries(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	_, ds := Publish(t, s, ten.ID, Base(), ep)
	d := ds[0]
	got := mustGetDelivery(t, s, ten.ID, d.ID)
	checkDelivery(t, got, d)
	if len(got.Attempts) != 0 {
		t.Errorf("a new delivery has %d attempts, want 0", len(got.Attempts))
	}
	_, err := s.GetDelivery(ctx, ten.ID, "dlv_none")
	wantCode(t, "get a missing delivery", err, aviso.ENOTFOUND)
	_, err = s.RetryDelivery(ctx, ten.ID, "dlv_none", Base())
	wantCode(t, "retry a missing delivery", err, aviso.ENOTFOUND)
}

// testDeliveryTimeWindows checks Since and Until, of listings and of replays, to the
// microsecond: deliveries created within one millisecond share its ID prefix, so a store that
// finds them through an ID range must still compare their creation times.
func testDeliveryTimeWindows(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	offsets := []time.Duration{100 * time.Microsecond, 500 * time.Microsecond, 900 * time.Microsecond,
		time.Millisecond + 200*time.Microsecond}
	var ds []*aviso.Delivery
	for _, off := range offsets {
		_, d := Publish(t, s, ten.ID, Base().Add(off), ep)
		ds = append(ds, d[0])
	}
	created := func(i int) string { return ds[i].ID }
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for _, tc := range []struct {
		name         string
		since, until time.Duration
		want         []string
	}{
		{"since within the millisecond", 500 * time.Microsecond, 0, sorted(created(1), created(2), created(3))},
		{"since between two of its deliveries", 501 * time.Microsecond, 0, sorted(created(2), created(3))},
		{"until within the millisecond", 0, 900 * time.Microsecond, sorted(created(0), created(1))},
		{"until the next millisecond", 0, time.Millisecond + 200*time.Microsecond, sorted(created(0), created(1), created(2))},
		{"window inside the millisecond", 200 * time.Microsecond, 901 * time.Microsecond, sorted(created(1), created(2))},
		{"before all", 0, 100 * time.Microsecond, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := aviso.ListDeliveriesParams{TenantID: ten.ID, EndpointID: ep.ID}
			for _, filtered := range []bool{true, false} {
				if !filtered {
					p.EndpointID = ""
				}
				if tc.since > 0 {
					p.Since = Base().Add(tc.since)
				}
				if tc.until > 0 {
					p.Until = Base().Add(tc.until)
				}
				page, err := s.ListDeliveries(ctx, p)
				if err != nil {
					t.Fatalf("list deliveries: %v", err)
				}
				var got []string
				for _, d := range page.Data {
					got = append(got, d.ID)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("listed %v (endpoint filter %v), want %v", got, filtered, tc.want)
				}
			}
		})
	}
	// Replays compare Since to the microsecond too.
	now := Base().Add(time.Hour)
	if cs := Claim(t, s, "node", now, 10); len(cs) != len(ds) {
		t.Fatalf("claimed %d, want %d", len(cs), len(ds))
	}
	var comps []aviso.Completion
	for _, d := range ds {
		comps = append(comps, Completion(d, "node", now, 500, true))
	}
	Complete(t, s, comps...)
	n, err := s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: ten.ID, EndpointID: ep.ID,
		Since: Base().Add(501 * time.Microsecond), Now: now})
	if err != nil || n != 2 {
		t.Fatalf("replay since 501 µs: %d, %v; want 2", n, err)
	}
	for i, d := range ds {
		got := mustGetDelivery(t, s, ten.ID, d.ID)
		if want := i >= 2; (got.Status == aviso.StatusPending) != want {
			t.Errorf("delivery at %v: status %q, want pending %v", offsets[i], got.Status, want)
		}
	}
}

func testListDeliveries(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep1, ep2 := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	var all []*aviso.Delivery
	var events []*aviso.Event
	for i := range 8 {
		typ := "invoice.created"
		if i%2 == 1 {
			typ = "invoice.voided"
		}
		ne := NewEvent(ten.ID, typ, Base().Add(time.Duration(i)*time.Minute), ep1, ep2)
		if i%3 == 0 {
			ne.Event.ExternalReference = "FAC-3"
		}
		if _, err := s.InsertEvents(ctx, []aviso.NewEvent{ne}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		all = append(all, ne.Deliveries...)
		events = append(events, ne.Event)
	}
	// IDs sort in creation order (and at random within a millisecond, as an event's two do).
	slices.SortFunc(all, func(a, b *aviso.Delivery) int { return strings.Compare(a.ID, b.ID) })
	// Make the first endpoint's deliveries succeed and the second's fail.
	claims := Claim(t, s, "node", Base().Add(time.Hour), 100)
	var cs []aviso.Completion
	for _, c := range claims {
		switch c.Delivery.EndpointID {
		case ep1.ID:
			cs = append(cs, Completion(c.Delivery, "node", Base().Add(time.Hour), 204, false))
		default:
			cs = append(cs, Completion(c.Delivery, "node", Base().Add(time.Hour), 500, true))
		}
	}
	Complete(t, s, cs...)
	other := NewTenant(t, s) // another tenant's deliveries are never listed
	Publish(t, s, other.ID, Base(), NewEndpoint(t, s, other.ID))

	ids := func(ds []*aviso.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	filter := func(keep func(*aviso.Delivery) bool) []string {
		var out []string
		for _, d := range all {
			if keep(d) {
				out = append(out, d.ID)
			}
		}
		return out
	}
	reversed := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }
	since, until := Base().Add(2*time.Minute), Base().Add(5*time.Minute)
	tests := []struct {
		name string
		p    aviso.ListDeliveriesParams
		want []string
	}{
		{"all", aviso.ListDeliveriesParams{}, ids(all)},
		{"desc", aviso.ListDeliveriesParams{Desc: true}, reversed(ids(all))},
		{"event", aviso.ListDeliveriesParams{EventID: events[3].ID}, filter(func(d *aviso.Delivery) bool { return d.EventID == events[3].ID })},
		{"endpoint", aviso.ListDeliveriesParams{EndpointID: ep2.ID}, filter(func(d *aviso.Delivery) bool { return d.EndpointID == ep2.ID })},
		{"status succeeded", aviso.ListDeliveriesParams{Status: aviso.StatusSucceeded}, filter(func(d *aviso.Delivery) bool { return d.EndpointID == ep1.ID })},
		{"status failed desc", aviso.ListDeliveriesParams{Status: aviso.StatusFailed, Desc: true}, reversed(filter(func(d *aviso.Delivery) bool { return d.EndpointID == ep2.ID }))},
		{"status pending", aviso.ListDeliveriesParams{Status: aviso.StatusPending}, nil},
		{"event type", aviso.ListDeliveriesParams{EventType: "invoice.voided"}, filter(func(d *aviso.Delivery) bool { return d.EventType == "invoice.voided" })},
		{"external reference", aviso.ListDeliveriesParams{ExternalReference: "FAC-3"}, filter(func(d *aviso.Delivery) bool {
			return slices.ContainsFunc(events, func(e *aviso.Event) bool { return e.ID == d.EventID && e.ExternalReference == "FAC-3" })
		})},
		{"external reference failed", aviso.ListDeliveriesParams{ExternalReference: "FAC-3", Status: aviso.StatusFailed}, filter(func(d *aviso.Delivery) bool {
			return d.EndpointID == ep2.ID && slices.ContainsFunc(events, func(e *aviso.Event) bool { return e.ID == d.EventID && e.ExternalReference == "FAC-3" })
		})},
		{"no such reference", aviso.ListDeliveriesParams{ExternalReference: "FAC-404"}, nil},
		{"since", aviso.ListDeliveriesParams{Since: since}, filter(func(d *aviso.Delivery) bool { return !d.CreatedAt.Before(since) })},
		{"until", aviso.ListDeliveriesParams{Until: until}, filter(func(d *aviso.Delivery) bool { return d.CreatedAt.Before(until) })},
		{"since until endpoint", aviso.ListDeliveriesParams{Since: since, Until: until, EndpointID: ep1.ID},
			filter(func(d *aviso.Delivery) bool {
				return !d.CreatedAt.Before(since) && d.CreatedAt.Before(until) && d.EndpointID == ep1.ID
			})},
	}
	for _, tc := range tests {
		for _, size := range []int{3, 50} {
			t.Run(fmt.Sprintf("%s/limit %d", tc.name, size), func(t *testing.T) {
				got := walk(t, size, func(after string, limit int) (*aviso.Page[*aviso.Delivery], error) {
					p := tc.p
					p.TenantID, p.After, p.Limit = ten.ID, after, limit
					return s.ListDeliveries(ctx, p)
				})
				if !slices.Equal(ids(got), tc.want) {
					t.Errorf("listed %v, want %v", ids(got), tc.want)
				}
				for _, d := range got {
					if len(d.Attempts) != 0 {
						t.Errorf("delivery %s listed with %d attempts: only GetDelivery fills them", d.ID, len(d.Attempts))
					}
				}
			})
		}
	}
}

func testDeleteTenantCascades(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	gone, kept := NewTenant(t, s), NewTenant(t, s)
	epGone, epKept := NewEndpoint(t, s, gone.ID), NewEndpoint(t, s, kept.ID)
	if err := s.SaveAPIKey(ctx, &aviso.APIKey{ID: "key_gone", TenantID: gone.ID, Hash: "h-gone", CreatedAt: Base()}); err != nil {
		t.Fatalf("save key: %v", err)
	}
	evGone, dGone := Publish(t, s, gone.ID, Base(), epGone)
	evKept, dKept := Publish(t, s, kept.ID, Base(), epKept)
	Claim(t, s, "node", Base(), 10)
	Complete(t, s, Completion(dGone[0], "node", Base(), 500, false), Completion(dKept[0], "node", Base(), 500, false))

	if err := s.DeleteTenant(ctx, gone.ID); err != nil {
		t.Fatalf("delete tenant: %v", err)
	}
	_, err := s.GetAPIKey(ctx, "key_gone")
	wantCode(t, "key of a deleted tenant", err, aviso.ENOTFOUND)
	_, err = s.GetEndpoint(ctx, gone.ID, epGone.ID)
	wantCode(t, "endpoint of a deleted tenant", err, aviso.ENOTFOUND)
	_, err = s.GetEvent(ctx, gone.ID, evGone.ID)
	wantCode(t, "event of a deleted tenant", err, aviso.ENOTFOUND)
	_, err = s.GetDelivery(ctx, gone.ID, dGone[0].ID)
	wantCode(t, "delivery of a deleted tenant", err, aviso.ENOTFOUND)
	if st, err := s.EndpointStats(ctx, gone.ID, Base().Add(-time.Hour)); err == nil && st[epGone.ID].Failed != 0 {
		t.Errorf("stats of a deleted tenant: %v; want no attempts (or ENOTFOUND)", st)
	}

	mustGetEndpoint(t, s, kept.ID, epKept.ID)
	if _, err := s.GetEvent(ctx, kept.ID, evKept.ID); err != nil {
		t.Errorf("the other tenant's event: %v", err)
	}
	if d := mustGetDelivery(t, s, kept.ID, dKept[0].ID); len(d.Attempts) != 1 {
		t.Errorf("the other tenant's delivery has %d attempts, want 1", len(d.Attempts))
	}
	if cs := Claim(t, s, "node", Base().Add(time.Hour), 10); len(cs) != 1 || cs[0].Delivery.ID != dKept[0].ID {
		t.Errorf("claim after deleting a tenant returned %d claims, want only the other tenant's delivery", len(cs))
	}
}

func testDeleteEndpointCascades(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	gone, kept := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	ev, ds := Publish(t, s, ten.ID, Base(), gone, kept)
	Claim(t, s, "node", Base(), 10)
	Complete(t, s, Completion(ds[0], "node", Base(), 500, false), Completion(ds[1], "node", Base(), 500, false))
	if err := s.DeleteEndpoint(ctx, ten.ID, gone.ID); err != nil {
		t.Fatalf("delete endpoint: %v", err)
	}
	_, err := s.GetEndpoint(ctx, ten.ID, gone.ID)
	wantCode(t, "get a deleted endpoint", err, aviso.ENOTFOUND)
	_, err = s.GetDelivery(ctx, ten.ID, ds[0].ID)
	wantCode(t, "delivery of a deleted endpoint", err, aviso.ENOTFOUND)
	if _, err := s.GetEvent(ctx, ten.ID, ev.ID); err != nil {
		t.Errorf("the event outlives its endpoints: %v", err)
	}
	if d := mustGetDelivery(t, s, ten.ID, ds[1].ID); len(d.Attempts) != 1 {
		t.Errorf("the other endpoint's delivery has %d attempts, want 1", len(d.Attempts))
	}
	st, err := s.EndpointStats(ctx, ten.ID, Base().Add(-time.Hour))
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st[gone.ID].Failed != 0 || st[kept.ID].Failed != 1 {
		t.Errorf("stats after deleting an endpoint: %+v; want the deleted endpoint's attempts gone", st)
	}
	_, err = s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: ten.ID, EndpointID: gone.ID, Now: Base()})
	wantCode(t, "replay a deleted endpoint", err, aviso.ENOTFOUND)
}

func testPageSizes(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	batch := make([]aviso.NewEvent, aviso.MaxLimit+10)
	for i := range batch {
		batch[i] = NewEvent(ten.ID, "invoice.created", Base().Add(time.Duration(i)*time.Millisecond))
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatalf("insert: %v", err)
	}
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"zero means the default", 0, aviso.DefaultLimit},
		{"negative means the default", -1, aviso.DefaultLimit},
		{"over the maximum is cut", aviso.MaxLimit * 10, aviso.MaxLimit},
		{"exact", 7, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ListEvents(ctx, aviso.ListEventsParams{TenantID: ten.ID, ListParams: aviso.ListParams{Limit: tc.limit}})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if len(p.Data) != tc.want || !p.HasMore || p.NextCursor == "" {
				t.Errorf("limit %d: %d events, HasMore %v, cursor %q; want %d, true, a cursor", tc.limit, len(p.Data), p.HasMore, p.NextCursor, tc.want)
			}
		})
	}
}
