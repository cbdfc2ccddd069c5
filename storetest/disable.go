package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testDisableRule: consecutive failures disable an endpoint only once they span DisableMinSpan
// (FailingSince is the first failure of the run, cleared by a success and by enabling); a
// completion with Disable set disables at once with its reason; CompleteDeliveries returns the
// endpoints it disabled; an endpoint's DisableAfter rule and Filter are stored and updated. One completion at
// a time and in one batch (the stores' fast and general paths).
func testDisableRule(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	complete := func(t *testing.T, cs ...aviso.Completion) []string {
		t.Helper()
		off, err := s.CompleteDeliveries(ctx, cs)
		if err != nil {
			t.Fatalf("complete deliveries: %v", err)
		}
		return off
	}
	// fails returns n pending deliveries of ep, claimed, and their failed completions at the given
	// offsets from Base(), each following the rule.
	fails := func(t *testing.T, ep *aviso.Endpoint, rule aviso.DisablePolicy, offsets ...time.Duration) []aviso.Completion {
		t.Helper()
		var cs []aviso.Completion
		for i, off := range offsets {
			_, d := Publish(t, s, ten.ID, Base().Add(time.Duration(i)*time.Millisecond), ep)
			c := Completion(d[0], "node", Base().Add(off), 503, false)
			c.DisableAfter, c.DisableMinSpan = rule.Failures, time.Duration(rule.MinSpan)
			cs = append(cs, c)
		}
		Claim(t, s, "node", Base().Add(time.Second), 100)
		return cs
	}
	rule := aviso.DisablePolicy{Failures: 3, MinSpan: aviso.Duration(time.Hour)}

	for _, batched := range []bool{false, true} {
		name := "one at a time"
		if batched {
			name = "batched"
		}
		t.Run(name, func(t *testing.T) {
			ep := NewEndpoint(t, s, ten.ID)
			// Five failures within a minute: the count passes 3, the span is not an hour.
			cs := fails(t, ep, rule, time.Second, 2*time.Second, 10*time.Second, 30*time.Second, time.Minute)
			var off []string
			if batched {
				off = complete(t, cs...)
			} else {
				for _, c := range cs {
					off = append(off, complete(t, c)...)
				}
			}
			e := mustGetEndpoint(t, s, ten.ID, ep.ID)
			if len(off) != 0 || e.Disabled || e.ConsecutiveFailures != 5 {
				t.Fatalf("five failures within a minute: disabled %v (returned %v), ConsecutiveFailures %d; want enabled, 5",
					e.Disabled, off, e.ConsecutiveFailures)
			}
			if e.FailingSince == nil || !ms(*e.FailingSince).Equal(ms(Base().Add(time.Second))) {
				t.Fatalf("FailingSince %v, want the first failure's time %v", e.FailingSince, Base().Add(time.Second))
			}
			// The run is an hour old at the next failure: disabled, and said so.
			late := fails(t, ep, rule, time.Hour+time.Second)
			if off := complete(t, late...); !slices.Equal(off, []string{ep.ID}) {
				t.Fatalf("CompleteDeliveries returned %v, want [%s]", off, ep.ID)
			}
			e = mustGetEndpoint(t, s, ten.ID, ep.ID)
			if !e.Disabled || e.DisabledReason != aviso.DisabledConsecutiveFailed {
				t.Fatalf("after an hour of failures: Disabled %v, reason %q", e.Disabled, e.DisabledReason)
			}
			// Enabling clears the run.
			e, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID, Now: Base().Add(2 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if e.ConsecutiveFailures != 0 || e.FailingSince != nil {
				t.Errorf("enabled: ConsecutiveFailures %d, FailingSince %v; want 0, nil", e.ConsecutiveFailures, e.FailingSince)
			}
		})
	}

	t.Run("a success ends the run", func(t *testing.T) {
		ep := NewEndpoint(t, s, ten.ID)
		cs := fails(t, ep, rule, time.Second, 2*time.Second)
		_, ok := Publish(t, s, ten.ID, Base().Add(time.Hour), ep)
		Claim(t, s, "node", Base().Add(2*time.Hour), 100)
		cs = append(cs, Completion(ok[0], "node", Base().Add(3*time.Second), 200, false))
		complete(t, cs...)
		if e := mustGetEndpoint(t, s, ten.ID, ep.ID); e.ConsecutiveFailures != 0 || e.FailingSince != nil {
			t.Fatalf("after a success: ConsecutiveFailures %d, FailingSince %v; want 0, nil", e.ConsecutiveFailures, e.FailingSince)
		}
		// A new run starts at its own first failure: three failures an hour after the old run's
		// start but a minute after the new one's do not disable.
		again := fails(t, ep, rule, time.Hour, time.Hour+30*time.Second, time.Hour+time.Minute)
		if off := complete(t, again...); len(off) != 0 {
			t.Fatalf("a new run of a minute disabled the endpoint: %v", off)
		}
		if e := mustGetEndpoint(t, s, ten.ID, ep.ID); e.Disabled || e.FailingSince == nil || !ms(*e.FailingSince).Equal(ms(Base().Add(time.Hour))) {
			t.Errorf("Disabled %v, FailingSince %v; want enabled since %v", e.Disabled, e.FailingSince, Base().Add(time.Hour))
		}
	})

	t.Run("no minimum span", func(t *testing.T) {
		ep := NewEndpoint(t, s, ten.ID)
		cs := fails(t, ep, aviso.DisablePolicy{Failures: 3}, time.Second, time.Second, time.Second)
		if off := complete(t, cs...); !slices.Equal(off, []string{ep.ID}) {
			t.Fatalf("three failures with no minimum span: returned %v, want [%s]", off, ep.ID)
		}
	})

	t.Run("gone", func(t *testing.T) {
		ep := NewEndpoint(t, s, ten.ID)
		_, pending := Publish(t, s, ten.ID, Base().Add(time.Hour), ep) // not yet due
		cs := fails(t, ep, rule, time.Second)
		cs[0].Status, cs[0].NextAttemptAt, cs[0].Disable = aviso.StatusFailed, nil, aviso.DisabledGone
		cs[0].Attempt.ResponseStatus = 410
		if off := complete(t, cs...); !slices.Equal(off, []string{ep.ID}) {
			t.Fatalf("a 410: returned %v, want [%s]", off, ep.ID)
		}
		e := mustGetEndpoint(t, s, ten.ID, ep.ID)
		if !e.Disabled || e.DisabledReason != aviso.DisabledGone {
			t.Fatalf("after a 410: Disabled %v, reason %q; want true, %q", e.Disabled, e.DisabledReason, aviso.DisabledGone)
		}
		if d := mustGetDelivery(t, s, ten.ID, pending[0].ID); d.Status != aviso.StatusFailed || d.LastError != "endpoint disabled" {
			t.Errorf("the endpoint's pending delivery: %s %q; want failed, endpoint disabled", d.Status, d.LastError)
		}
	})

	t.Run("rule stored", func(t *testing.T) {
		ep := NewEndpoint(t, s, ten.ID)
		if got := mustGetEndpoint(t, s, ten.ID, ep.ID); got.DisableAfter != nil {
			t.Fatalf("a new endpoint's DisableAfter %+v, want nil", got.DisableAfter)
		}
		ep.DisableAfter = &aviso.DisablePolicy{Failures: 20, MinSpan: aviso.Duration(48 * time.Hour)}
		ep.Filter = `data.total > 1000 && external_reference startsWith "FAC-A"`
		ep.UpdatedAt = Base().Add(time.Minute)
		if err := s.UpdateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		got := mustGetEndpoint(t, s, ten.ID, ep.ID)
		if got.DisableAfter == nil || *got.DisableAfter != *ep.DisableAfter {
			t.Fatalf("DisableAfter %+v after update, want %+v", got.DisableAfter, ep.DisableAfter)
		}
		if got.Filter != ep.Filter {
			t.Fatalf("Filter %q after update, want %q", got.Filter, ep.Filter)
		}
		ep.DisableAfter = nil
		if err := s.UpdateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if got := mustGetEndpoint(t, s, ten.ID, ep.ID).DisableAfter; got != nil {
			t.Fatalf("DisableAfter %+v after clearing, want nil", got)
		}
	})
}
