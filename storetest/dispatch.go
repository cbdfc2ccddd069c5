package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func claimedIDs(cs []*aviso.Claim) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Delivery.ID)
	}
	return out
}

// excluding caps the endpoints ids at 0.
func excluding(ids []string) map[string]int {
	caps := make(map[string]int)
	for _, id := range ids {
		caps[id] = 0
	}
	return caps
}

// testClaimExcluding claims with endpoints left out, as the dispatcher does beside a busy
// endpoint: the others' oldest due deliveries, merged in due order across endpoints, none of a
// left-out or disabled endpoint, none leased, none not yet due.
func testClaimExcluding(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	a, b, busy, off := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	// The busy endpoint's backlog is due before everything else.
	for i := range 5 {
		Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Millisecond), busy)
	}
	var want []string // a and b alternate in due order
	for i := range 6 {
		ep := a
		if i%2 == 1 {
			ep = b
		}
		_, ds := Publish(t, s, ten.ID, Base().Add(time.Second+time.Duration(i)*time.Second), ep, off)
		want = append(want, ds[0].ID)
	}
	Publish(t, s, ten.ID, Base().Add(time.Hour), a, b) // not yet due
	if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: off.ID, Disabled: true,
		Reason: aviso.DisabledByUser, Now: Base()}); err != nil {
		t.Fatalf("disable: %v", err)
	}
	now := Base().Add(time.Minute)
	claim := func(owner string, limit int) []string {
		t.Helper()
		cs, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now, Limit: limit, Owner: owner,
			LeaseUntil: now.Add(time.Minute), Caps: map[string]int{busy.ID: 0}})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		for _, c := range cs {
			if c.Endpoint == nil || c.Event == nil || c.Endpoint.ID != c.Delivery.EndpointID {
				t.Fatalf("claim of %s without its endpoint or event", c.Delivery.ID)
			}
		}
		return claimedIDs(cs)
	}
	if got := claim("node-a", 4); !slices.Equal(got, want[:4]) {
		t.Errorf("first claim %v, want the 4 oldest due of the endpoints not left out %v", got, want[:4])
	}
	if got := claim("node-b", 10); !slices.Equal(got, want[4:]) {
		t.Errorf("second claim %v, want the rest, not the leased %v", got, want[4:])
	}
	if got := claim("node-c", 10); len(got) != 0 {
		t.Errorf("third claim %v, want nothing", got)
	}
}

// testClaimCapped claims with an endpoint capped, as the dispatcher does for a paced one: at most
// its cap of its oldest due, the others' as usual, all in due order and within Limit.
func testClaimCapped(t *testing.T, s aviso.Store) {
	ten := NewTenant(t, s)
	paced, other := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	var backlog, rest []string // the paced endpoint's backlog is due before everything else
	for i := range 5 {
		_, ds := Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Millisecond), paced)
		backlog = append(backlog, ds[0].ID)
	}
	for i := range 3 {
		_, ds := Publish(t, s, ten.ID, Base().Add(time.Second+time.Duration(i)*time.Second), other)
		rest = append(rest, ds[0].ID)
	}
	now := Base().Add(time.Minute)
	claim := func(owner string, limit, capped int) []string {
		t.Helper()
		cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: limit, Owner: owner,
			LeaseUntil: now.Add(time.Minute), Caps: map[string]int{paced.ID: capped}})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		return claimedIDs(cs)
	}
	if got, want := claim("node-a", 10, 2), append(backlog[:2:2], rest...); !slices.Equal(got, want) {
		t.Errorf("claim with the paced endpoint capped at 2 got %v, want its 2 oldest and the rest %v", got, want)
	}
	if got := claim("node-b", 1, 7); !slices.Equal(got, backlog[2:3]) {
		t.Errorf("claim with a cap above the limit got %v, want the limit's 1 %v", got, backlog[2:3])
	}
	if got := claim("node-c", 10, 0); len(got) != 0 {
		t.Errorf("claim with the paced endpoint capped at 0 got %v, want nothing (the others are leased)", got)
	}
}

