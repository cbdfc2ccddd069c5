package dispatch_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/webhook"
)

// TestEngine runs every engine test on every real store.
func TestEngine(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"delivers signed standard webhooks", testDelivers},
		{"retries then fails", testRetriesThenFails},
		{"retries then succeeds", testRetriesThenSucceeds},
		{"honours Retry-After", testRetryAfter},
		{"does not follow redirects", testRedirect},
		{"records timeouts", testTimeout},
		{"disables after consecutive failures", testAutoDisable},
		{"a short outage does not disable", testOutageBurst},
		{"410 Gone disables at once", testGone},
		{"orders the events of one reference", testOrdering},
		{"isolates a dead endpoint", testIsolation},
		{"drops the queue of an endpoint deleted or disabled", testDropsQueueOfGoneEndpoint},
		{"caps attempts per endpoint", testPerEndpointCap},
		{"resumes after a restart", testRestart},
		{"recovers a crashed node's leases", testCrashRecovery},
		{"drains on shutdown", testGracefulShutdown},
		{"refuses private addresses", testSSRF},
		{"waits for a store that cannot write", testStorageFailure},
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

// config is the dispatcher configuration the tests start from: private networks allowed (the
// receivers are on 127.0.0.1), no jitter, quick idle wake-ups.
func config(s aviso.Store) dispatch.Config {
	return dispatch.Config{Store: s, AllowPrivateNetworks: true, Rand: func() float64 { return 0.5 },
		IdleWait: 50 * time.Millisecond}
}

func ms(ds ...int) []aviso.Duration {
	var out []aviso.Duration
	for _, d := range ds {
		out = append(out, aviso.Duration(time.Duration(d)*time.Millisecond))
	}
	return out
}

func getDelivery(tb testing.TB, s aviso.Store, tenantID, id string) *aviso.Delivery {
	tb.Helper()
	d, err := s.GetDelivery(tb.Context(), tenantID, id)
	if err != nil {
		tb.Fatalf("get delivery: %v", err)
	}
	return d
}

func testDelivers(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, nil)
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL+"/hooks", func(e *aviso.Endpoint) {
		e.Headers = map[string]string{"X-Custom": "yes"}
	})
	before := time.Now().Unix()
	events := publish(t, s, ten.ID, 5, time.Now(), ep)
	start(t, config(s))

	waitFor(t, "5 deliveries to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 5
	})
	after := time.Now().Unix()

	got := rc.requests()
	if len(got) != 5 {
		t.Fatalf("receiver got %d requests, want 5", len(got))
	}
	wantIDs := map[string]bool{}
	for _, ev := range events {
		wantIDs[ev.ID] = true
	}
	v := webhook.Verifier{Secrets: []string{testSecret}}
	for _, r := range got {
		for k, want := range map[string]string{"Content-Type": "application/json",
			"User-Agent": aviso.UserAgent, "X-Custom": "yes"} {
			if g := r.header.Get(k); g != want {
				t.Errorf("%s = %q, want %q", k, g, want)
			}
		}
		id := r.header.Get("Webhook-Id")
		if !wantIDs[id] {
			t.Errorf("webhook-id %q is not one of the published events", id)
		}
		delete(wantIDs, id)
		ts, err := strconv.ParseInt(r.header.Get("Webhook-Timestamp"), 10, 64)
		if err != nil || ts < before || ts > after {
			t.Errorf("webhook-timestamp %q not unix seconds in [%d, %d]", r.header.Get("Webhook-Timestamp"), before, after)
		}
		if err := v.Verify(r.header, r.body); err != nil {
			t.Errorf("signature does not verify: %v", err)
		}
		sig, err := webhook.Sign([]string{testSecret}, id, ts, r.body)
		if err != nil || r.header.Get("Webhook-Signature") != sig {
			t.Errorf("webhook-signature = %q, want %q (%v)", r.header.Get("Webhook-Signature"), sig, err)
		}
	}

	ds := deliveries(t, s, ten.ID, ep.ID)
	d := getDelivery(t, s, ten.ID, ds[0].ID)
	if d.AttemptCount != 1 || len(d.Attempts) != 1 {
		t.Fatalf("delivery has %d attempts (count %d), want 1", len(d.Attempts), d.AttemptCount)
	}
	a := d.Attempts[0]
	if a.ResponseStatus != 200 || a.ResponseBody != "ok" || a.Error != "" {
		t.Errorf("attempt = status %d body %q error %q, want 200 \"ok\" no error", a.ResponseStatus, a.ResponseBody, a.Error)
	}
	if a.RequestHeaders["Webhook-Id"] != d.EventID || a.RequestHeaders["Webhook-Signature"] == "" {
		t.Errorf("attempt request headers = %v, want webhook-id %s and a signature", a.RequestHeaders, d.EventID)
	}
	if a.URL != ep.URL {
		t.Errorf("attempt URL = %q, want %q", a.URL, ep.URL)
	}
}

