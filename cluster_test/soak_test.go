package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// The crash soak's size. CI runs soakKills kills per backend (about 20 s each); set
// AVISO_SOAK_KILLS for a longer run, e.g. AVISO_SOAK_KILLS=40 go test -run TestCrashSoak -v
// ./cluster_test/. Set AVISO_SOAK_REPORT to a file to have each run's figures appended to it
// (.ci/run prints them, since go test shows a passing test's log only under -v).
const (
	soakKills = 4
	// soakFailShare is the share of requests the receivers answer 500 (never more than
	// soakMaxStreak in a row, so no endpoint reaches the auto-disable threshold).
	soakFailShare = 0.25
	soakMaxStreak = 3
	// soakWindow is how long before a kill an attempt counts as in flight at the kill: sent, or
	// answered with its completion not yet committed. Completions are written within
	// milliseconds; the window leaves room for a loaded machine.
	soakWindow = 5 * time.Second
	// soakDrain bounds the wait, after the last kill, for every delivery to succeed.
	soakDrain = 60 * time.Second
)

// TestCrashSoak publishes single events and batches while SIGKILLing the node at random
// moments, on SQLite (one node, restarted on its data directory) and on two PostgreSQL nodes
// (one of them killed and restarted under its --node-id each time), with receivers that fail a
// share of requests. Afterwards: every accepted event was delivered to every endpoint at least
// once; nothing was delivered that was not accepted; each duplicate (a delivery answered 2xx
// twice) is explained by a kill that came within soakWindow after its earlier answer, and the
// duplicates are at most the attempts in flight at the kills (on PostgreSQL, also among the
// deliveries the killed node held leased); and the delivery log agrees with what the receivers
// saw: each delivery succeeded, with no more attempts recorded than requests received and its
// recorded statuses among them.
func TestCrashSoak(t *testing.T) {
	kills := soakKills
	if s := os.Getenv("AVISO_SOAK_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("AVISO_SOAK_KILLS=%q: want a positive number", s)
		}
		kills = n
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute+time.Duration(kills)*10*time.Second)
	defer cancel()
	bin := testenv.AvisoBinary(t)
	t.Run("sqlite", func(t *testing.T) { soak(t, ctx, bin, "", nil, kills) })
	t.Run("postgres", func(t *testing.T) {
		dbURL, conn := freshSchema(t, ctx, testenv.PostgresURL(t))
		if out, err := exec.CommandContext(ctx, bin, "migrate", "--database", dbURL).CombinedOutput(); err != nil {
			t.Fatalf("aviso migrate: %v\n%s", err, out)
		}
		soak(t, ctx, bin, dbURL, conn, kills)
	})
}

// soakNode is a node of the soak: how to start it again after a kill.
type soakNode struct {
	*testenv.Aviso
	id    string
	start func() *testenv.Aviso
}

