package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testOrdering: on an endpoint ordered by external reference, a delivery is not claimed while an
// earlier one (by publication) of the same endpoint and reference is pending — due, waiting for a
// retry, or leased; one claim never holds two of a reference; the next goes once the earlier one
// has succeeded or failed for good, at once, and the dispatchers are woken. Other references,
// events without one and unordered endpoints are not held; a delivery queued again by hand, or
// created late for an old event, holds the later ones still pending; turning ordering on applies
// to the deliveries already stored. Through both claim paths (with and without Caps).
func testOrdering(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	setOrdering := func(t *testing.T, ep *aviso.Endpoint, ordering string) {
		t.Helper()
		ep.Ordering = ordering
		ep.UpdatedAt = Base()
		if err := s.UpdateEndpoint(ctx, ep); err != nil {
			t.Fatalf("update endpoint: %v", err)
		}
		if got := mustGetEndpoint(t, s, ten.ID, ep.ID).Ordering; got != ordering {
			t.Fatalf("Ordering %q after update, want %q", got, ordering)
		}
	}
	ordered := func(t *testing.T) *aviso.Endpoint {
		t.Helper()
		ep := &aviso.Endpoint{ID: aviso.NewID(aviso.PrefixEndpoint, time.Now()), TenantID: ten.ID,
			URL: "https://example.com/hooks", Format: aviso.FormatStandard, TimeoutSeconds: aviso.DefaultTimeoutSeconds,
			Secrets: []aviso.Secret{{Value: "whsec_c2VjcmV0"}}, Ordering: aviso.OrderingExternalReference,
			CreatedAt: Base(), UpdatedAt: Base()}
		if err := s.CreateEndpoint(ctx, ep); err != nil {
			t.Fatalf("create endpoint: %v", err)
		}
		if got := mustGetEndpoint(t, s, ten.ID, ep.ID).Ordering; got != aviso.OrderingExternalReference {
			t.Fatalf("Ordering %q as created, want %q", got, aviso.OrderingExternalReference)
		}
		return ep
	}
	// publish stores events with the references refs ("" for none), a millisecond apart from at,
	// each with a delivery to each endpoint; it returns the deliveries of the first endpoint.
	publish := func(t *testing.T, at time.Time, refs []string, eps ...*aviso.Endpoint) []*aviso.Delivery {
		t.Helper()
		var out []*aviso.Delivery
		for i, ref := range refs {
			ne := NewEvent(ten.ID, "invoice.created", at.Add(time.Duration(i)*time.Millisecond), eps...)
			ne.Event.ExternalReference = ref
			if _, err := s.InsertEvents(ctx, []aviso.NewEvent{ne}); err != nil {
				t.Fatalf("insert events: %v", err)
			}
			out = append(out, ne.Deliveries[0])
		}
		return out
	}
	// claim claims at now, leaving out the endpoints exclude, and returns how many it claimed
	// of each endpoint and the IDs it claimed, in ID order.
	claim := func(t *testing.T, now time.Time, exclude []string) (map[string]int, []string) {
		t.Helper()
		cs, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now, Limit: 100, Owner: "node",
			LeaseUntil: now.Add(time.Minute), Caps: excluding(exclude)})
		if err != nil {
			t.Fatalf("claim deliveries: %v", err)
		}
		per := map[string]int{}
		var ids []string
		for _, c := range cs {
			per[c.Delivery.EndpointID]++
			ids = append(ids, c.Delivery.ID)
		}
		slices.Sort(ids)
		return per, ids
	}
	ids := func(ds ...*aviso.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		slices.Sort(out)
		return out
	}
	complete := func(t *testing.T, cs ...aviso.Completion) {
		t.Helper()
		Complete(t, s, cs...)
	}

	for _, excluding := range []bool{false, true} {
		name := "one reference at a time"
		if excluding {
			name = "one reference at a time, excluding another endpoint"
		}
		t.Run(name, func(t *testing.T) {
			ep, plain, other := ordered(t), NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
			var exclude []string
			if excluding {
				exclude = []string{other.ID}
				publish(t, Base(), []string{"FAC-A"}, other)
			}
			ds := publish(t, Base(), []string{"FAC-A", "FAC-A", "FAC-B", "", "FAC-A", ""}, ep, plain)
			a1, a2, b1, n1, a3, n2 := ds[0], ds[1], ds[2], ds[3], ds[4], ds[5]
			now := Base().Add(time.Second)
			per, got := claim(t, now, exclude)
			if per[plain.ID] != 6 {
				t.Fatalf("the unordered endpoint: claimed %d, want all 6", per[plain.ID])
			}
			if per[ep.ID] != 4 || !containsAll(got, a1, b1, n1, n2) {
				t.Fatalf("the ordered endpoint: claimed %d (%v), want the first of each reference and the events without one: %v",
					per[ep.ID], got, ids(a1, b1, n1, n2))
			}
			// While a1 is leased, a2 and a3 wait.
			if per, _ := claim(t, now, exclude); per[ep.ID] != 0 {
				t.Fatalf("a1 leased: claimed %d of the ordered endpoint, want 0", per[ep.ID])
			}
			// a1 fails and is retried a minute later: a2 waits for it, past a1's own due time too.
			complete(t, Completion(a1, "node", now, 503, false), Completion(b1, "node", now, 200, false),
				Completion(n1, "node", now, 503, false), Completion(n2, "node", now, 200, false))
			if per, _ := claim(t, now.Add(30*time.Second), exclude); per[ep.ID] != 0 {
				t.Fatalf("a1 waiting for its retry: claimed %d of the ordered endpoint, want 0", per[ep.ID])
			}
			retry := now.Add(time.Minute)
			per, got = claim(t, retry, exclude)
			if per[ep.ID] != 2 || !containsAll(got, a1, n1) {
				t.Fatalf("at a1's retry: claimed %d (%v), want a1 and n1 %v", per[ep.ID], got, ids(a1, n1))
			}
			complete(t, Completion(n1, "node", retry, 200, false))
			if per, _ := claim(t, retry.Add(30*time.Second), exclude); per[ep.ID] != 0 {
				t.Fatalf("a1 in flight again: claimed %d of the ordered endpoint, want 0", per[ep.ID])
			}
			// a1 succeeds: a2 goes at once, woken, and a3 still waits for it.
			drain(s.Wakeups())
			done := retry.Add(time.Second)
			complete(t, Completion(a1, "node", done, 200, false))
			waitWakeup(t, s.Wakeups(), "the completion that frees a2")
			per, got = claim(t, done, exclude)
			if per[ep.ID] != 1 || !containsAll(got, a2) {
				t.Fatalf("a1 succeeded: claimed %d (%v), want a2 %s", per[ep.ID], got, a2.ID)
			}
			// a2 fails for good: a3 goes.
			complete(t, Completion(a2, "node", done, 500, true))
			per, got = claim(t, done, exclude)
			if per[ep.ID] != 1 || !containsAll(got, a3) {
				t.Fatalf("a2 failed: claimed %d (%v), want a3 %s", per[ep.ID], got, a3.ID)
			}
			complete(t, Completion(a3, "node", done, 200, false))
		})
	}

	t.Run("waiting behind an earlier one", func(t *testing.T) {
		// Three of one reference in one batch, a fourth published on its own later: each waits
		// behind the one before it, due OrderingHold after its publish, and is due at once when the
		// one before it finishes, however it finishes.
		ep := ordered(t)
		var batch []aviso.NewEvent
		for i := range 3 {
			ne := NewEvent(ten.ID, "invoice.created", Base().Add(time.Duration(i)*time.Millisecond), ep)
			ne.Event.ExternalReference = "FAC-H"
			batch = append(batch, ne)
		}
		if _, err := s.InsertEvents(ctx, batch); err != nil {
			t.Fatalf("insert events: %v", err)
		}
		ds := []*aviso.Delivery{batch[0].Deliveries[0], batch[1].Deliveries[0], batch[2].Deliveries[0]}
		ds = append(ds, publish(t, Base().Add(10*time.Millisecond), []string{"FAC-H"}, ep)...)
		for i, d := range ds {
			got, want := mustGetDelivery(t, s, ten.ID, d.ID).NextAttemptAt, d.CreatedAt
			if i > 0 {
				want = want.Add(aviso.OrderingHold)
			}
			if got == nil || !got.Equal(want) {
				t.Fatalf("delivery %d of the reference is due at %v, want %v", i+1, got, want)
			}
		}
		now := Base().Add(time.Second)
		if per, got := claim(t, now, nil); per[ep.ID] != 1 || !containsAll(got, ds[0]) {
			t.Fatalf("claimed %d (%v), want the first %s only", per[ep.ID], got, ds[0].ID)
		}
		finish := []struct {
			how  string
			code int
		}{{"succeeded", 200}, {"failed for good", 500}, {"succeeded", 204}}
		for i, f := range finish {
			done := now.Add(time.Duration(i+1) * time.Second) // well before the hold of the next one
			drain(s.Wakeups())
			complete(t, Completion(ds[i], "node", done, f.code, true))
			waitWakeup(t, s.Wakeups(), "the completion that frees the next one")
			if next := mustGetDelivery(t, s, ten.ID, ds[i+1].ID).NextAttemptAt; next == nil || next.After(done) {
				t.Fatalf("delivery %d %s at %v: the next one is due at %v, want at once", i+1, f.how, done, next)
			}
			if per, got := claim(t, done, nil); per[ep.ID] != 1 || !containsAll(got, ds[i+1]) {
				t.Fatalf("delivery %d %s: claimed %d (%v), want the next %s", i+1, f.how, per[ep.ID], got, ds[i+1].ID)
			}
		}
		// With nothing of its reference pending, a new one is due at its publish.
		last := now.Add(time.Minute)
		complete(t, Completion(ds[3], "node", last, 200, false))
		d := publish(t, last, []string{"FAC-H"}, ep)[0]
		if got := mustGetDelivery(t, s, ten.ID, d.ID).NextAttemptAt; got == nil || !got.Equal(last) {
			t.Fatalf("a delivery with nothing ahead of it is due at %v, want its publish %v", got, last)
		}
		if per, got := claim(t, last, nil); per[ep.ID] != 1 || !containsAll(got, d) {
			t.Fatalf("nothing ahead: claimed %d (%v), want %s", per[ep.ID], got, d.ID)
		}
		complete(t, Completion(d, "node", last, 200, false))
	})

	t.Run("waiting behind an earlier one, IDs in the other order", func(t *testing.T) {
		// One instant, so IDs are random within it: here the later events' deliveries have the
		// smaller IDs. The first event's delivery is still the one due, the others held.
		ep := ordered(t)
		var batch []aviso.NewEvent
		for range 3 {
			ne := NewEvent(ten.ID, "invoice.created", Base(), ep)
			ne.Event.ExternalReference = "FAC-R"
			batch = append(batch, ne)
		}
		ids := []string{batch[0].Deliveries[0].ID, batch[1].Deliveries[0].ID, batch[2].Deliveries[0].ID}
		slices.Sort(ids)
		for i, ne := range batch {
			ne.Deliveries[0].ID = ids[len(ids)-1-i]
		}
		if _, err := s.InsertEvents(ctx, batch); err != nil {
			t.Fatalf("insert events: %v", err)
		}
		for i, ne := range batch {
			got, want := mustGetDelivery(t, s, ten.ID, ne.Deliveries[0].ID).NextAttemptAt, Base()
			if i > 0 {
				want = want.Add(aviso.OrderingHold)
			}
			if got == nil || !got.Equal(want) {
				t.Fatalf("delivery %d of the reference is due at %v, want %v", i+1, got, want)
			}
		}
		if per, got := claim(t, Base().Add(time.Second), nil); per[ep.ID] != 1 || !containsAll(got, batch[0].Deliveries[0]) {
			t.Fatalf("claimed %d (%v), want the first %s only", per[ep.ID], got, batch[0].Deliveries[0].ID)
		}
	})

	t.Run("queued again by hand", func(t *testing.T) {
		ep := ordered(t)
		ds := publish(t, Base(), []string{"FAC-A", "FAC-A", "FAC-A", "FAC-B"}, ep)
		now := Base().Add(time.Second)
		claim(t, now, nil) // a1 and b1
		complete(t, Completion(ds[0], "node", now, 200, false), Completion(ds[3], "node", now, 500, true))
		// a2 is due; a1, delivered already, is retried: it goes first and a2 waits for it.
		if _, err := s.RetryDelivery(ctx, ten.ID, ds[0].ID, now); err != nil {
			t.Fatal(err)
		}
		if per, got := claim(t, now, nil); per[ep.ID] != 1 || !containsAll(got, ds[0]) {
			t.Fatalf("a1 retried by hand: claimed %d (%v), want a1 %s only", per[ep.ID], got, ds[0].ID)
		}
		complete(t, Completion(ds[0], "node", now, 200, false))
		if per, got := claim(t, now, nil); per[ep.ID] != 1 || !containsAll(got, ds[1]) {
			t.Fatalf("a1 delivered again: claimed %d (%v), want a2 %s", per[ep.ID], got, ds[1].ID)
		}
		complete(t, Completion(ds[1], "node", now, 200, false))
		if per, got := claim(t, now, nil); per[ep.ID] != 1 || !containsAll(got, ds[2]) {
			t.Fatalf("a2 delivered: claimed %d (%v), want a3 %s", per[ep.ID], got, ds[2].ID)
		}
		complete(t, Completion(ds[2], "node", now, 200, false))
		// A replay of everything queues them all again: one per reference at a time, in order.
		if _, err := s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: ten.ID, EndpointID: ep.ID, All: true, Now: now}); err != nil {
			t.Fatal(err)
		}
		for _, step := range [][]*aviso.Delivery{{ds[0], ds[3]}, {ds[1]}, {ds[2]}} {
			per, got := claim(t, now, nil)
			if per[ep.ID] != len(step) || !containsAll(got, step...) {
				t.Fatalf("replayed: claimed %d (%v), want %v", per[ep.ID], got, ids(step...))
			}
			for _, d := range step {
				complete(t, Completion(d, "node", now, 200, false))
			}
		}
	})

	t.Run("missed deliveries of old events", func(t *testing.T) {
		// Two events of one reference, alone in their hour, before the endpoint existed.
		plain, at := NewEndpoint(t, s, ten.ID), Base().Add(10*time.Hour)
		publish(t, at, []string{"FAC-M", "FAC-M"}, plain)
		ep := ordered(t)
		n, err := s.CreateMissedDeliveries(ctx, aviso.MissedParams{TenantID: ten.ID, EndpointID: ep.ID,
			Since: at, Until: at.Add(time.Second), Now: at.Add(time.Minute)})
		if err != nil || n != 2 {
			t.Fatalf("create missed deliveries: %d, %v; want 2", n, err)
		}
		per, got := claim(t, at.Add(time.Minute), nil)
		if per[ep.ID] != 1 {
			t.Fatalf("two missed deliveries of one reference: claimed %d, want 1", per[ep.ID])
		}
		// The second waits behind the first and goes at once when it has succeeded.
		var first *aviso.Delivery
		for _, id := range got {
			if d := mustGetDelivery(t, s, ten.ID, id); d.EndpointID == ep.ID {
				first = d
			}
		}
		done := at.Add(time.Minute + time.Second)
		complete(t, Completion(first, "node", done, 200, false))
		if per, _ := claim(t, done, nil); per[ep.ID] != 1 {
			t.Fatalf("the first missed delivery succeeded: claimed %d, want the second", per[ep.ID])
		}
	})

	t.Run("turned on and off", func(t *testing.T) {
		ep := NewEndpoint(t, s, ten.ID)
		ds := publish(t, Base(), []string{"FAC-T", "FAC-T", "FAC-T"}, ep)
		setOrdering(t, ep, aviso.OrderingExternalReference)
		now := Base().Add(time.Second)
		if per, got := claim(t, now, nil); per[ep.ID] != 1 || !containsAll(got, ds[0]) {
			t.Fatalf("ordering turned on: claimed %d (%v), want the first %s", per[ep.ID], got, ds[0].ID)
		}
		setOrdering(t, ep, aviso.OrderingNone)
		if per, _ := claim(t, now, nil); per[ep.ID] != 2 {
			t.Fatalf("ordering turned off: claimed %d, want the other 2", per[ep.ID])
		}
	})
}