func testClaim(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep, off, excluded := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	// Inserted newest due first: the claim orders by NextAttemptAt, not by insertion.
	var due []*aviso.Delivery
	for i := 4; i >= 0; i-- {
		_, ds := Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Second), ep)
		due = append([]*aviso.Delivery{ds[0]}, due...)
	}
	_, future := Publish(t, s, ten.ID, Base().Add(time.Hour), ep)
	ev, offDs := Publish(t, s, ten.ID, Base(), off, excluded)
	if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: off.ID, Disabled: true,
		Reason: aviso.DisabledByUser, Now: Base()}); err != nil {
		t.Fatalf("disable: %v", err)
	}
	now := Base().Add(10 * time.Second)

	cs, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now, Limit: 3, Owner: "node-a", LeaseUntil: now.Add(time.Minute),
		Caps: map[string]int{excluded.ID: 0}})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if got, want := claimedIDs(cs), []string{due[0].ID, due[1].ID, due[2].ID}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want the 3 oldest due %v", got, want)
	}
	c := cs[0]
	checkDelivery(t, c.Delivery, due[0])
	if c.Event == nil || c.Event.ID != due[0].EventID || c.Event.TenantID != ten.ID || len(c.Event.Data) == 0 {
		t.Errorf("claim's event %+v, want event %s with its data", c.Event, due[0].EventID)
	}
	if c.Endpoint == nil {
		t.Fatalf("claim without its endpoint")
	}
	checkEndpoint(t, c.Endpoint, ep)

	cs = Claim(t, s, "node-b", now, 10)
	want := []string{offDs[1].ID, due[3].ID, due[4].ID}
	if got := claimedIDs(cs); !slices.Equal(got, want) {
		t.Errorf("second claim got %v, want the rest due, oldest first %v (not leased, future, disabled; excluded no more)", got, want)
	}
	for _, c := range cs {
		if c.Delivery.ID == offDs[1].ID && (c.Event.ID != ev.ID || c.Endpoint.ID != excluded.ID) {
			t.Errorf("claim of %s carries event %s and endpoint %s", c.Delivery.ID, c.Event.ID, c.Endpoint.ID)
		}
	}
	if cs := Claim(t, s, "node-c", now, 10); len(cs) != 0 {
		t.Errorf("third claim got %v, want nothing", claimedIDs(cs))
	}
	// An hour later the future delivery is due and every lease above has expired.
	// (due[0] and offDs[1] are due at the same time: their order is free.)
	got := claimedIDs(Claim(t, s, "node-c", Base().Add(time.Hour), 10))
	want = []string{due[0].ID, offDs[1].ID, due[1].ID, due[2].ID, due[3].ID, due[4].ID, future[0].ID}
	if len(got) == len(want) && got[0] == want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if !slices.Equal(got, want) {
		t.Errorf("claim an hour later got %v, want %v", got, want)
	}
	// Claimed deliveries stay pending with their counts: a claim is a lease, not an attempt.
	if d := mustGetDelivery(t, s, ten.ID, due[0].ID); d.Status != aviso.StatusPending || d.AttemptCount != 0 {
		t.Errorf("claimed delivery: status %q, AttemptCount %d; want pending, 0", d.Status, d.AttemptCount)
	}
	if d := mustGetDelivery(t, s, ten.ID, offDs[0].ID); d.Status != aviso.StatusFailed {
		t.Errorf("delivery of a disabled endpoint: status %q, want failed", d.Status)
	}
}

func testClaimLeases(t *testing.T, s aviso.Store) {
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	_, ds := Publish(t, s, ten.ID, Base(), ep)
	now := Base().Add(time.Second)
	lease := now.Add(30 * time.Second)
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 10, Owner: "node-a", LeaseUntil: lease})
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %d claims, %v; want 1", len(cs), err)
	}
	tests := []struct {
		name  string
		owner string
		at    time.Time
		want  int
	}{
		{"valid lease, other owner", "node-b", lease.Add(-time.Millisecond), 0},
		{"valid lease, same owner", "node-a", lease.Add(-time.Millisecond), 0},
		{"expired lease", "node-b", lease.Add(time.Millisecond), 1},
		{"taken over", "node-c", lease.Add(2 * time.Millisecond), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := Claim(t, s, tc.owner, tc.at, 10)
			if len(cs) != tc.want {
				t.Errorf("claimed %v, want %d", claimedIDs(cs), tc.want)
			}
			if tc.want == 1 && cs[0].Delivery.ID != ds[0].ID {
				t.Errorf("claimed %s, want %s", cs[0].Delivery.ID, ds[0].ID)
			}
		})
	}
}

func testClaimConcurrent(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep1, ep2 := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	const events = 100
	var batch []aviso.NewEvent
	for i := range events {
		batch = append(batch, NewEvent(ten.ID, "invoice.created", Base().Add(time.Duration(i)*time.Millisecond), ep1, ep2))
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatalf("insert: %v", err)
	}
	const workers = 8
	var (
		mu     sync.Mutex
		seen   = map[string]string{}
		dups   []string
		wg     sync.WaitGroup
		errs   = make(chan error, workers)
		now    = Base().Add(time.Hour)
		claims int
	)
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("node-%d", w)
			for {
				cs, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now, Limit: 7, Owner: owner, LeaseUntil: now.Add(time.Minute)})
				if err != nil {
					errs <- err
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					if prev, ok := seen[c.Delivery.ID]; ok {
						dups = append(dups, fmt.Sprintf("%s by %s and %s", c.Delivery.ID, prev, owner))
					}
					seen[c.Delivery.ID] = owner
				}
				claims += len(cs)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent claim: %v", err)
	}
	if len(dups) > 0 {
		t.Errorf("deliveries claimed twice: %v", dups)
	}
	if claims != 2*events || len(seen) != 2*events {
		t.Errorf("%d claims of %d deliveries, want each of the %d claimed once", claims, len(seen), 2*events)
	}
}