func testRetriesThenFails(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(10, 20) })
	ev := publish(t, s, ten.ID, 1, time.Now(), ep)[0]
	start(t, config(s))

	waitFor(t, "the delivery to fail", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusFailed) == 1
	})
	d := getDelivery(t, s, ten.ID, deliveries(t, s, ten.ID, ep.ID)[0].ID)
	if d.AttemptCount != 3 || len(d.Attempts) != 3 {
		t.Fatalf("attempts = %d (count %d), want 3: one try and two retries", len(d.Attempts), d.AttemptCount)
	}
	for i, a := range d.Attempts {
		if a.ResponseStatus != 500 || a.ResponseBody != "boom\n" {
			t.Errorf("attempt %d: status %d body %q, want 500 \"boom\\n\"", i, a.ResponseStatus, a.ResponseBody)
		}
	}
	for i, r := range rc.requests() {
		if id := r.header.Get("Webhook-Id"); id != ev.ID {
			t.Errorf("request %d: webhook-id %q, want the event's %q on every retry", i, id, ev.ID)
		}
	}
	if n := len(rc.requests()); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
}

func testRetriesThenSucceeds(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 3 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(10, 10, 10, 10) })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	start(t, config(s))

	waitFor(t, "the delivery to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 1
	})
	d := getDelivery(t, s, ten.ID, deliveries(t, s, ten.ID, ep.ID)[0].ID)
	if d.AttemptCount != 3 {
		t.Errorf("attempt count = %d, want 3", d.AttemptCount)
	}
	e, err := s.GetEndpoint(t.Context(), ten.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.ConsecutiveFailures != 0 || e.Disabled {
		t.Errorf("endpoint consecutive failures %d disabled %v, want 0 and enabled after a success", e.ConsecutiveFailures, e.Disabled)
	}
}

func testRetryAfter(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(10, 10) })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	start(t, config(s))

	var d *aviso.Delivery
	waitFor(t, "the first attempt to be recorded", func() bool {
		d = deliveries(t, s, ten.ID, ep.ID)[0]
		return d.AttemptCount == 1
	})
	d = getDelivery(t, s, ten.ID, d.ID)
	if d.Status != aviso.StatusPending || d.NextAttemptAt == nil {
		t.Fatalf("delivery %s next %v, want pending with a next attempt", d.Status, d.NextAttemptAt)
	}
	if min := d.Attempts[0].At.Add(119 * time.Second); d.NextAttemptAt.Before(min) {
		t.Errorf("next attempt at %s, want ≥ %s (Retry-After: 120 rather than the 10ms schedule)", d.NextAttemptAt, min)
	}
	if d.LastResponseStatus != 429 {
		t.Errorf("last response status %d, want 429", d.LastResponseStatus)
	}
}