// testOrderingConcurrent: claimers racing on one ordered endpoint (several nodes on PostgreSQL)
// never hold two deliveries of one reference at once, and each reference's deliveries complete
// in publish order.
func testOrderingConcurrent(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	ep.Ordering = aviso.OrderingExternalReference
	if err := s.UpdateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	const refs, perRef = 8, 8
	refOf := map[string]string{}
	var batch []aviso.NewEvent
	for n := range perRef {
		for r := range refs {
			ne := NewEvent(ten.ID, "invoice.created", Base().Add(time.Duration(n*refs+r)*time.Millisecond), ep)
			ne.Event.ExternalReference = fmt.Sprintf("doc-%d", r)
			refOf[ne.Deliveries[0].ID] = ne.Event.ExternalReference
			batch = append(batch, ne)
		}
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	now := Base().Add(time.Second)
	var (
		mu   sync.Mutex
		held = map[string]string{}   // reference → the delivery of it claimed and not yet completing
		done = map[string][]string{} // reference → its deliveries in completion order
		left = refs * perRef
	)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			owner := fmt.Sprintf("node-%d", w)
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
				mu.Lock()
				finished := left == 0
				mu.Unlock()
				if finished || t.Failed() {
					return
				}
				cs, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now, Limit: 3, Owner: owner, LeaseUntil: now.Add(time.Hour)})
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				for _, c := range cs {
					ref := refOf[c.Delivery.ID]
					mu.Lock()
					if other, ok := held[ref]; ok {
						t.Errorf("%s claimed %s while %s of the same reference %s was held", owner, c.Delivery.ID, other, ref)
					}
					held[ref] = c.Delivery.ID
					mu.Unlock()
				}
				for _, c := range cs {
					ref := refOf[c.Delivery.ID]
					mu.Lock()
					delete(held, ref) // before the completion commits: no claim sees the next one before
					done[ref] = append(done[ref], c.Delivery.ID)
					left--
					mu.Unlock()
					if _, err := s.CompleteDeliveries(ctx, []aviso.Completion{Completion(c.Delivery, owner, now, 200, false)}); err != nil {
						t.Errorf("complete: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if left != 0 {
		t.Fatalf("%d deliveries never claimed", left)
	}
	for r := range refs {
		ref := fmt.Sprintf("doc-%d", r)
		var want []string
		for _, ne := range batch {
			if ne.Event.ExternalReference == ref {
				want = append(want, ne.Deliveries[0].ID)
			}
		}
		if !slices.Equal(done[ref], want) {
			t.Errorf("%s completed in the order %v, want publish order %v", ref, done[ref], want)
		}
	}
}

// containsAll reports whether every delivery of ds is among ids.
func containsAll(ids []string, ds ...*aviso.Delivery) bool {
	for _, d := range ds {
		if !slices.Contains(ids, d.ID) {
			return false
		}
	}
	return true
}