func testComplete(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	_, ds := Publish(t, s, ten.ID, Base(), ep)
	d := ds[0]

	// Attempt 1: a network error; attempt 2: a 503; attempt 3: a 200.
	var attempts []*aviso.Attempt
	steps := []struct {
		code         int
		wantStatus   aviso.DeliveryStatus
		wantFailures int
	}{
		{0, aviso.StatusPending, 1},
		{503, aviso.StatusPending, 2},
		{200, aviso.StatusSucceeded, 0},
	}
	at := Base()
	for i, step := range steps {
		t.Run(fmt.Sprintf("attempt %d", i+1), func(t *testing.T) {
			cs := Claim(t, s, "node-a", at, 10)
			if len(cs) != 1 || cs[0].Delivery.ID != d.ID {
				t.Fatalf("claimed %v, want %s", claimedIDs(cs), d.ID)
			}
			at = at.Add(time.Second)
			c := Completion(d, "node-a", at, step.code, false)
			attempts = append(attempts, c.Attempt)
			Complete(t, s, c)

			got := mustGetDelivery(t, s, ten.ID, d.ID)
			if got.Status != step.wantStatus || got.AttemptCount != i+1 || got.RoundAttempts != i+1 ||
				got.LastResponseStatus != step.code || got.LastError != c.Attempt.Error {
				t.Errorf("after attempt %d: status %q, AttemptCount %d, RoundAttempts %d, LastResponseStatus %d, LastError %q; want %q, %d, %d, %d, %q",
					i+1, got.Status, got.AttemptCount, got.RoundAttempts, got.LastResponseStatus, got.LastError,
					step.wantStatus, i+1, i+1, step.code, c.Attempt.Error)
			}
			switch {
			case step.wantStatus == aviso.StatusPending && (got.NextAttemptAt == nil || !ms(*got.NextAttemptAt).Equal(ms(*c.NextAttemptAt))):
				t.Errorf("NextAttemptAt %v, want %v", got.NextAttemptAt, *c.NextAttemptAt)
			case step.wantStatus != aviso.StatusPending && got.NextAttemptAt != nil:
				t.Errorf("NextAttemptAt %v for a %s delivery, want nil", *got.NextAttemptAt, got.Status)
			}
			if !ms(got.UpdatedAt).Equal(ms(c.Attempt.At)) {
				t.Errorf("UpdatedAt %v, want the attempt's time %v", got.UpdatedAt, c.Attempt.At)
			}
			if len(got.Attempts) != i+1 {
				t.Fatalf("%d attempts stored, want %d", len(got.Attempts), i+1)
			}
			for j := range got.Attempts {
				checkAttempt(t, &got.Attempts[j], attempts[j])
			}
			if n := mustGetEndpoint(t, s, ten.ID, ep.ID).ConsecutiveFailures; n != step.wantFailures {
				t.Errorf("ConsecutiveFailures %d, want %d", n, step.wantFailures)
			}
			// The lease is released: once due again, any owner can claim at once.
			if step.wantStatus == aviso.StatusPending {
				at = *c.NextAttemptAt
				if cs := Claim(t, s, "node-b", at, 10); len(cs) != 1 {
					t.Fatalf("claim after completion by another owner: %v, want the delivery (lease released)", claimedIDs(cs))
				}
				if err := s.ReleaseDeliveries(ctx, "node-b", []string{d.ID}); err != nil {
					t.Fatalf("release: %v", err)
				}
			}
		})
	}
	if cs := Claim(t, s, "node-a", at.Add(24*time.Hour), 10); len(cs) != 0 {
		t.Errorf("a succeeded delivery was claimed: %v", claimedIDs(cs))
	}

	t.Run("final failure", func(t *testing.T) {
		_, ds := Publish(t, s, ten.ID, Base(), ep)
		Claim(t, s, "node-a", Base(), 10)
		c := Completion(ds[0], "node-a", Base().Add(time.Second), 410, true)
		Complete(t, s, c)
		got := mustGetDelivery(t, s, ten.ID, ds[0].ID)
		if got.Status != aviso.StatusFailed || got.NextAttemptAt != nil || got.AttemptCount != 1 {
			t.Errorf("status %q, NextAttemptAt %v, AttemptCount %d; want failed, nil, 1", got.Status, got.NextAttemptAt, got.AttemptCount)
		}
	})
	t.Run("batch", func(t *testing.T) {
		var ds []*aviso.Delivery
		for i := range 5 {
			_, d := Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Millisecond), ep)
			ds = append(ds, d[0])
		}
		if cs := Claim(t, s, "node-a", Base().Add(time.Hour), 10); len(cs) != len(ds) {
			t.Fatalf("claimed %d, want %d", len(cs), len(ds))
		}
		var cs []aviso.Completion
		for i, d := range ds {
			cs = append(cs, Completion(d, "node-a", Base().Add(time.Hour), []int{200, 500}[i%2], false))
		}
		Complete(t, s, cs...)
		for i, d := range ds {
			got := mustGetDelivery(t, s, ten.ID, d.ID)
			if want := []aviso.DeliveryStatus{aviso.StatusSucceeded, aviso.StatusPending}[i%2]; got.Status != want || len(got.Attempts) != 1 {
				t.Errorf("delivery %d: status %q with %d attempts, want %q with 1", i, got.Status, len(got.Attempts), want)
			}
		}
		// Completions apply in order: 200, 500, 200, 500, 200 ends with a success.
		if n := mustGetEndpoint(t, s, ten.ID, ep.ID).ConsecutiveFailures; n != 0 {
			t.Errorf("ConsecutiveFailures %d after a batch ending in success, want 0", n)
		}
	})
}