func testRedirect(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	var followed atomic.Int64
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/moved" {
			followed.Add(1)
			return
		}
		http.Redirect(w, r, "/moved", http.StatusFound)
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL+"/hooks", func(e *aviso.Endpoint) { e.RetrySchedule = ms(10) })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	start(t, config(s))

	waitFor(t, "the delivery to fail", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusFailed) == 1
	})
	d := getDelivery(t, s, ten.ID, deliveries(t, s, ten.ID, ep.ID)[0].ID)
	for _, a := range d.Attempts {
		if a.ResponseStatus != http.StatusFound || !strings.Contains(a.Error, "redirect 302 not followed") {
			t.Errorf("attempt: status %d error %q, want 302 and \"redirect 302 not followed\"", a.ResponseStatus, a.Error)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}

func testTimeout(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	hold, open := gate(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { <-hold })
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.TimeoutSeconds = 1 })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	start(t, config(s), open)

	var d *aviso.Delivery
	waitFor(t, "the attempt to be recorded", func() bool {
		d = deliveries(t, s, ten.ID, ep.ID)[0]
		return d.AttemptCount == 1
	})
	d = getDelivery(t, s, ten.ID, d.ID)
	a := d.Attempts[0]
	if a.ResponseStatus != 0 || a.Error != "timeout after 1s" {
		t.Errorf("attempt: status %d error %q, want 0 and \"timeout after 1s\"", a.ResponseStatus, a.Error)
	}
	if d.Status != aviso.StatusPending || d.LastError != "timeout after 1s" {
		t.Errorf("delivery %s last error %q, want pending (retry due) and the timeout", d.Status, d.LastError)
	}
}

func testAutoDisable(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(5, 5, 5, 5, 5, 5) })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	later := publish(t, s, ten.ID, 1, time.Now().Add(time.Hour), ep)[0]
	cfg := config(s)
	cfg.DisableAfter, cfg.DisableMinSpan = 3, -1 // no minimum span
	start(t, cfg)

	var e *aviso.Endpoint
	waitFor(t, "the endpoint to be disabled", func() bool {
		var err error
		e, err = s.GetEndpoint(t.Context(), ten.ID, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		return e.Disabled
	})
	if e.DisabledReason != aviso.DisabledConsecutiveFailed {
		t.Errorf("disabled reason %q, want %q", e.DisabledReason, aviso.DisabledConsecutiveFailed)
	}
	for _, d := range deliveries(t, s, ten.ID, ep.ID) {
		if d.Status != aviso.StatusFailed {
			t.Errorf("delivery of event %s is %s, want failed once the endpoint is disabled", d.EventID, d.Status)
		}
		if d.EventID == later.ID && d.AttemptCount != 0 {
			t.Errorf("the later delivery has %d attempts, want 0", d.AttemptCount)
		}
	}
	if n := len(rc.requests()); n != 3 {
		t.Errorf("receiver got %d requests, want 3: none after the endpoint was disabled", n)
	}
}

func testIsolation(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	hold, open := gate(t)
	dead := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { <-hold })
	healthy := newReceiver(t, nil)
	deadEp := newEndpoint(t, s, ten.ID, dead.srv.URL, func(e *aviso.Endpoint) { e.TimeoutSeconds = 30 })
	okEp := newEndpoint(t, s, ten.ID, healthy.srv.URL, nil)
	publish(t, s, ten.ID, 50, time.Now(), deadEp)
	publish(t, s, ten.ID, 200, time.Now(), okEp)
	cfg := config(s)
	cfg.Workers = 4
	cfg.PerEndpoint = 2
	r := start(t, cfg, open)

	t.Cleanup(func() { t.Logf("stats %+v dead %d healthy %d", r.d.Stats(), dead.cur.Load(), healthy.cur.Load()) })
	waitFor(t, "every delivery to the healthy endpoint to succeed", func() bool {
		return countStatus(t, s, ten.ID, okEp.ID, aviso.StatusSucceeded) == 200
	})
	if n := countStatus(t, s, ten.ID, deadEp.ID, aviso.StatusPending); n != 50 {
		t.Errorf("%d deliveries to the dead endpoint are pending, want all 50 (still in flight or queued)", n)
	}
	if n := dead.cur.Load(); n != 2 {
		t.Errorf("%d requests in flight to the dead endpoint, want PerEndpoint = 2", n)
	}
}

