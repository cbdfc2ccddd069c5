package dispatch_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
)

// TestRateLimit runs the rate limit's tests on both stores, through real receivers. Their bounds
// are lower bounds only: a limit says how fast an endpoint may be sent to, never how fast it is.
func TestRateLimit(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"holds the limit", testRateLimitHolds},
		{"two engines share one limit", testRateLimitShared},
		{"a 429 slows a limited endpoint, which recovers", testSlowedLimited},
		{"a 429 slows an endpoint without a limit, which recovers", testSlowedUnlimited},
		{"a Retry-After holds the endpoint", testRetryAfterHolds},
		{"an unlimited neighbour is not held", testUnlimitedNeighbour},
		{"a limited backlog is claimed as it is sent", testLimitedBacklogClaimed},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.run(t, b)
				})
			}
		})
	}
}

// clock records when a receiver got each request.
type clock struct {
	mu sync.Mutex
	at []time.Time
}

func (c *clock) note() {
	c.mu.Lock()
	c.at = append(c.at, time.Now())
	c.mu.Unlock()
}

func (c *clock) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.at)
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// paceSlack bounds how far ahead of its share a limited endpoint may get: the burst credit after a
// quiet spell, at most the rate's worth of 50 ms (dispatch's paceBurstSpan), with room.
const paceSlack = 100 * time.Millisecond

// checkPaced fails unless the i-th request (0-based, in arrival order) arrived at least
// i/rate - paceSlack after t0, a moment before any was sent: what a limit of rate per second
// allows, however the sends are spread over nodes.
func checkPaced(t *testing.T, arrivals []time.Time, t0 time.Time, rate int) {
	t.Helper()
	if len(arrivals) > 0 {
		t.Logf("%d requests in %s (a limit of %d/s allows them in no less than %s)", len(arrivals),
			arrivals[len(arrivals)-1].Sub(t0), rate, time.Duration(len(arrivals)-1)*time.Second/time.Duration(rate)-paceSlack)
	}
	for i, at := range arrivals {
		if min := time.Duration(i)*time.Second/time.Duration(rate) - paceSlack; at.Sub(t0) < min {
			t.Fatalf("request %d arrived %s after the start, before the %s a limit of %d/s allows",
				i+1, at.Sub(t0), min, rate)
		}
	}
}

// testRateLimitHolds: 40 deliveries to an endpoint limited to 20/s arrive no faster than that.
func testRateLimitHolds(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	var c clock
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { c.note() })
	const n, rate = 40, 20
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RateLimit = rate })
	t0 := time.Now()
	publish(t, s, ten.ID, n, time.Now(), ep)
	start(t, config(s))
	waitFor(t, "every delivery to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == n
	})
	arrivals := c.times()
	if len(arrivals) != n {
		t.Fatalf("the receiver got %d requests, want %d", len(arrivals), n)
	}
	checkPaced(t, arrivals, t0, rate)
}

// testRateLimitShared: two engines (on PostgreSQL each with a Store of its own on one database;
// on SQLite, which belongs to one process, on one Store) deliver to an endpoint limited to 20/s,
// and together they stay within it.
func testRateLimitShared(t *testing.T, b backend) {
	key := b.newKey(t)
	s1 := b.open(t, key)
	s2 := s1
	if b.name == "postgres" {
		s2 = b.open(t, key)
	}
	ten := newTenant(t, s1)
	var c clock
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { c.note() })
	const n, rate = 60, 20
	ep := newEndpoint(t, s1, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RateLimit = rate })
	engines := make([]*running, 2)
	t0 := time.Now()
	for i, s := range []aviso.Store{s1, s2} {
		cfg := config(s)
		cfg.ClaimBatch = 4 // small claims, so that both engines take part
		cfg.NodeID = []string{"node-a", "node-b"}[i]
		engines[i] = start(t, cfg)
	}
	publish(t, s1, ten.ID, n, time.Now(), ep)
	waitFor(t, "every delivery to succeed", func() bool {
		return countStatus(t, s1, ten.ID, ep.ID, aviso.StatusSucceeded) == n
	})
	for i, e := range engines {
		if e.d.Stats().Attempts == 0 {
			t.Fatalf("engine %d made no attempt: the test shows no sharing", i)
		}
	}
	arrivals := c.times()
	if len(arrivals) != n {
		t.Fatalf("the receiver got %d requests, want %d", len(arrivals), n)
	}
	checkPaced(t, arrivals, t0, rate)
}

// trickle publishes an event to ep every 20 ms until the test ends or stop is called, so that
// an endpoint keeps being sent to.
func trickle(t *testing.T, s aviso.Store, tenantID string, ep *aviso.Endpoint) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	stop = func() { once.Do(func() { close(done) }); wg.Wait() }
	t.Cleanup(stop) // before the engine stops and the store closes
	ctx := t.Context()
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				now := time.Now().UTC()
				ev := &aviso.Event{ID: aviso.NewID(aviso.PrefixEvent, now), TenantID: tenantID, Type: "invoice.created",
					Data: []byte(`{}`), CreatedAt: now}
				d := &aviso.Delivery{ID: aviso.NewID(aviso.PrefixDelivery, now), TenantID: tenantID, EventID: ev.ID,
					EndpointID: ep.ID, EventType: ev.Type, Status: aviso.StatusPending, NextAttemptAt: &now,
					CreatedAt: now, UpdatedAt: now}
				if _, err := s.InsertEvents(ctx, []aviso.NewEvent{{Event: ev, Deliveries: []*aviso.Delivery{d}}}); err != nil && ctx.Err() == nil {
					t.Errorf("insert event: %v", err)
					return
				}
			}
		}
	})
	return stop
}

