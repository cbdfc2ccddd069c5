package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// Sizes of the run: about 3,000 events fanned out three ways each, published in batches.
const (
	events    = 3000
	batchSize = 100
	// killAfter is how many batches are published before a node is killed.
	killAfter = 12
	// lease is the nodes' --lease, PostgreSQL's default: renewed while a node holds the
	// deliveries, so a killed node's deliveries move to the others when it runs out.
	lease = 15 * time.Second
	// deadline bounds the wait for every delivery: publishing, the lease, and the drain.
	deadline = 90 * time.Second
)

// TestMultiNodeKill runs three `aviso serve` processes on one PostgreSQL schema, publishes about
// 3,000 events through all three while they deliver to four receivers, kills one node with SIGKILL
// midway and keeps publishing through the other two. Every accepted event must reach every
// endpoint subscribed to its type; a delivery may arrive twice only if the killed node held it
// (leased) when it died, and the duplicates are counted and logged.
func TestMultiNodeKill(t *testing.T) {
	url := testenv.PostgresURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	bin := testenv.AvisoBinary(t)

	dbURL, conn := freshSchema(t, ctx, url)
	rootKey := "avk_root_" + randomHex(16)
	if out, err := exec.CommandContext(ctx, bin, "migrate", "--database", dbURL).CombinedOutput(); err != nil {
		t.Fatalf("aviso migrate: %v\n%s", err, out)
	}
	var nodes []*testenv.Aviso
	for i := range 3 {
		nodes = append(nodes, startNode(t, ctx, bin, fmt.Sprintf("node%d", i), dbURL, rootKey))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s log tail:\n%s", n.Name, n.Tail())
			}
		}
	})

	// Four receivers: invoice.created only, invoice.paid only, and two that take everything.
	recv := []*receiver{
		newReceiver(t, "invoice.created"),
		newReceiver(t, "invoice.paid"),
		newReceiver(t),
		newReceiver(t),
	}
	c := &client{t: t, key: rootKey}
	c.do(ctx, nodes[0].Base, "POST", "/v1/tenants", map[string]any{"id": "ten_cluster", "name": "Cluster"}, nil)
	for _, r := range recv {
		var ep struct {
			ID string `json:"id"`
		}
		c.do(ctx, nodes[1].Base, "POST", "/v1/tenants/ten_cluster/endpoints",
			map[string]any{"url": r.srv.URL, "event_types": r.types, "verify": false}, &ep)
		r.endpointID = ep.ID
	}
	examples := map[string]json.RawMessage{}
	for _, typ := range []string{"invoice.created", "invoice.paid"} {
		var et struct {
			Example json.RawMessage `json:"example"`
		}
		c.do(ctx, nodes[2].Base, "GET", "/v1/event-types/"+typ, nil, &et)
		examples[typ] = et.Example
	}

	// Publish in batches round-robin over the live nodes; kill node 2 after killAfter batches.
	victim := nodes[2]
	live := nodes
	var accepted []publishedEvent
	var leasedAtKill map[delivery]string
	publishRetries := 0
	for b := range events / batchSize {
		if b == killAfter {
			if err := victim.Kill(); err != nil {
				t.Fatalf("kill %s: %v", victim.Name, err)
			}
			leasedAtKill = leases(t, ctx, conn)
			live = nodes[:2]
			t.Logf("killed %s (SIGKILL) after %d events; %d deliveries were leased at that moment (by owner: %v)",
				victim.Name, len(accepted), len(leasedAtKill), countByOwner(leasedAtKill))
		}
		batch := make([]map[string]any, batchSize)
		sent := make([]publishedEvent, batchSize)
		for i := range batch {
			typ := "invoice.created"
			if (b*batchSize+i)%3 == 0 {
				typ = "invoice.paid"
			}
			id := fmt.Sprintf("evt_mn_%05d", b*batchSize+i)
			batch[i] = map[string]any{"id": id, "type": typ, "data": examples[typ]}
			sent[i] = publishedEvent{id, typ}
		}
		var res struct {
			Data []struct {
				ID      string `json:"id"`
				Created bool   `json:"created"`
			} `json:"data"`
		}
		// A publisher retries a batch the server failed (5xx) with the same event IDs: publishing
		// is idempotent by ID, so a repeat of what did commit answers created false.
		n := live[b%len(live)]
		for try := 1; ; try++ {
			status, body := c.try(ctx, n.Base, "POST", "/v1/tenants/ten_cluster/events/batch", map[string]any{"events": batch}, &res)
			if status/100 == 2 {
				break
			}
			if status/100 != 5 || try == 10 {
				t.Fatalf("batch %d on %s, try %d: %d %s", b, n.Name, try, status, body)
			}
			publishRetries++
			t.Logf("batch %d on %s failed (%d %s); publishing it again", b, n.Name, status, body)
		}
		if len(res.Data) != batchSize {
			t.Fatalf("batch %d on %s: %d results, want %d", b, n.Name, len(res.Data), batchSize)
		}
		for i, x := range res.Data {
			if x.ID != sent[i].id {
				t.Fatalf("batch %d on %s: result %d = %+v, want %s", b, n.Name, i, x, sent[i].id)
			}
		}
		accepted = append(accepted, sent...)
	}

	// Wait, bounded, until every receiver has every event it subscribes to.
	want := make([]int, len(recv))
	for i, r := range recv {
		for _, e := range accepted {
			if r.subscribes(e.typ) {
				want[i]++
			}
		}
	}
	wantDeliveries := 0
	for _, w := range want {
		wantDeliveries += w
	}
	// Done when every receiver has all its events and the database has recorded every delivery
	// as succeeded with no lease left: the killed node's leases expire after --lease and the
	// live nodes deliver what it held (again, if it had sent it before dying).
	var deliveries, succeeded, leased int
	done := func() bool {
		for i, r := range recv {
			if r.unique() < want[i] {
				return false
			}
		}
		err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'),
			count(*) FILTER (WHERE lease_owner IS NOT NULL) FROM deliveries`).Scan(&deliveries, &succeeded, &leased)
		if err != nil {
			t.Fatalf("count deliveries: %v", err)
		}
		return succeeded == wantDeliveries && leased == 0
	}
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	poll := time.NewTicker(250 * time.Millisecond) // completions land in the database without a signal here
	defer poll.Stop()
	for !done() {
		select {
		case <-recv[0].changed:
		case <-recv[1].changed:
		case <-recv[2].changed:
		case <-recv[3].changed:
		case <-poll.C:
		case <-timer.C:
			for i, r := range recv {
				t.Errorf("receiver %d (%v) got %d of %d events", i, r.types, r.unique(), want[i])
			}
			t.Fatalf("not everything was delivered within %s: database has %d deliveries, %d succeeded, %d leased; want %d succeeded",
				deadline, deliveries, succeeded, leased, wantDeliveries)
		}
	}

	// None lost: every accepted event reached every subscribed endpoint, and no stranger came.
	total, dups := 0, 0
	for i, r := range recv {
		got := r.snapshot()
		for _, e := range accepted {
			if r.subscribes(e.typ) && got[e.id] == 0 {
				t.Errorf("receiver %d (%v) never got %s", i, r.types, e.id)
			}
		}
		if len(got) != want[i] {
			t.Errorf("receiver %d (%v) got %d distinct events, want %d", i, r.types, len(got), want[i])
		}
		for id, n := range got {
			total += n
			if n > 1 {
				dups += n - 1
				// Only what the killed node held when it died may arrive twice.
				if _, ok := leasedAtKill[delivery{r.endpointID, id}]; !ok {
					t.Errorf("receiver %d got %s %d times, but no node held that delivery when %s was killed", i, id, n, victim.Name)
				}
				if n > 2 {
					t.Errorf("receiver %d got %s %d times, want at most twice", i, id, n)
				}
			}
		}
	}
	if publishRetries > 0 {
		// The retry keeps the test's accounting exact, but a live node must not fail a publish.
		t.Errorf("%d publish batches answered 5xx and were sent again (see the nodes' logs)", publishRetries)
	}
	t.Logf("%d events accepted; %d requests received for %d deliveries: %d duplicates (at most %d were leased at the kill)",
		len(accepted), total, total-dups, dups, len(leasedAtKill))

	if deliveries != wantDeliveries {
		t.Errorf("database: %d deliveries, want %d (one per subscribed endpoint and event)", deliveries, wantDeliveries)
	}
}

type publishedEvent struct{ id, typ string }

// delivery names a delivery by what a receiver sees: its endpoint and the event (webhook-id).
type delivery struct{ endpoint, event string }

// leases returns the deliveries leased right now, with their owners.
func leases(tb testing.TB, ctx context.Context, conn *pgx.Conn) map[delivery]string {
	tb.Helper()
	rows, err := conn.Query(ctx, `SELECT endpoint_id, event_id, lease_owner FROM deliveries
		WHERE lease_owner IS NOT NULL AND lease_until > now()`)
	if err != nil {
		tb.Fatalf("read leases: %v", err)
	}
	out := map[delivery]string{}
	for rows.Next() {
		var d delivery
		var owner string
		if err := rows.Scan(&d.endpoint, &d.event, &owner); err != nil {
			tb.Fatalf("read leases: %v", err)
		}
		out[d] = owner
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read leases: %v", err)
	}
	return out
}

func countByOwner(m map[delivery]string) map[string]int {
	out := map[string]int{}
	for _, o := range m {
		out[o]++
	}
	return out
}

// freshSchema creates a schema of its own, dropped at the end, and returns the URL that selects
// it and a connection whose search_path is that schema.
func freshSchema(tb testing.TB, ctx context.Context, url string) (string, *pgx.Conn) {
	tb.Helper()
	url, schema := testenv.PostgresSchema(tb, "aviso_cluster_")
	url = testenv.SchemaURL(url, schema)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return url, conn
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// encryptionKey seals the endpoints' secrets; every node of the database shares it.
const encryptionKey = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGh8="

// startNode starts `aviso serve` on the database (SQLite in a data directory of its own when
// dbURL is empty) on a free port and waits until it answers /readyz. The process is killed when
// tb ends. Flags in extra come last and so override the ones before.
func startNode(tb testing.TB, ctx context.Context, bin, name, dbURL, rootKey string, extra ...string) *testenv.Aviso {
	tb.Helper()
	args := []string{"--database", dbURL, "--no-migrate", "--allow-private-networks", "--lease", lease.String(), "--retention", "0"}
	return testenv.StartAviso(tb, ctx, bin, name, append(args, extra...),
		"AVISO_ROOT_KEY="+rootKey, "AVISO_ENCRYPTION_KEY="+encryptionKey, "AVISO_DATA_DIR="+tb.TempDir())
}

// receiver is a webhook receiver that counts every webhook-id it gets.
type receiver struct {
	srv        *httptest.Server
	types      []string // subscribed types; empty: all
	endpointID string
	changed    chan struct{}
	mu         sync.Mutex
	got        map[string]int
}

func newReceiver(tb testing.TB, types ...string) *receiver {
	tb.Helper()
	r := &receiver{types: types, changed: make(chan struct{}, 1), got: map[string]int{}}
	if r.types == nil {
		r.types = []string{}
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		id := req.Header.Get("webhook-id")
		if id == "" {
			http.Error(w, "no webhook-id", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got[id]++
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) subscribes(typ string) bool {
	if len(r.types) == 0 {
		return true
	}
	for _, t := range r.types {
		if t == typ {
			return true
		}
	}
	return false
}

func (r *receiver) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *receiver) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// client calls a node's JSON API with the root key.
type client struct {
	t   testing.TB
	key string
}

// do sends a JSON request and decodes a 2xx answer into out (if not nil); anything else fails.
func (c *client) do(ctx context.Context, base, method, path string, in, out any) {
	c.t.Helper()
	if status, body := c.try(ctx, base, method, path, in, out); status/100 != 2 {
		c.t.Fatalf("%s %s%s: %d %s", method, base, path, status, body)
	}
}

// try sends a JSON request and returns the status and body; a 2xx answer is decoded into out.
// Only a failure to reach the node at all fails the test.
func (c *client) try(ctx context.Context, base, method, path string, in, out any) (int, string) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return res.StatusCode, string(b)
}