// soak runs one soak: on SQLite when dbURL is empty, else on two PostgreSQL nodes, conn being a
// connection to their schema.
func soak(t *testing.T, ctx context.Context, bin, dbURL string, conn *pgx.Conn, kills int) {
	rootKey := "avk_root_" + randomHex(16)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
	var nodes []*soakNode
	for i := range map[bool]int{true: 2, false: 1}[dbURL != ""] {
		id := fmt.Sprintf("soak%d", i)
		extra := []string{"--node-id", id, "--workers", "16"}
		if dbURL == "" {
			// SQLite does not renew leases: one longer than the longest attempt (startNode's
			// --lease is PostgreSQL's). A restart drops them anyway: they live in memory.
			extra = append(extra, "--data-dir", t.TempDir(), "--lease", "2m")
		} else {
			extra = append(extra, "--lease", "15s") // renewed; a restarted node gives its leases back at once
		}
		sn := &soakNode{id: id}
		sn.start = func() *testenv.Aviso { return startNode(t, ctx, bin, id, dbURL, rootKey, extra...) }
		sn.Aviso = sn.start()
		nodes = append(nodes, sn)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s log tail:\n%s", n.id, n.Tail())
			}
		}
	})
	var mu sync.Mutex // guards the nodes' *testenv.Aviso and down
	down := map[*soakNode]bool{}
	live := func(rng *rand.Rand) string {
		mu.Lock()
		defer mu.Unlock()
		var up []string
		for _, n := range nodes {
			if !down[n] {
				up = append(up, n.Base)
			}
		}
		if len(up) == 0 {
			return ""
		}
		return up[rng.IntN(len(up))]
	}

	c := &client{t: t, key: rootKey}
	base := nodes[0].Base
	c.do(ctx, base, "POST", "/v1/tenants", map[string]any{"id": "soak", "name": "Soak"}, nil)
	var et struct {
		Example json.RawMessage `json:"example"`
	}
	c.do(ctx, base, "GET", "/v1/event-types/invoice.created", nil, &et)
	schedule := slices.Repeat([]string{"300ms"}, 15)
	recv := []*soakReceiver{newSoakReceiver(t, rng.Uint64()), newSoakReceiver(t, rng.Uint64())}
	for _, r := range recv {
		var ep struct {
			ID string `json:"id"`
		}
		c.do(ctx, base, "POST", "/v1/tenants/soak/endpoints", map[string]any{"url": r.srv.URL,
			"verify": false, "retry_schedule": schedule, "timeout_seconds": 5}, &ep)
		r.endpointID = ep.ID
	}

	// The publisher: single events and batches of 10, each to a live node, paced; a publish that
	// fails (the node died under it) is sent again, same IDs, until a node accepts it: publishing
	// is idempotent by ID.
	var accepted []string
	stop := make(chan struct{})
	published := make(chan error, 1)
	prng := rand.New(rand.NewPCG(rng.Uint64(), 3)) // the publisher's own: rand.Rand is not safe for concurrent use
	go func() {
		seq := 0
		var pending []string
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				if len(pending) == 0 {
					published <- nil
					return
				}
			case <-ctx.Done():
				published <- ctx.Err()
				return
			case <-tick.C:
			}
			if len(pending) == 0 {
				n := 1
				if seq%2 == 1 {
					n = 10
				}
				for range n {
					pending = append(pending, fmt.Sprintf("evt_soak_%06d", seq))
					seq++
				}
			}
			b := live(prng)
			if b == "" {
				continue
			}
			var path string
			var body any
			if len(pending) == 1 {
				path, body = "/v1/tenants/soak/events", map[string]any{"id": pending[0], "type": "invoice.created", "data": et.Example}
			} else {
				evs := make([]map[string]any, len(pending))
				for i, id := range pending {
					evs[i] = map[string]any{"id": id, "type": "invoice.created", "data": et.Example}
				}
				path, body = "/v1/tenants/soak/events/batch", map[string]any{"events": evs}
			}
			status, out, err := post(ctx, b+path, rootKey, body)
			switch {
			case err != nil || status/100 == 5:
				continue // in doubt: publish the same IDs again
			case status/100 != 2:
				published <- fmt.Errorf("publish %v: %d %s", pending, status, out)
				return
			}
			accepted = append(accepted, pending...)
			pending = nil
		}
	}()

	// The killer: at random moments, SIGKILL a node (on PostgreSQL either one), note what it held,
	// and start it again.
	var killTimes []time.Time
	leasedAtKills := map[delivery]bool{}
	for k := range kills {
		select {
		case <-time.After(time.Duration(500+rng.IntN(1500)) * time.Millisecond): // the random moment
		case err := <-published:
			t.Fatalf("publisher stopped: %v", err)
		}
		victim := nodes[rng.IntN(len(nodes))]
		mu.Lock()
		down[victim] = true
		mu.Unlock()
		if err := victim.Kill(); err != nil {
			t.Fatalf("kill %s: %v", victim.id, err)
		}
		killTimes = append(killTimes, time.Now())
		if conn != nil {
			for d, owner := range leases(t, ctx, conn) {
				if owner == victim.id {
					leasedAtKills[d] = true
				}
			}
		}
		n := victim.start()
		mu.Lock()
		victim.Aviso = n
		delete(down, victim)
		mu.Unlock()
		t.Logf("kill %d: %s SIGKILLed and restarted", k+1, victim.id)
	}
	close(stop)
	if err := <-published; err != nil {
		t.Fatalf("publisher: %v", err)
	}

	// Wait, bounded, until the receivers have every event and the log shows every delivery
	// succeeded.
	var log map[delivery]soakDelivery
	deadline := time.Now().Add(soakDrain)
	for {
		complete := true
		for _, r := range recv {
			complete = complete && r.deliveredAll(accepted)
		}
		if complete {
			log = deliveryLog(t, ctx, c, live(rng))
			if len(log) == len(accepted)*len(recv) && allSucceeded(log) {
				break
			}
		}
		if time.Now().After(deadline) {
			for i, r := range recv {
				t.Errorf("receiver %d: %d of %d events", i, r.delivered(), len(accepted))
			}
			t.Fatalf("not everything was delivered within %s of the last kill", soakDrain)
		}
		select {
		case <-recv[0].changed:
		case <-recv[1].changed:
		case <-time.After(250 * time.Millisecond): // completions reach the log without a signal here
		}
	}

	// The figures and the assertions.
	acceptedSet := map[string]bool{}
	for _, id := range accepted {
		acceptedSet[id] = true
	}
	var delivered, lost, dups, unrecorded, requests int
	for _, r := range recv {
		got := r.snapshot()
		for id, answers := range got {
			requests += len(answers)
			if !acceptedSet[id] {
				t.Errorf("receiver got %s, which was never accepted", id)
				continue
			}
			d := delivery{r.endpointID, id}
			ld, ok := log[d]
			if !ok {
				t.Errorf("%v: received, but not in the delivery log", d)
				continue
			}
			if ld.attempts > len(answers) {
				t.Errorf("%v: the log records %d attempts, the receiver saw %d requests", d, ld.attempts, len(answers))
			}
			// A request the log does not record was in flight at a kill: sent, or answered with
			// its completion not yet committed, within soakWindow before it.
			if lostHere := len(answers) - ld.attempts; lostHere > 0 {
				unrecorded += lostHere
				near := 0
				for _, a := range answers {
					if slices.ContainsFunc(killTimes, func(k time.Time) bool { return !k.Before(a.at) && k.Sub(a.at) <= soakWindow }) {
						near++
					}
				}
				if near < lostHere {
					t.Errorf("%v: %d requests are not in the log, but only %d came within %s before a kill", d, lostHere, near, soakWindow)
				}
			}
			var oks []time.Time
			for _, a := range answers {
				if a.status/100 == 2 {
					oks = append(oks, a.at)
				}
			}
			if len(oks) > 0 {
				delivered++
			}
			for i := 1; i < len(oks); i++ {
				dups++
				// The earlier answer was lost with a node: a kill came within soakWindow after it
				// and before the later one.
				if !slices.ContainsFunc(killTimes, func(k time.Time) bool {
					return !k.Before(oks[i-1]) && k.Sub(oks[i-1]) <= soakWindow && k.Before(oks[i])
				}) {
					t.Errorf("%v was answered 2xx at %s and again at %s with no kill between that could explain it",
						d, oks[i-1].Format(time.StampMilli), oks[i].Format(time.StampMilli))
				}
				if conn != nil && !leasedAtKills[d] {
					t.Errorf("%v arrived twice, but no killed node held it leased", d)
				}
			}
			if ld.attempts > 0 && ld.statuses != nil {
				for _, st := range ld.statuses {
					if !slices.ContainsFunc(answers, func(a soakAnswer) bool { return a.status == st }) {
						t.Errorf("%v: the log records status %d, which the receiver never answered", d, st)
					}
				}
			}
		}
		for _, id := range accepted {
			if !r.deliveredOnce(id) {
				lost++
				t.Errorf("accepted event %s never reached endpoint %s", id, r.endpointID)
			}
		}
	}
	// A duplicate is a 2xx answer a kill kept out of the log: at most the attempts in flight at
	// the kills (and on PostgreSQL, at most what the killed nodes held leased).
	if dups > unrecorded {
		t.Errorf("%d duplicates, more than the %d attempts in flight at the kills", dups, unrecorded)
	}
	if conn != nil && dups > len(leasedAtKills) {
		t.Errorf("%d duplicates, more than the %d deliveries the killed nodes held", dups, len(leasedAtKills))
	}
	summary := fmt.Sprintf("crash soak %s: kills %d, accepted %d events (%d deliveries), delivered %d, lost %d, duplicates %d (attempts in flight at the kills %d), requests %d",
		map[bool]string{true: "postgres (2 nodes)", false: "sqlite"}[conn != nil], len(killTimes), len(accepted),
		len(accepted)*len(recv), delivered, lost, dups, unrecorded, requests)
	if conn != nil {
		summary += fmt.Sprintf(", deliveries leased by the killed nodes %d", len(leasedAtKills))
	}
	t.Log(summary)
	if p := os.Getenv("AVISO_SOAK_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintln(f, summary)
			f.Close()
		}
	}
}