func testPerEndpointCap(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	hold, open := gate(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { <-hold })
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, nil)
	publish(t, s, ten.ID, 100, time.Now(), ep)
	cfg := config(s)
	cfg.Workers = 16
	cfg.PerEndpoint = 3
	start(t, cfg, open)

	waitFor(t, "3 requests in flight", func() bool { return rc.cur.Load() == 3 })
	open()
	waitFor(t, "every delivery to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 100
	})
	if m := rc.maxConc.Load(); m != 3 {
		t.Errorf("at most %d requests were in flight at once, want exactly PerEndpoint = 3", m)
	}
}

func testRestart(t *testing.T, b backend) {
	key := b.newKey(t)
	s1 := b.open(t, key)
	ten := newTenant(t, s1)
	var half = make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 100 {
			close(half)
		}
	})
	ep := newEndpoint(t, s1, ten.ID, rc.srv.URL, nil)
	events := publish(t, s1, ten.ID, 300, time.Now(), ep)
	cfg := config(s1)
	cfg.PerEndpoint = 2
	r1 := start(t, cfg)
	select {
	case <-half:
	case <-time.After(waitDeadline):
		t.Fatal("the first dispatcher did not deliver 100 events")
	}
	r1.stop(t)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := b.open(t, key)
	start(t, config(s2))
	waitFor(t, "every delivery to succeed after the restart", func() bool {
		return countStatus(t, s2, ten.ID, ep.ID, aviso.StatusSucceeded) == 300
	})
	seen := map[string]bool{}
	for _, r := range rc.requests() {
		seen[r.header.Get("Webhook-Id")] = true
	}
	for _, ev := range events {
		if !seen[ev.ID] {
			t.Errorf("event %s was never delivered", ev.ID)
		}
	}
}

func testCrashRecovery(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, nil)
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, nil)
	publish(t, s, ten.ID, 20, time.Now(), ep)
	// A node claims everything and dies without a word.
	now := time.Now()
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 100, Owner: "crashed",
		LeaseUntil: now.Add(2 * time.Minute)})
	if err != nil || len(cs) != 20 {
		t.Fatalf("claim by the crashed node: %d claims, %v; want 20", len(cs), err)
	}
	// The survivor's clock is past the lease: the work is its to take.
	cfg := config(s)
	cfg.Now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	start(t, cfg)
	waitFor(t, "every delivery to succeed", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 20
	})
	if n := len(rc.requests()); n != 20 {
		t.Errorf("receiver got %d requests, want 20", n)
	}
}

func testGracefulShutdown(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	hold, open := gate(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { <-hold })
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.TimeoutSeconds = 30 })
	publish(t, s, ten.ID, 4, time.Now(), ep)
	cfg := config(s)
	cfg.PerEndpoint = 1
	r := start(t, cfg, open)

	select {
	case <-rc.arrived:
	case <-time.After(waitDeadline):
		t.Fatal("no attempt started")
	}
	r.cancel()
	select {
	case <-r.done:
		t.Fatal("Run returned while an attempt was in flight")
	default:
	}
	open()
	r.stop(t)

	ds := deliveries(t, s, ten.ID, ep.ID)
	var succeeded, untouched int
	for _, d := range ds {
		switch {
		case d.Status == aviso.StatusSucceeded && d.AttemptCount == 1:
			succeeded++
		case d.Status == aviso.StatusPending && d.AttemptCount == 0:
			untouched++
		default:
			t.Errorf("delivery %s: %s after %d attempts", d.ID, d.Status, d.AttemptCount)
		}
	}
	if succeeded != 1 || untouched != 3 {
		t.Errorf("%d succeeded and %d untouched, want the attempt in flight recorded and 3 untouched", succeeded, untouched)
	}
	// The claims not started were released: another node can take them at once.
	now := time.Now()
	cs, err := s.ClaimDeliveries(t.Context(), aviso.ClaimParams{Now: now, Limit: 10, Owner: "other", LeaseUntil: now.Add(time.Minute)})
	if err != nil || len(cs) != 3 {
		t.Errorf("another node claimed %d deliveries (%v), want the 3 released ones", len(cs), err)
	}
}

