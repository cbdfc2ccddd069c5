package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
)

// recoveryDeadline bounds, from the kill, the wait for every delivery: twice the longest attempt
// timeout (60 s) and some room. With 15 s leases renewed every 5 s, a survivor takes a dead
// node's deliveries over within about 15 s; a restarted node resumes its own at once.
const recoveryDeadline = 70 * time.Second

// TestCrashRecovery runs two `aviso serve` nodes on PostgreSQL delivering to a receiver that
// holds every request until the node is killed, SIGKILLs one of them (node-a) while it has
// attempts in flight, and then lets the receiver answer. Every event must reach the receiver
// within recoveryDeadline of the kill (lost 0); the duplicates, at most what node-a held, are
// counted and printed.
//   - takeover: node-a stays dead; node-b delivers node-a's deliveries once their short
//     leases run out, well before any two-minute lease would have.
//   - restart: both nodes run with 10-minute leases, so no lease runs out during the test;
//     node-a restarts at once under its --node-id and on its port, gives back what it held
//     and delivers it.
func TestCrashRecovery(t *testing.T) {
	url := testenv.PostgresURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	bin := testenv.AvisoBinary(t)
	for _, tc := range []struct {
		name    string
		lease   string
		restart bool
	}{
		{"takeover", "15s", false},
		{"restart", "10m", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crashRecovery(t, ctx, url, bin, tc.lease, tc.restart)
		})
	}
}

func crashRecovery(t *testing.T, ctx context.Context, url, bin, lease string, restart bool) {
	const events = 300
	dbURL, conn := freshSchema(t, ctx, url)
	rootKey := "avk_root_" + randomHex(16)
	if out, err := exec.CommandContext(ctx, bin, "migrate", "--database", dbURL).CombinedOutput(); err != nil {
		t.Fatalf("aviso migrate: %v\n%s", err, out)
	}
	addrA := freeAddr(t)
	flagsA := []string{"--node-id", "node-a", "--addr", addrA, "--lease", lease}
	a := startNode(t, ctx, bin, "node-a", dbURL, rootKey, flagsA...)
	b := startNode(t, ctx, bin, "node-b", dbURL, rootKey, "--node-id", "node-b", "--lease", lease)
	nodes := []*testenv.Aviso{a, b}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s log tail:\n%s", n.Name, n.Tail())
			}
		}
	})

	rc := newHoldingReceiver(t)
	c := &client{t: t, key: rootKey}
	c.do(ctx, a.Base, "POST", "/v1/tenants", map[string]any{"id": "ten_crash", "name": "Crash"}, nil)
	var ep struct {
		ID string `json:"id"`
	}
	c.do(ctx, b.Base, "POST", "/v1/tenants/ten_crash/endpoints",
		map[string]any{"url": rc.srv.URL, "event_types": []string{}, "verify": false, "timeout_seconds": 30}, &ep)
	var et struct {
		Example any `json:"example"`
	}
	c.do(ctx, a.Base, "GET", "/v1/event-types/invoice.created", nil, &et)
	ids := make([]string, 0, events)
	for i := range events / 100 {
		batch := make([]map[string]any, 100)
		for j := range batch {
			id := fmt.Sprintf("evt_crash_%04d", i*100+j)
			batch[j] = map[string]any{"id": id, "type": "invoice.created", "data": et.Example}
			ids = append(ids, id)
		}
		c.do(ctx, nodes[i%2].Base, "POST", "/v1/tenants/ten_crash/events/batch", map[string]any{"events": batch}, nil)
	}

	// Both nodes have attempts in flight (the receiver holds them all): more than one node's
	// eight per endpoint, and node-a holds leases.
	waitUntil(t, ctx, 30*time.Second, "both nodes to have attempts in flight", func() bool {
		return rc.holding() > 8 && countByOwner(leases(t, ctx, conn))["node-a"] > 0
	})
	inFlight := rc.holding()
	if err := a.Kill(); err != nil {
		t.Fatalf("kill node-a: %v", err)
	}
	killed := time.Now()
	heldAtKill := countByOwner(leases(t, ctx, conn))["node-a"]
	t.Logf("killed node-a (SIGKILL) with %d attempts of both nodes in flight; node-a held %d leases", inFlight, heldAtKill)
	if restart {
		a = startNode(t, ctx, bin, "node-a", dbURL, rootKey, flagsA...)
		nodes = append(nodes, a)
		t.Logf("node-a restarted %s after the kill", time.Since(killed).Round(time.Millisecond))
	}
	rc.release()

	waitUntil(t, ctx, recoveryDeadline-time.Since(killed), "every event at the receiver", func() bool {
		return rc.unique() == events
	})
	took := time.Since(killed)
	got := rc.snapshot()
	lost, dups := 0, 0
	for _, id := range ids {
		switch n := got[id]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("%d events, all at the receiver %s after the kill: lost %d, duplicates %d (node-a held %d leases at the kill)",
		events, took.Round(time.Millisecond), lost, dups, heldAtKill)
	if lost != 0 || len(got) != events {
		t.Errorf("lost %d; the receiver got %d distinct events, want %d", lost, len(got), events)
	}
	if dups > heldAtKill {
		t.Errorf("%d duplicates, but node-a held only %d deliveries when it was killed", dups, heldAtKill)
	}
	// And the database agrees: every delivery succeeded, no lease left.
	waitUntil(t, ctx, 30*time.Second, "every delivery recorded as succeeded", func() bool {
		var succeeded, leased int
		if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'succeeded'),
			count(*) FILTER (WHERE lease_owner IS NOT NULL) FROM deliveries`).Scan(&succeeded, &leased); err != nil {
			t.Fatalf("count deliveries: %v", err)
		}
		return succeeded == events && leased == 0
	})
}

// freeAddr returns a loopback address with a port free right now, for a node that must come
// back on the port it had (its default node ID would name it; here --node-id does).
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitUntil polls cond every 100 ms until it holds, failing the test after within.
func waitUntil(tb testing.TB, ctx context.Context, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			tb.Fatalf("timed out after %s waiting for %s", within.Round(time.Second), what)
		case <-ctx.Done():
			tb.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// holdingReceiver counts every webhook-id it gets as the request arrives, and holds every
// request until release; after that it answers 204 at once.
type holdingReceiver struct {
	srv     *httptest.Server
	gate    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	got     map[string]int
	waiting int
}

func newHoldingReceiver(tb testing.TB) *holdingReceiver {
	tb.Helper()
	r := &holdingReceiver{gate: make(chan struct{}), got: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.got[req.Header.Get("webhook-id")]++
		r.waiting++
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.waiting--
			r.mu.Unlock()
		}()
		select {
		case <-r.gate:
		case <-req.Context().Done(): // the node died
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(func() {
		r.release()
		r.srv.Close()
	})
	return r
}

func (r *holdingReceiver) release() { r.once.Do(func() { close(r.gate) }) }

func (r *holdingReceiver) holding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting
}

func (r *holdingReceiver) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *holdingReceiver) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}