func testCompleteAutoDisable(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep, other := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	const disableAfter = 3
	var ds []*aviso.Delivery
	for i := range disableAfter + 2 {
		_, d := Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Millisecond), ep, other)
		ds = append(ds, d[0])
	}
	_, late := Publish(t, s, ten.ID, Base().Add(time.Hour), ep) // pending, not yet due
	now := Base().Add(time.Second)
	Claim(t, s, "node", now, 100)
	for i := range disableAfter {
		c := Completion(ds[i], "node", now, 500, false)
		c.DisableAfter = disableAfter
		Complete(t, s, c)
		e := mustGetEndpoint(t, s, ten.ID, ep.ID)
		if e.ConsecutiveFailures != i+1 {
			t.Errorf("after failure %d: ConsecutiveFailures %d", i+1, e.ConsecutiveFailures)
		}
		if wantOff := i+1 >= disableAfter; e.Disabled != wantOff {
			t.Errorf("after failure %d: Disabled %v, want %v", i+1, e.Disabled, wantOff)
		}
	}
	e := mustGetEndpoint(t, s, ten.ID, ep.ID)
	if !e.Disabled || e.DisabledReason != aviso.DisabledConsecutiveFailed {
		t.Fatalf("endpoint Disabled %v, reason %q; want true, %q", e.Disabled, e.DisabledReason, aviso.DisabledConsecutiveFailed)
	}
	for _, d := range append(ds, late[0]) {
		got := mustGetDelivery(t, s, ten.ID, d.ID)
		if got.Status != aviso.StatusFailed || got.NextAttemptAt != nil {
			t.Errorf("delivery %s of the disabled endpoint: status %q, NextAttemptAt %v; want failed, nil", d.ID, got.Status, got.NextAttemptAt)
		}
	}
	if got := mustGetDelivery(t, s, ten.ID, ds[disableAfter].ID); got.LastError != "endpoint disabled" {
		t.Errorf("a pending delivery failed by the auto-disable has LastError %q, want %q", got.LastError, "endpoint disabled")
	}
	if e := mustGetEndpoint(t, s, ten.ID, other.ID); e.Disabled || e.ConsecutiveFailures != 0 {
		t.Errorf("the other endpoint: Disabled %v, ConsecutiveFailures %d; want untouched", e.Disabled, e.ConsecutiveFailures)
	}
	if next, ok, err := s.NextDueAt(ctx); err != nil || !ok || !ms(next).Equal(ms(Base())) {
		t.Errorf("NextDueAt %v, %v, %v; want the other endpoint's deliveries", next, ok, err)
	}

	t.Run("zero never disables", func(t *testing.T) {
		ep := NewEndpoint(t, s, ten.ID)
		for i := range 5 {
			_, d := Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Millisecond), ep)
			if cs := Claim(t, s, "node", Base().Add(time.Hour), 100); len(cs) == 0 {
				t.Fatalf("nothing claimed")
			}
			Complete(t, s, Completion(d[0], "node", Base().Add(time.Hour), 500, true))
		}
		if e := mustGetEndpoint(t, s, ten.ID, ep.ID); e.Disabled || e.ConsecutiveFailures != 5 {
			t.Errorf("Disabled %v, ConsecutiveFailures %d; want false, 5", e.Disabled, e.ConsecutiveFailures)
		}
	})
}