func testSSRF(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	rc := newReceiver(t, nil)
	ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.RetrySchedule = ms(10) })
	publish(t, s, ten.ID, 1, time.Now(), ep)
	cfg := config(s)
	cfg.AllowPrivateNetworks = false
	start(t, cfg)

	waitFor(t, "the delivery to fail", func() bool {
		return countStatus(t, s, ten.ID, ep.ID, aviso.StatusFailed) == 1
	})
	d := getDelivery(t, s, ten.ID, deliveries(t, s, ten.ID, ep.ID)[0].ID)
	for _, a := range d.Attempts {
		if a.ResponseStatus != 0 || !strings.Contains(a.Error, "refused: 127.0.0.1 is a loopback") || !strings.Contains(a.Error, "SSRF") {
			t.Errorf("attempt: status %d error %q, want the SSRF guard's refusal of 127.0.0.1", a.ResponseStatus, a.Error)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

// TestSend covers the single attempts the API makes outside the loop.
func TestSend(t *testing.T) {
	b := backends[0]
	s := b.open(t, b.newKey(t))
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("x", 3*aviso.MaxResponseBody)))
		case "/refuse":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			fmt.Fprint(w, "ok")
		}
	})
	ev := &aviso.Event{ID: "evt_test", TenantID: "t", Type: "invoice.created", Data: []byte(`{"n":1}`), CreatedAt: time.Now()}
	ep := func(path string) *aviso.Endpoint {
		return &aviso.Endpoint{ID: "ep_1", TenantID: "t", URL: rc.srv.URL + path, Format: aviso.FormatStandard,
			TimeoutSeconds: 5, Secrets: []aviso.Secret{{Value: testSecret}}}
	}
	open, err := dispatch.New(config(s))
	if err != nil {
		t.Fatal(err)
	}
	guardedCfg := config(s)
	guardedCfg.AllowPrivateNetworks = false
	guarded, err := dispatch.New(guardedCfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		d         *dispatch.Dispatcher
		path      string
		status    int
		body      string
		errSubstr string
	}{
		{"success", open, "/ok", 200, "ok", ""},
		{"big body cut", open, "/big", 200, strings.Repeat("x", aviso.MaxResponseBody), ""},
		{"non-2xx", open, "/refuse", 401, "", ""},
		{"guarded", guarded, "/ok", 0, "", "refused: 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.d.Send(t.Context(), ep(tt.path), ev)
			if a.ResponseStatus != tt.status || a.ResponseBody != tt.body || !strings.Contains(a.Error, tt.errSubstr) ||
				(tt.errSubstr == "" && a.Error != "") {
				t.Errorf("attempt: status %d body %d bytes error %q; want %d, %d bytes, error containing %q",
					a.ResponseStatus, len(a.ResponseBody), a.Error, tt.status, len(tt.body), tt.errSubstr)
			}
			if a.RequestHeaders["Webhook-Id"] != ev.ID || a.URL != ep(tt.path).URL || a.ID == "" {
				t.Errorf("attempt ID %q URL %q headers %v, want an ID, the URL and webhook-id %s", a.ID, a.URL, a.RequestHeaders, ev.ID)
			}
		})
	}
	t.Run("do with a pre-built request", func(t *testing.T) {
		req := &webhook.Request{Header: http.Header{"Content-Type": {"application/json"}, "X-Handshake": {"1"}}}
		a := open.Do(t.Context(), ep("/ok"), req, "evt_hs")
		if a.ResponseStatus != 200 || a.EventID != "evt_hs" {
			t.Errorf("attempt status %d event %q, want 200 evt_hs", a.ResponseStatus, a.EventID)
		}
		last := rc.requests()[len(rc.requests())-1]
		if len(last.body) != 0 || last.header.Get("X-Handshake") != "1" {
			t.Errorf("receiver got body %q header %q, want an empty body and X-Handshake: 1", last.body, last.header.Get("X-Handshake"))
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		e := ep("")
		e.URL = "http://" + closedAddr(t)
		if a := open.Send(t.Context(), e, ev); a.Error != "connection refused" {
			t.Errorf("error %q, want \"connection refused\"", a.Error)
		}
	})
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	rc := newReceiver(tb, nil)
	addr := rc.srv.Listener.Addr().String()
	rc.srv.Close()
	return addr
}