// checkSlowedThenRecovers waits for the engine to report ep slowed by a 429, at most half its
// ceiling, and then recovered, while events keep coming.
func checkSlowedThenRecovers(t *testing.T, d *dispatch.Dispatcher, ep *aviso.Endpoint) {
	t.Helper()
	var slowed dispatch.Pacing
	waitFor(t, "the endpoint to be slowed", func() bool {
		p, ok := d.Slowed(ep.ID)
		slowed = p
		return ok
	})
	if slowed.Status != http.StatusTooManyRequests || slowed.Limit != ep.RateLimit || slowed.Since.IsZero() {
		t.Errorf("slowed %+v, want status 429, limit %d and a start", slowed, ep.RateLimit)
	}
	if ep.RateLimit > 0 && slowed.Rate > float64(ep.RateLimit)/2 {
		t.Errorf("slowed to %.1f/s, want at most half the %d/s limit", slowed.Rate, ep.RateLimit)
	}
	waitFor(t, "the endpoint to recover", func() bool {
		_, ok := d.Slowed(ep.ID)
		return !ok
	})
}

// testSlowedLimited: the receiver answers its first request 429, then 2xx; the endpoint (limited
// to 50/s) is slowed to at most 25/s and climbs back to its limit.
func testSlowedLimited(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RateLimit = 50; e.RetrySchedule = ms(10) })
	publish(t, s, ten.ID, 20, time.Now(), ep)
	cfg := config(s)
	cfg.PerEndpoint = 1 // one attempt at a time: one 429, one decrease
	r := start(t, cfg)
	trickle(t, s, ten.ID, ep)
	checkSlowedThenRecovers(t, r.d, ep)
}

// testSlowedUnlimited: an endpoint without a limit is slowed by a 429 too, from the rate it was
// being sent at, and is no longer paced once it has recovered.
func testSlowedUnlimited(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(10) })
	publish(t, s, ten.ID, 5, time.Now(), ep)
	cfg := config(s)
	cfg.PerEndpoint = 1
	r := start(t, cfg)
	trickle(t, s, ten.ID, ep)
	checkSlowedThenRecovers(t, r.d, ep)
}

// testRetryAfterHolds: a 429 with Retry-After: 1 holds every send to the endpoint for a second,
// not only the retry of the delivery it answered.
func testRetryAfterHolds(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	var c clock
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		c.note()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RateLimit = 100 })
	const n = 5
	publish(t, s, ten.ID, n, time.Now(), ep)
	cfg := config(s)
	cfg.PerEndpoint = 1 // no other attempt is under way when the 429 comes
	start(t, cfg)
	waitFor(t, "every delivery to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == n
	})
	at := c.times()
	if len(at) != n+1 {
		t.Fatalf("the receiver got %d requests, want %d (one 429, then one each)", len(at), n+1)
	}
	if gap := at[1].Sub(at[0]); gap < time.Second {
		t.Fatalf("the request after a 429 with Retry-After: 1 came %s after it", gap)
	}
}

// testUnlimitedNeighbour: an endpoint limited to 1/s with 30 deliveries waiting holds up nothing
// of its unlimited neighbour, whose 50 deliveries all succeed while the limited one is still at it
// (its 30 take at least 29 seconds, past the test's wait).
func testUnlimitedNeighbour(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	slow := newReceiver(t, nil)
	fast := newReceiver(t, nil)
	limited := newEndpoint(t, s, ten.ID, slow.srv.URL, func(e *aviso.Endpoint) { e.RateLimit = 1 })
	free := newEndpoint(t, s, ten.ID, fast.srv.URL, nil)
	publish(t, s, ten.ID, 30, time.Now(), limited)
	publish(t, s, ten.ID, 50, time.Now(), free)
	start(t, config(s))
	waitFor(t, "every delivery to the unlimited endpoint to succeed", func() bool {
		return countStatus(t, s, ten.ID, free.ID, aviso.StatusSucceeded) == 50
	})
	if got := len(slow.requests()); got >= 30 {
		t.Fatalf("the endpoint limited to 1/s got all its %d requests meanwhile", got)
	}
}

// testLimitedBacklogClaimed: an endpoint limited to 10/s with 40 deliveries waiting is claimed no
// more than its send slots leave room for. Its first claim, before the engine knows the endpoint
// is limited, takes the whole backlog and gives back what it cannot send soon; after that each
// claim caps it (aviso.ClaimParams.Caps), so no delivery is given back twice and the claims given
// back in all stay below the backlog. Without the cap, each claim it takes part in would return
// its whole remaining backlog (the oldest due) and give most of it back.
func testLimitedBacklogClaimed(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, nil)
	const n, rate = 40, 10
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RateLimit = rate })
	publish(t, s, ten.ID, n, time.Now(), ep)
	r := start(t, config(s))
	waitFor(t, "every delivery to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == n
	})
	if st := r.d.Stats(); st.Released >= n || st.Attempts != n {
		t.Fatalf("%d claims given back and %d attempts for a backlog of %d, want fewer than %d and %d", st.Released, st.Attempts, n, n, n)
	}
}