// testCompleteAfterDisable completes attempts that were in flight when their endpoint was
// disabled: a retry must not bring the delivery back to pending (disabling failed the endpoint's
// pending deliveries), a success stays a success; in one batch and one at a time.
func testCompleteAfterDisable(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	for _, batched := range []bool{true, false} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			ten := NewTenant(t, s)
			ep := NewEndpoint(t, s, ten.ID)
			_, retried := Publish(t, s, ten.ID, Base(), ep)
			_, delivered := Publish(t, s, ten.ID, Base().Add(time.Millisecond), ep)
			if got := Claim(t, s, "node", Base().Add(time.Second), 10); len(got) != 2 {
				t.Fatalf("claimed %d, want 2", len(got))
			}
			if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
				Disabled: true, Reason: aviso.DisabledByUser, Now: Base().Add(time.Second)}); err != nil {
				t.Fatal(err)
			}
			at := Base().Add(2 * time.Second)
			cs := []aviso.Completion{Completion(retried[0], "node", at, 503, false), Completion(delivered[0], "node", at, 200, false)}
			if batched {
				Complete(t, s, cs...)
			} else {
				Complete(t, s, cs[0])
				Complete(t, s, cs[1])
			}
			got := mustGetDelivery(t, s, ten.ID, retried[0].ID)
			if got.Status != aviso.StatusFailed || got.LastError != "endpoint disabled" || got.NextAttemptAt != nil ||
				len(got.Attempts) != 1 || got.AttemptCount != 1 || got.LastResponseStatus != 503 || !got.UpdatedAt.Equal(at) {
				t.Errorf("retry after disable: status %q, LastError %q, NextAttemptAt %v, %d attempts (count %d), last response %d, updated %v; want failed, %q, nil, 1 (1), 503, %v",
					got.Status, got.LastError, got.NextAttemptAt, len(got.Attempts), got.AttemptCount, got.LastResponseStatus,
					got.UpdatedAt, "endpoint disabled", at)
			}
			if len(got.Attempts) == 1 && got.Attempts[0].ResponseStatus != 503 {
				t.Errorf("retry after disable: the attempt's response %d, want its own 503", got.Attempts[0].ResponseStatus)
			}
			if got := mustGetDelivery(t, s, ten.ID, delivered[0].ID); got.Status != aviso.StatusSucceeded || len(got.Attempts) != 1 {
				t.Errorf("success after disable: status %q with %d attempts, want succeeded with 1", got.Status, len(got.Attempts))
			}
			if e := mustGetEndpoint(t, s, ten.ID, ep.ID); !e.Disabled || e.DisabledReason != aviso.DisabledByUser {
				t.Errorf("endpoint Disabled %v, reason %q; want still disabled by the user", e.Disabled, e.DisabledReason)
			}
		})
	}
}

func testCompleteDeleted(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	gone, kept := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	_, ds := Publish(t, s, ten.ID, Base(), gone, kept)
	Claim(t, s, "node", Base(), 10)
	if err := s.DeleteEndpoint(ctx, ten.ID, gone.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// The deleted endpoint's completion is skipped; the other is recorded.
	Complete(t, s, Completion(ds[0], "node", Base(), 200, false), Completion(ds[1], "node", Base(), 200, false))
	if d := mustGetDelivery(t, s, ten.ID, ds[1].ID); d.Status != aviso.StatusSucceeded || len(d.Attempts) != 1 {
		t.Errorf("delivery beside a deleted one: status %q, %d attempts; want succeeded, 1", d.Status, len(d.Attempts))
	}
	_, err := s.GetDelivery(ctx, ten.ID, ds[0].ID)
	wantCode(t, "delivery of the deleted endpoint", err, aviso.ENOTFOUND)
}

func testRetryDelivery(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	_, ds := Publish(t, s, ten.ID, Base(), ep)
	Claim(t, s, "node", Base(), 10)
	Complete(t, s, Completion(ds[0], "node", Base(), 500, false))
	Claim(t, s, "node", Base().Add(time.Minute), 10)
	Complete(t, s, Completion(ds[0], "node", Base().Add(time.Minute), 500, true))

	now := Base().Add(time.Hour)
	got, err := s.RetryDelivery(ctx, ten.ID, ds[0].ID, now)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	check := func(t *testing.T, d *aviso.Delivery) {
		t.Helper()
		if d.Status != aviso.StatusPending || d.NextAttemptAt == nil || !ms(*d.NextAttemptAt).Equal(ms(now)) ||
			d.RoundAttempts != 0 || d.AttemptCount != 2 || !ms(d.UpdatedAt).Equal(ms(now)) {
			t.Errorf("retried delivery: status %q, NextAttemptAt %v, RoundAttempts %d, AttemptCount %d, UpdatedAt %v; want pending, %v, 0, 2, %v",
				d.Status, d.NextAttemptAt, d.RoundAttempts, d.AttemptCount, d.UpdatedAt, now, now)
		}
	}
	check(t, got)
	check(t, mustGetDelivery(t, s, ten.ID, ds[0].ID))
	if cs := Claim(t, s, "node", now, 10); len(cs) != 1 {
		t.Errorf("claim after retry: %v, want the delivery", claimedIDs(cs))
	}
	// Retrying a leased (in-flight) pending delivery queues it now and drops the lease.
	if _, err := s.RetryDelivery(ctx, ten.ID, ds[0].ID, now); err != nil {
		t.Fatalf("retry a leased delivery: %v", err)
	}
	if cs := Claim(t, s, "other", now, 10); len(cs) != 1 {
		t.Errorf("claim after retrying a leased delivery: %v, want the delivery", claimedIDs(cs))
	}
}

func testReplayDeliveries(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep, other := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	// Five deliveries to ep created a minute apart: ok, failed, ok, failed, pending; and one to other.
	var ds []*aviso.Delivery
	for i := range 5 {
		_, d := Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Minute), ep)
		ds = append(ds, d[0])
	}
	_, otherDs := Publish(t, s, ten.ID, Base(), other)
	if cs := Claim(t, s, "node", Base().Add(3*time.Minute), 100); len(cs) != 5 {
		t.Fatalf("claimed %d, want 5", len(cs))
	}
	at := Base().Add(3 * time.Minute)
	Complete(t, s,
		Completion(ds[0], "node", at, 200, false), Completion(ds[1], "node", at, 500, true),
		Completion(ds[2], "node", at, 200, false), Completion(ds[3], "node", at, 500, true),
		Completion(otherDs[0], "node", at, 500, true))
	now := Base().Add(time.Hour)
	tests := []struct {
		name  string
		p     aviso.ReplayParams
		want  int
		queue []int // indexes into ds now pending
	}{
		{"failed since the second", aviso.ReplayParams{Since: Base().Add(2 * time.Minute)}, 1, []int{3, 4}},
		{"failed", aviso.ReplayParams{}, 1, []int{1, 3, 4}},
		{"all", aviso.ReplayParams{All: true}, 2, []int{0, 1, 2, 3, 4}},
		{"nothing left", aviso.ReplayParams{All: true}, 0, []int{0, 1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.TenantID, p.EndpointID, p.Now = ten.ID, ep.ID, now
			n, err := s.ReplayDeliveries(ctx, p)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if n != tc.want {
				t.Errorf("replayed %d, want %d", n, tc.want)
			}
			for i, d := range ds {
				got := mustGetDelivery(t, s, ten.ID, d.ID)
				if slices.Contains(tc.queue, i) != (got.Status == aviso.StatusPending) {
					t.Errorf("delivery %d: status %q, want pending %v", i, got.Status, slices.Contains(tc.queue, i))
				}
				if got.Status == aviso.StatusPending && i != 4 && (got.RoundAttempts != 0 || got.NextAttemptAt == nil || !ms(*got.NextAttemptAt).Equal(ms(now))) {
					t.Errorf("replayed delivery %d: RoundAttempts %d, NextAttemptAt %v; want 0, %v", i, got.RoundAttempts, got.NextAttemptAt, now)
				}
			}
		})
	}
	if got := mustGetDelivery(t, s, ten.ID, otherDs[0].ID); got.Status != aviso.StatusFailed {
		t.Errorf("another endpoint's delivery was replayed: status %q", got.Status)
	}
	_, err := s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: ten.ID, EndpointID: "ep_none", Now: now})
	wantCode(t, "replay an unknown endpoint", err, aviso.ENOTFOUND)
}

