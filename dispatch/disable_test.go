package dispatch_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testOutageBurst: the receiver is down for its first 2 seconds while a burst of 1,000 events
// arrives. With the default disable rule (10 failures over at least an hour) the endpoint is
// never disabled, the retries run, and every event arrives once the receiver is back.
func testOutageBurst(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	var (
		mu    sync.Mutex
		first time.Time
		ok    = map[string]bool{}
	)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) < 2*time.Second { // the outage under test
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ok[r.Header.Get("webhook-id")] = true
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(500, 1000, 2000, 4000, 8000) })
	events := publish(t, s, ten.ID, 1000, time.Now(), ep)
	start(t, config(s)) // the default rule

	waitFor(t, "every event to arrive", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ok) == len(events)
	})
	e, err := s.GetEndpoint(t.Context(), ten.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.Disabled {
		t.Fatalf("a 2-second outage disabled the endpoint (%s)", e.DisabledReason)
	}
	if failed := countStatus(t, s, ten.ID, ep.ID, aviso.StatusFailed); failed != 0 {
		t.Errorf("%d deliveries failed", failed)
	}
	if n := len(rc.requests()); n <= len(events) {
		t.Errorf("the receiver got %d requests for %d events: the outage refused none", n, len(events))
	}
}

// testGone: a receiver answering 410 Gone disables its endpoint at once (reason gone): no retry,
// and its other pending deliveries fail as disabling does.
func testGone(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusGone)
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(5, 5, 5) })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	later := publish(t, s, ten.ID, 1, time.Now().Add(time.Hour), ep)[0]
	start(t, config(s))

	var e *aviso.Endpoint
	waitFor(t, "the endpoint to be disabled", func() bool {
		var err error
		if e, err = s.GetEndpoint(t.Context(), ten.ID, ep.ID); err != nil {
			t.Fatal(err)
		}
		return e.Disabled
	})
	if e.DisabledReason != aviso.DisabledGone {
		t.Errorf("disabled reason %q, want %q", e.DisabledReason, aviso.DisabledGone)
	}
	for _, d := range deliveries(t, s, ten.ID, ep.ID) {
		if d.Status != aviso.StatusFailed {
			t.Errorf("delivery of event %s is %s, want failed", d.EventID, d.Status)
		}
		if d.EventID == later.ID && d.AttemptCount != 0 {
			t.Errorf("the later delivery has %d attempts, want 0", d.AttemptCount)
		}
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1: a 410 is not retried", n)
	}
}
