package storetest

import (
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// Benchmark measures a store's hot paths: publishing a batch of 100 events with one delivery
// each (and of 500 sharing a millisecond, with none, one and two each), claiming 256 due
// deliveries, listing one endpoint's, one event's and the failed deliveries beside a busy
// endpoint, listing events (all, by type, by external reference) beside a busy tenant, and
// completing 256 claimed deliveries (failed and retried later, and succeeded). open must return
// a fresh, empty, migrated store and close it when b ends.
func Benchmark(b *testing.B, open func(b *testing.B) aviso.Store) {
	b.Run("InsertEvents100", func(b *testing.B) {
		s := open(b)
		ten := NewTenant(b, s)
		ep := NewEndpoint(b, s, ten.ID)
		at := Base()
		for b.Loop() {
			batch := make([]aviso.NewEvent, 100)
			for i := range batch {
				at = at.Add(time.Millisecond)
				batch[i] = NewEvent(ten.ID, "invoice.created", at, ep)
			}
			if _, err := s.InsertEvents(b.Context(), batch); err != nil {
				b.Fatalf("insert events: %v", err)
			}
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
	})
	// Batches as the publish API makes them: 500 events created in the same millisecond, each
	// with a delivery to each of n endpoints. The difference between n and n+1 is what one more
	// delivery row costs (as an endpoint that never answers adds beside a healthy one); n = 0 is
	// the event row alone.
	for n := range 3 {
		b.Run(fmt.Sprintf("InsertEvents500x%d", n), func(b *testing.B) {
			s := open(b)
			ten := NewTenant(b, s)
			var eps []*aviso.Endpoint
			for range n {
				eps = append(eps, NewEndpoint(b, s, ten.ID))
			}
			at := Base()
			for b.Loop() {
				at = at.Add(time.Millisecond)
				batch := make([]aviso.NewEvent, 500)
				for i := range batch {
					batch[i] = NewEvent(ten.ID, "invoice.created", at, eps...)
				}
				if _, err := s.InsertEvents(b.Context(), batch); err != nil {
					b.Fatalf("insert events: %v", err)
				}
			}
			b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500)/1e3, "µs/event")
		})
	}
	// One event per call from 16 goroutines at once, as single-event publishes arrive: what a
	// write costs when the store's commits are shared (SQLite's group commit) or concurrent.
	b.Run("InsertEvents1x16", func(b *testing.B) {
		s := open(b)
		ten := NewTenant(b, s)
		ep := NewEndpoint(b, s, ten.ID)
		var seq atomic.Int64
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				at := Base().Add(time.Duration(seq.Add(1)) * time.Microsecond)
				if _, err := s.InsertEvents(b.Context(), []aviso.NewEvent{NewEvent(ten.ID, "invoice.created", at, ep)}); err != nil {
					b.Errorf("insert events: %v", err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("ClaimDeliveries256", func(b *testing.B) {
		s := open(b)
		ten := NewTenant(b, s)
		ep := NewEndpoint(b, s, ten.ID)
		fill(b, s, ten.ID, ep, 256*20)
		// Each round claims 256 deliveries; once the lease (one round of the clock) expires they
		// are claimable again, so the table never runs dry.
		now := Base().Add(time.Hour)
		for b.Loop() {
			cs, err := s.ClaimDeliveries(b.Context(), aviso.ClaimParams{Now: now, Limit: 256, Owner: "bench", LeaseUntil: now.Add(time.Millisecond)})
			if err != nil {
				b.Fatalf("claim deliveries: %v", err)
			}
			if len(cs) != 256 {
				b.Fatalf("claimed %d, want 256", len(cs))
			}
			now = now.Add(time.Millisecond)
		}
	})
	b.Run("ClaimBesideBacklog", func(b *testing.B) {
		// As ClaimDeliveries256, beside an endpoint that is left out of the claims (as the
		// dispatcher leaves out one that holds its share of work) with 20,000 deliveries due
		// before all of the others: a claim must not cost that backlog.
		s := open(b)
		ten := NewTenant(b, s)
		dead, ep := NewEndpoint(b, s, ten.ID), NewEndpoint(b, s, ten.ID)
		fillAt(b, s, ten.ID, dead, 20_000, Base().Add(-time.Hour))
		fill(b, s, ten.ID, ep, 256*20)
		now := Base().Add(time.Hour)
		for b.Loop() {
			cs, err := s.ClaimDeliveries(b.Context(), aviso.ClaimParams{Now: now, Limit: 256, Owner: "bench",
				LeaseUntil: now.Add(time.Millisecond), Caps: map[string]int{dead.ID: 0}})
			if err != nil {
				b.Fatalf("claim deliveries: %v", err)
			}
			if len(cs) != 256 || cs[0].Delivery.EndpointID != ep.ID {
				b.Fatalf("claimed %d, want 256 of the endpoint not left out", len(cs))
			}
			now = now.Add(time.Millisecond)
		}
	})
	// The delivery log of one endpoint, of one event, and of the failed deliveries, newest first
	// as the dashboard shows it, in a tenant whose other endpoint has 20,000 newer deliveries:
	// a page must cost what it holds, not the tenant's log.
	for _, by := range []string{"Endpoint", "Event", "Failed"} {
		b.Run("ListDeliveriesOf"+by, func(b *testing.B) {
			s := open(b)
			ten := NewTenant(b, s)
			busy, quiet := NewEndpoint(b, s, ten.ID), NewEndpoint(b, s, ten.ID)
			ev, ds := Publish(b, s, ten.ID, Base().Add(-time.Hour), quiet)
			Claim(b, s, "bench", Base().Add(-time.Hour), 1)
			Complete(b, s, Completion(ds[0], "bench", Base().Add(-time.Hour), 500, true))
			fill(b, s, ten.ID, busy, 20_000)
			p := aviso.ListDeliveriesParams{TenantID: ten.ID, Desc: true}
			switch by {
			case "Endpoint":
				p.EndpointID = quiet.ID
			case "Event":
				p.EventID = ev.ID
			case "Failed":
				p.Status = aviso.StatusFailed
			}
			for b.Loop() {
				page, err := s.ListDeliveries(b.Context(), p)
				if err != nil || len(page.Data) != 1 || page.Data[0].ID != ds[0].ID {
					b.Fatalf("list deliveries: %v, %v", page, err)
				}
			}
		})
	}
	// The event log, newest first, of a tenant with 20,000 older events, beside another tenant
	// with 20,000 newer ones: the whole log, by type and by external reference. A page must cost
	// what it holds, neither the tenant's log nor the other tenant's.
	for _, by := range []string{"All", "Type", "Reference"} {
		b.Run("ListEventsBy"+by, func(b *testing.B) {
			s := open(b)
			ten, busy := NewTenant(b, s), NewTenant(b, s)
			ep := NewEndpoint(b, s, ten.ID)
			fillAt(b, s, ten.ID, ep, 20_000, Base().Add(-2*time.Hour))
			var want []string
			for i := range 60 {
				ne := NewEvent(ten.ID, "invoice.created", Base().Add(-time.Hour+time.Duration(i)*time.Millisecond), ep)
				if i%3 == 0 {
					ne.Event.Type = "invoice.paid"
				}
				ne.Event.ExternalReference = fmt.Sprintf("inv-%d", i%2)
				if _, err := s.InsertEvents(b.Context(), []aviso.NewEvent{ne}); err != nil {
					b.Fatalf("insert event: %v", err)
				}
				want = append(want, ne.Event.ID)
			}
			fill(b, s, busy.ID, NewEndpoint(b, s, busy.ID), 20_000)
			p := aviso.ListEventsParams{TenantID: ten.ID, Desc: true, ListParams: aviso.ListParams{Limit: 10}}
			switch by {
			case "Type":
				p.Type = "invoice.paid"
			case "Reference":
				p.ExternalReference = "inv-1"
			}
			for b.Loop() {
				page, err := s.ListEvents(b.Context(), p)
				if err != nil || len(page.Data) != 10 || !slices.Contains(want, page.Data[0].ID) {
					b.Fatalf("list events: %v, %v", page, err)
				}
			}
		})
	}
	b.Run("CompleteDeliveries256", func(b *testing.B) {
		s := open(b)
		ten := NewTenant(b, s)
		ep := NewEndpoint(b, s, ten.ID)
		fill(b, s, ten.ID, ep, 256*20)
		now := Base().Add(time.Hour)
		for b.Loop() {
			b.StopTimer()
			cs, err := s.ClaimDeliveries(b.Context(), aviso.ClaimParams{Now: now, Limit: 256, Owner: "bench", LeaseUntil: now.Add(time.Minute)})
			if err != nil || len(cs) != 256 {
				b.Fatalf("claim deliveries: %d, %v", len(cs), err)
			}
			comps := make([]aviso.Completion, len(cs))
			for i, c := range cs {
				// Failed attempts keep the deliveries pending, due again a minute later.
				comps[i] = Completion(c.Delivery, "bench", now, 503, false)
			}
			b.StartTimer()
			if _, err := s.CompleteDeliveries(b.Context(), comps); err != nil {
				b.Fatalf("complete deliveries: %v", err)
			}
			now = now.Add(2 * time.Minute)
		}
	})
	// The usual batch: every attempt succeeded. Each round publishes and claims 256 fresh
	// deliveries (untimed), then completes them.
	b.Run("CompleteDeliveries256Succeeded", func(b *testing.B) {
		s := open(b)
		ten := NewTenant(b, s)
		ep := NewEndpoint(b, s, ten.ID)
		at := Base()
		for b.Loop() {
			b.StopTimer()
			batch := make([]aviso.NewEvent, 256)
			for i := range batch {
				at = at.Add(time.Millisecond)
				batch[i] = NewEvent(ten.ID, "invoice.created", at, ep)
			}
			if _, err := s.InsertEvents(b.Context(), batch); err != nil {
				b.Fatalf("insert events: %v", err)
			}
			cs, err := s.ClaimDeliveries(b.Context(), aviso.ClaimParams{Now: at, Limit: 256, Owner: "bench", LeaseUntil: at.Add(time.Minute)})
			if err != nil || len(cs) != 256 {
				b.Fatalf("claim deliveries: %d, %v", len(cs), err)
			}
			comps := make([]aviso.Completion, len(cs))
			for i, c := range cs {
				comps[i] = Completion(c.Delivery, "bench", at, 204, false)
			}
			b.StartTimer()
			if _, err := s.CompleteDeliveries(b.Context(), comps); err != nil {
				b.Fatalf("complete deliveries: %v", err)
			}
		}
	})
}

// fill publishes n events with one delivery each to ep, due at Base.
func fill(tb testing.TB, s aviso.Store, tenantID string, ep *aviso.Endpoint, n int) {
	tb.Helper()
	fillAt(tb, s, tenantID, ep, n, Base())
}

// fillAt is fill with the events published (and the deliveries due) at at.
func fillAt(tb testing.TB, s aviso.Store, tenantID string, ep *aviso.Endpoint, n int, at time.Time) {
	tb.Helper()
	for n > 0 {
		batch := make([]aviso.NewEvent, min(n, 500))
		for i := range batch {
			batch[i] = NewEvent(tenantID, "invoice.created", at, ep)
		}
		if _, err := s.InsertEvents(tb.Context(), batch); err != nil {
			tb.Fatalf("insert events: %v", err)
		}
		n -= len(batch)
	}
}