func testReleaseDeliveries(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	_, d1 := Publish(t, s, ten.ID, Base(), ep)
	_, d2 := Publish(t, s, ten.ID, Base(), ep)
	_, d3 := Publish(t, s, ten.ID, Base(), ep)
	now := Base().Add(time.Second)
	if cs := Claim(t, s, "node-a", now, 2); len(cs) != 2 {
		t.Fatalf("claimed %d, want 2", len(cs))
	}
	if cs := Claim(t, s, "node-b", now, 2); len(cs) != 1 {
		t.Fatalf("claimed %d, want 1", len(cs))
	}
	// node-b may not release node-a's leases; node-a releases both of its own.
	all := []string{d1[0].ID, d2[0].ID, d3[0].ID}
	if err := s.ReleaseDeliveries(ctx, "node-b", nil); err != nil {
		t.Fatalf("release nothing: %v", err)
	}
	if err := s.ReleaseDeliveries(ctx, "node-c", all); err != nil {
		t.Fatalf("release others' leases: %v", err)
	}
	if cs := Claim(t, s, "node-c", now, 10); len(cs) != 0 {
		t.Errorf("released someone else's leases: claimed %v", claimedIDs(cs))
	}
	if err := s.ReleaseDeliveries(ctx, "node-a", all); err != nil {
		t.Fatalf("release: %v", err)
	}
	if cs := Claim(t, s, "node-c", now, 10); len(cs) != 2 {
		t.Errorf("after release claimed %v, want node-a's 2 deliveries", claimedIDs(cs))
	}
	for _, id := range all {
		if d := mustGetDelivery(t, s, ten.ID, id); d.Status != aviso.StatusPending || d.AttemptCount != 0 {
			t.Errorf("released delivery: status %q, AttemptCount %d; want pending, 0", d.Status, d.AttemptCount)
		}
	}
}