// post sends a JSON POST and returns the status and body, or the error of a node that died.
func post(ctx context.Context, u, key string, in any) (int, []byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// soakDelivery is what the delivery log says of one delivery.
type soakDelivery struct {
	id       string
	status   string
	attempts int
	statuses []int // the recorded attempts' response statuses; read for a sample only
}

func allSucceeded(log map[delivery]soakDelivery) bool {
	for _, d := range log {
		if d.status != "succeeded" {
			return false
		}
	}
	return true
}

// deliveryLog reads every delivery of the soak's tenant through the API, and the attempts of
// one in twenty.
func deliveryLog(tb testing.TB, ctx context.Context, c *client, base string) map[delivery]soakDelivery {
	tb.Helper()
	out := map[delivery]soakDelivery{}
	after := ""
	for {
		var page struct {
			Data []struct {
				ID           string `json:"id"`
				EventID      string `json:"event_id"`
				EndpointID   string `json:"endpoint_id"`
				Status       string `json:"status"`
				AttemptCount int    `json:"attempt_count"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
			HasMore    bool   `json:"has_more"`
		}
		c.do(ctx, base, "GET", "/v1/tenants/soak/deliveries?limit=500&after="+url.QueryEscape(after), nil, &page)
		for _, d := range page.Data {
			sd := soakDelivery{id: d.ID, status: d.Status, attempts: d.AttemptCount}
			if len(out)%20 == 0 {
				var full struct {
					Attempts []struct {
						ResponseStatus int `json:"response_status"`
					} `json:"attempts"`
				}
				c.do(ctx, base, "GET", "/v1/tenants/soak/deliveries/"+d.ID, nil, &full)
				sd.statuses = []int{}
				for _, a := range full.Attempts {
					sd.statuses = append(sd.statuses, a.ResponseStatus)
				}
			}
			out[delivery{d.EndpointID, d.EventID}] = sd
		}
		if !page.HasMore {
			return out
		}
		after = page.NextCursor
	}
}

// soakAnswer is one request a soak receiver answered.
type soakAnswer struct {
	at     time.Time
	status int
}

// soakReceiver answers a share of requests 500 and records every answer by webhook-id.
type soakReceiver struct {
	srv        *httptest.Server
	endpointID string
	changed    chan struct{}
	mu         sync.Mutex
	rng        *rand.Rand
	streak     int
	got        map[string][]soakAnswer
}

func newSoakReceiver(tb testing.TB, seed uint64) *soakReceiver {
	tb.Helper()
	r := &soakReceiver{changed: make(chan struct{}, 1), rng: rand.New(rand.NewPCG(seed, 7)), got: map[string][]soakAnswer{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		status := http.StatusOK
		if r.streak < soakMaxStreak && r.rng.Float64() < soakFailShare {
			status = http.StatusInternalServerError
			r.streak++
		} else {
			r.streak = 0
		}
		r.got[id] = append(r.got[id], soakAnswer{time.Now(), status})
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(status)
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *soakReceiver) deliveredOnce(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.got[id], func(a soakAnswer) bool { return a.status/100 == 2 })
}

func (r *soakReceiver) deliveredAll(ids []string) bool {
	for _, id := range ids {
		if !r.deliveredOnce(id) {
			return false
		}
	}
	return true
}

func (r *soakReceiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, as := range r.got {
		if slices.ContainsFunc(as, func(a soakAnswer) bool { return a.status/100 == 2 }) {
			n++
		}
	}
	return n
}

// answeredWithin counts the requests answered in [from, to].
func (r *soakReceiver) answeredWithin(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, as := range r.got {
		for _, a := range as {
			if !a.at.Before(from) && !a.at.After(to) {
				n++
			}
		}
	}
	return n
}

func (r *soakReceiver) snapshot() map[string][]soakAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]soakAnswer, len(r.got))
	for k, v := range r.got {
		out[k] = slices.Clone(v)
	}
	return out
}
