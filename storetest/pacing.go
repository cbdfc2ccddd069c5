package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testReserveSends: an endpoint's RateLimit is stored and updated; ReserveSends hands out slots
// by aviso.ReserveSlots from one pacing state per endpoint (burst credit after a quiet spell, the
// horizon, a NotBefore that holds for later reservations), grants nothing to an endpoint that does
// not exist, keeps endpoints apart within one call, and never hands out one slot twice, even to
// reservations made at once.
func testReserveSends(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	if got := mustGetEndpoint(t, s, ten.ID, ep.ID).RateLimit; got != 0 {
		t.Fatalf("a new endpoint's RateLimit %d, want 0", got)
	}
	ep.RateLimit = 50
	ep.UpdatedAt = Base().Add(time.Minute)
	if err := s.UpdateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if got := mustGetEndpoint(t, s, ten.ID, ep.ID).RateLimit; got != 50 {
		t.Fatalf("RateLimit %d after update, want 50", got)
	}

	now := Base()
	at := func(d time.Duration) time.Time { return now.Add(d).UTC() }
	reserve := func(rs ...aviso.SendReservation) []aviso.SendGrant {
		t.Helper()
		gs, err := s.ReserveSends(ctx, rs)
		if err != nil {
			t.Fatalf("reserve sends: %v", err)
		}
		if len(gs) != len(rs) {
			t.Fatalf("%d grants for %d reservations", len(gs), len(rs))
		}
		return gs
	}
	check := func(what string, g aviso.SendGrant, first time.Time, count int, next time.Time) {
		t.Helper()
		if count > 0 && !g.First.Equal(first) || g.Count != count || !g.Next.Equal(next) {
			t.Errorf("%s: grant first %s count %d next %s, want %s %d %s", what,
				g.First.Format(time.RFC3339Nano), g.Count, g.Next.Format(time.RFC3339Nano),
				first.Format(time.RFC3339Nano), count, next.Format(time.RFC3339Nano))
		}
		if count > 0 {
			checkUTC(t, what+" first", g.First)
		}
	}
	r := func(id string, now time.Time, count int) aviso.SendReservation {
		return aviso.SendReservation{EndpointID: id, Now: now, Interval: 100 * time.Millisecond, Burst: 3,
			Count: count, Horizon: time.Second}
	}

	// Quiet so far: two slots of burst credit before now, then one each 100 ms up to the horizon.
	check("first", reserve(r(ep.ID, now, 10))[0], at(-200*time.Millisecond), 10, at(800*time.Millisecond))
	check("up to the horizon", reserve(r(ep.ID, now, 10))[0], at(800*time.Millisecond), 3, at(1100*time.Millisecond))
	check("beyond the horizon", reserve(r(ep.ID, now, 5))[0], time.Time{}, 0, at(1100*time.Millisecond))
	// After a quiet spell the credit is the burst's again, never more.
	check("after a quiet spell", reserve(r(ep.ID, at(5*time.Second), 1))[0], at(4800*time.Millisecond), 1, at(4900*time.Millisecond))
	// A NotBefore holds for the reservations that follow, without it.
	paused := r(ep.ID, at(5*time.Second), 2)
	paused.NotBefore = at(7 * time.Second)
	check("paused", reserve(paused)[0], time.Time{}, 0, at(7*time.Second))
	check("after a pause", reserve(r(ep.ID, at(5*time.Second), 2))[0], time.Time{}, 0, at(7*time.Second))
	check("the pause over", reserve(r(ep.ID, at(6500*time.Millisecond), 2))[0], at(7*time.Second), 2, at(7200*time.Millisecond))

	// Two endpoints in one call are paced apart; an unknown or deleted one gets nothing.
	other := NewEndpoint(t, s, ten.ID)
	gone := NewEndpoint(t, s, ten.ID)
	if err := s.DeleteEndpoint(ctx, ten.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	gs := reserve(r(other.ID, now, 1), r("ep_unknown", now, 1), r(ep.ID, at(7200*time.Millisecond), 1), r(gone.ID, now, 1),
		r(other.ID, now, 1))
	check("other", gs[0], at(-200*time.Millisecond), 1, at(-100*time.Millisecond))
	check("unknown", gs[1], time.Time{}, 0, time.Time{})
	check("ep beside other", gs[2], at(7200*time.Millisecond), 1, at(7300*time.Millisecond))
	check("deleted", gs[3], time.Time{}, 0, time.Time{})
	check("other again in the same call", gs[4], at(-100*time.Millisecond), 1, at(0))

	// An endpoint deleted while its sends are reserved gets nothing, or its slots: never an error.
	for range 20 {
		doomed := NewEndpoint(t, s, ten.ID)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := s.DeleteEndpoint(ctx, ten.ID, doomed.ID); err != nil {
				t.Errorf("delete: %v", err)
			}
		})
		for range 3 {
			if _, err := s.ReserveSends(ctx, []aviso.SendReservation{r(doomed.ID, now, 1)}); err != nil {
				t.Errorf("reserve sends while the endpoint is deleted: %v", err)
			}
		}
		wg.Wait()
	}

	// Reservations made at once each get slots of their own, 10 ms apart.
	busy := NewEndpoint(t, s, ten.ID)
	var mu sync.Mutex
	var slots []time.Time
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				gs, err := s.ReserveSends(ctx, []aviso.SendReservation{{EndpointID: busy.ID, Now: now,
					Interval: 10 * time.Millisecond, Burst: 1, Count: 2, Horizon: time.Minute}})
				if err != nil {
					t.Errorf("reserve sends at once: %v", err)
					return
				}
				mu.Lock()
				for i := range gs[0].Count {
					slots = append(slots, gs[0].First.Add(time.Duration(i)*10*time.Millisecond))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(slots, time.Time.Compare)
	if len(slots) != 80 {
		t.Fatalf("%d slots handed out at once, want 80", len(slots))
	}
	for i, sl := range slots {
		if want := at(time.Duration(i) * 10 * time.Millisecond); !sl.Equal(want) {
			t.Fatalf("slot %d at %s, want %s: slots overlap or leave gaps", i, sl.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
}