func testNextDueAt(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	if _, ok, err := s.NextDueAt(ctx); err != nil || ok {
		t.Fatalf("NextDueAt of an empty store: %v, %v; want false, nil", ok, err)
	}
	ten := NewTenant(t, s)
	ep, off := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	Publish(t, s, ten.ID, Base().Add(time.Hour), ep)
	_, ds := Publish(t, s, ten.ID, Base().Add(time.Minute), ep)
	check := func(t *testing.T, want time.Time, wantOK bool) {
		t.Helper()
		got, ok, err := s.NextDueAt(ctx)
		if err != nil {
			t.Fatalf("NextDueAt: %v", err)
		}
		if ok != wantOK || (ok && !ms(got).Equal(ms(want))) {
			t.Errorf("NextDueAt %v, %v; want %v, %v", got, ok, want, wantOK)
		}
		if ok {
			checkUTC(t, "NextDueAt", got)
		}
	}
	check(t, Base().Add(time.Minute), true)
	t.Run("disabled endpoints do not count", func(t *testing.T) {
		Publish(t, s, ten.ID, Base(), off)
		if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: off.ID, Disabled: true, Reason: aviso.DisabledByUser, Now: Base()}); err != nil {
			t.Fatalf("disable: %v", err)
		}
		check(t, Base().Add(time.Minute), true)
	})
	t.Run("finished deliveries do not count", func(t *testing.T) {
		Claim(t, s, "node", Base().Add(time.Minute), 10)
		Complete(t, s, Completion(ds[0], "node", Base().Add(time.Minute), 200, false))
		check(t, Base().Add(time.Hour), true)
	})
}

// waitWakeup fails the test unless ch delivers within a generous deadline.
func waitWakeup(tb testing.TB, ch <-chan struct{}, after string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		tb.Errorf("no wakeup within 10s after %s", after)
	}
}

// drain empties ch without waiting, so the next signal is known to come from what follows.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func testWakeups(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ch := s.Wakeups()
	if ch == nil {
		t.Fatalf("Wakeups returned nil")
	}
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	drain(ch)
	_, ds := Publish(t, s, ten.ID, Base(), ep)
	waitWakeup(t, ch, "InsertEvents")

	Claim(t, s, "node", Base(), 10)
	Complete(t, s, Completion(ds[0], "node", Base(), 500, true))
	drain(ch)
	if _, err := s.RetryDelivery(ctx, ten.ID, ds[0].ID, Base()); err != nil {
		t.Fatalf("retry: %v", err)
	}
	waitWakeup(t, ch, "RetryDelivery")

	Claim(t, s, "node", Base(), 10)
	Complete(t, s, Completion(ds[0], "node", Base(), 500, true))
	drain(ch)
	if _, err := s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: ten.ID, EndpointID: ep.ID, Now: Base()}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	waitWakeup(t, ch, "ReplayDeliveries")
	// Signals merge and never block the store: many commits with nobody reading still succeed.
	for range 5 {
		Publish(t, s, ten.ID, Base(), ep)
	}
	waitWakeup(t, ch, "several InsertEvents")
}

// testClaimAfterRemovals: the deliveries of an endpoint deleted, disabled or pruned away take no
// claim's place, however many were due before the others.
func testClaimAfterRemovals(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	const doomedCount, keptCount = 30, 5
	tests := []struct {
		name   string
		remove func(t *testing.T, ten *aviso.Tenant, ep *aviso.Endpoint, at time.Time)
	}{
		// First: Prune deletes the store's oldest events, here the doomed ones only.
		{"events pruned", func(t *testing.T, _ *aviso.Tenant, _ *aviso.Endpoint, at time.Time) {
			if n, err := s.Prune(ctx, at.Add(time.Millisecond), 1000); err != nil || n != doomedCount {
				t.Fatalf("prune: %d, %v; want %d events", n, err, doomedCount)
			}
		}},
		{"endpoint deleted", func(t *testing.T, ten *aviso.Tenant, ep *aviso.Endpoint, _ time.Time) {
			if err := s.DeleteEndpoint(ctx, ten.ID, ep.ID); err != nil {
				t.Fatalf("delete endpoint: %v", err)
			}
		}},
		{"endpoint disabled", func(t *testing.T, ten *aviso.Tenant, ep *aviso.Endpoint, at time.Time) {
			if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
				Disabled: true, Reason: aviso.DisabledByUser, Now: at}); err != nil {
				t.Fatalf("disable: %v", err)
			}
		}},
		{"tenant deleted", func(t *testing.T, ten *aviso.Tenant, _ *aviso.Endpoint, _ time.Time) {
			if err := s.DeleteTenant(ctx, ten.ID); err != nil {
				t.Fatalf("delete tenant: %v", err)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := Base().Add(time.Duration(i) * time.Hour)
			doomedTen, keptTen := NewTenant(t, s), NewTenant(t, s)
			doomed, kept := NewEndpoint(t, s, doomedTen.ID), NewEndpoint(t, s, keptTen.ID)
			for range doomedCount {
				Publish(t, s, doomedTen.ID, at, doomed)
			}
			var want []string
			for range keptCount {
				_, ds := Publish(t, s, keptTen.ID, at.Add(time.Millisecond), kept)
				want = append(want, ds[0].ID)
			}
			tc.remove(t, doomedTen, doomed, at)
			now := at.Add(time.Second)
			cs := Claim(t, s, "node", now, keptCount)
			got := claimedIDs(cs)
			slices.Sort(got)
			slices.Sort(want) // due at the same time: in ID order, not publication order
			if !slices.Equal(got, want) {
				t.Fatalf("one claim of %d got %v, want the other endpoint's %v", keptCount, got, want)
			}
			for _, c := range cs {
				Complete(t, s, Completion(c.Delivery, "node", now, 200, false))
			}
		})
	}
}