func TestNewValidates(t *testing.T) {
	b := backends[0]
	s := b.open(t, b.newKey(t))
	tests := []struct {
		name string
		mod  func(*dispatch.Config)
	}{
		{"no store", func(c *dispatch.Config) { c.Store = nil }},
		{"negative workers", func(c *dispatch.Config) { c.Workers = -1 }},
		{"negative per endpoint", func(c *dispatch.Config) { c.PerEndpoint = -1 }},
		{"negative claim batch", func(c *dispatch.Config) { c.ClaimBatch = -1 }},
		{"lease shorter than the longest attempt", func(c *dispatch.Config) { c.Lease = 30 * time.Second }},
		{"zero retry wait", func(c *dispatch.Config) { c.RetrySchedule = []time.Duration{time.Second, 0} }},
		{"negative idle wait", func(c *dispatch.Config) { c.IdleWait = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(s)
			tt.mod(&cfg)
			if _, err := dispatch.New(cfg); err == nil {
				t.Errorf("New accepted the config")
			}
		})
	}
	if _, err := dispatch.New(config(s)); err != nil {
		t.Errorf("New rejected a valid config: %v", err)
	}
}

// An endpoint deleted or disabled while claims wait in its queue gets no more requests than
// those already in flight: once the claims have waited RecheckAfter, the loop asks the store
// and gives the queue back.
func testDropsQueueOfGoneEndpoint(t *testing.T, b backend) {
	for _, how := range []string{"deleted", "disabled"} {
		t.Run(how, func(t *testing.T) {
			s := b.open(t, b.newKey(t))
			ten := newTenant(t, s)
			hold, open := gate(t)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { <-hold })
			ep := newEndpoint(t, s, ten.ID, rc.srv.URL, func(e *aviso.Endpoint) { e.TimeoutSeconds = 30 })
			publish(t, s, ten.ID, 20, time.Now(), ep)
			cfg := config(s)
			cfg.Workers, cfg.PerEndpoint = 4, 2
			cfg.RecheckAfter = 20 * time.Millisecond
			r := start(t, cfg, open)

			waitFor(t, "2 requests in flight", func() bool { return rc.cur.Load() == 2 })
			claimed := r.d.Stats().Claimed
			if claimed <= 2 {
				t.Fatalf("claimed %d, want claims queued behind the 2 in flight", claimed)
			}
			switch how {
			case "deleted":
				if err := s.DeleteEndpoint(t.Context(), ten.ID, ep.ID); err != nil {
					t.Fatal(err)
				}
			case "disabled":
				if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID,
					ID: ep.ID, Disabled: true, Reason: aviso.DisabledByUser, Now: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the queued claims to be given back", func() bool { return r.d.Stats().Released >= claimed-2 })
			open()
			r.stop(t)
			if n := len(rc.requests()); n != 2 {
				t.Errorf("the %s endpoint got %d requests, want the 2 in flight when it was %s", how, n, how)
			}
		})
	}
}