// testCompleteUnclaimed: a completion needs no claim. The service's synchronous test send inserts
// a delivery due a minute later (so that no engine claims it first), attempts it at once and
// records the outcome with CompleteDeliveries; the store must record it as for a claimed one.
func testCompleteUnclaimed(t *testing.T, s aviso.Store) {
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	now := Base()
	ne := NewEvent(ten.ID, "invoice.created", now, ep)
	later := now.Add(time.Minute)
	ne.Deliveries[0].NextAttemptAt = &later
	if _, err := s.InsertEvents(t.Context(), []aviso.NewEvent{ne}); err != nil {
		t.Fatalf("insert events: %v", err)
	}
	d := ne.Deliveries[0]
	Complete(t, s, Completion(d, "", now.Add(time.Second), 200, true))
	got := mustGetDelivery(t, s, ten.ID, d.ID)
	if got.Status != aviso.StatusSucceeded || got.AttemptCount != 1 || len(got.Attempts) != 1 || got.LastResponseStatus != 200 {
		t.Errorf("after an unclaimed completion: status %q, %d attempts (%d listed), last status %d; want succeeded, 1, 1, 200",
			got.Status, got.AttemptCount, len(got.Attempts), got.LastResponseStatus)
	}
}

// testCompleteOtherEndpoint completes deliveries with attempts that name an endpoint other than
// the delivery's: another of the tenant's, or none that exists. The delivery's own endpoint is
// authoritative, as it is never changed: the attempt is recorded on the delivery, stored with the
// delivery's endpoint, and counts toward that endpoint's failures; the endpoint it named is left
// alone. Skipping it instead would leave the delivery leased, to be sent again and again.
func testCompleteOtherEndpoint(t *testing.T, s aviso.Store) {
	for _, named := range []string{"another endpoint", "no endpoint"} {
		t.Run(named, func(t *testing.T) {
			ten := NewTenant(t, s)
			own, other := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
			_, beside := Publish(t, s, ten.ID, Base(), own)
			_, due := Publish(t, s, ten.ID, Base().Add(time.Millisecond), own)
			// One scheduled after its publish, as a test send's is.
			ne := NewEvent(ten.ID, "invoice.created", Base().Add(2*time.Millisecond), own)
			later := Base().Add(time.Second)
			ne.Deliveries[0].NextAttemptAt = &later
			if _, err := s.InsertEvents(t.Context(), []aviso.NewEvent{ne}); err != nil {
				t.Fatalf("insert events: %v", err)
			}
			if cs := Claim(t, s, "node", Base().Add(time.Second), 10); len(cs) != 3 {
				t.Fatalf("claimed %v, want 3", claimedIDs(cs))
			}
			at := Base().Add(2 * time.Second)
			cs := []aviso.Completion{Completion(beside[0], "node", at, 200, false)}
			for _, d := range []*aviso.Delivery{due[0], ne.Deliveries[0]} {
				c := Completion(d, "node", at, 503, false)
				c.Attempt.EndpointID = map[string]string{"another endpoint": other.ID, "no endpoint": "ep_nobody"}[named]
				cs = append(cs, c)
			}
			Complete(t, s, cs...)
			for _, d := range []*aviso.Delivery{due[0], ne.Deliveries[0]} {
				got := mustGetDelivery(t, s, ten.ID, d.ID)
				if got.Status != aviso.StatusPending || got.AttemptCount != 1 || got.LastResponseStatus != 503 || len(got.Attempts) != 1 {
					t.Errorf("delivery %s: status %q, AttemptCount %d, last response %d, %d attempts; want pending, 1, 503, 1",
						d.ID, got.Status, got.AttemptCount, got.LastResponseStatus, len(got.Attempts))
				}
				if len(got.Attempts) == 1 && got.Attempts[0].EndpointID != own.ID {
					t.Errorf("delivery %s: the attempt is stored with endpoint %s, want the delivery's %s", d.ID,
						got.Attempts[0].EndpointID, own.ID)
				}
			}
			if got := mustGetDelivery(t, s, ten.ID, beside[0].ID); got.Status != aviso.StatusSucceeded {
				t.Errorf("the delivery completed beside them: status %q, want succeeded", got.Status)
			}
			if e := mustGetEndpoint(t, s, ten.ID, own.ID); e.ConsecutiveFailures != 2 || e.FailingSince == nil {
				t.Errorf("the deliveries' endpoint: ConsecutiveFailures %d, FailingSince %v; want 2, set", e.ConsecutiveFailures, e.FailingSince)
			}
			if e := mustGetEndpoint(t, s, ten.ID, other.ID); e.ConsecutiveFailures != 0 || e.FailingSince != nil {
				t.Errorf("the endpoint the attempts named: ConsecutiveFailures %d, FailingSince %v; want 0, nil", e.ConsecutiveFailures, e.FailingSince)
			}
		})
	}
}
