package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/webhook"
)

// waitDeadline bounds every wait on a condition.
const waitDeadline = 20 * time.Second

// testSecret is the endpoints' signing secret.
var testSecret = webhook.NewSecret()

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on 127.0.0.1 that records what it gets and answers with
// handle (200 when nil). It counts requests in progress and their maximum.
type receiver struct {
	srv     *httptest.Server
	handle  func(w http.ResponseWriter, r *http.Request, n int) // n: 1 for the first request
	mu      sync.Mutex
	got     []received
	cur     atomic.Int64
	maxConc atomic.Int64
	arrived chan struct{} // receives (without blocking) on every request
}

func newReceiver(tb testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	tb.Helper()
	rc := &receiver{handle: handle, arrived: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := rc.cur.Add(1)
		defer rc.cur.Add(-1)
		for m := rc.maxConc.Load(); c > m && !rc.maxConc.CompareAndSwap(m, c); m = rc.maxConc.Load() {
		}
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		select {
		case rc.arrived <- struct{}{}:
		default:
		}
		if rc.handle == nil {
			fmt.Fprint(w, "ok")
			return
		}
		rc.handle(w, r, n)
	}))
	tb.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// gate is a channel closed once, at the latest when the test ends, so handlers blocked on it
// return before the server closes.
func gate(tb testing.TB) (ch chan struct{}, open func()) {
	ch = make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(ch) }) }
	tb.Cleanup(open)
	return ch, open
}

func newTenant(tb testing.TB, s aviso.Store) *aviso.Tenant {
	tb.Helper()
	now := time.Now().UTC()
	t := &aviso.Tenant{ID: aviso.NewID(aviso.PrefixTenant, now), Name: "Test", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateTenant(tb.Context(), t); err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return t
}

// newEndpoint stores an endpoint of the tenant posting to url, after mod (if any) has changed it.
func newEndpoint(tb testing.TB, s aviso.Store, tenantID, url string, mod func(*aviso.Endpoint)) *aviso.Endpoint {
	tb.Helper()
	now := time.Now().UTC()
	e := &aviso.Endpoint{
		ID:             aviso.NewID(aviso.PrefixEndpoint, now),
		TenantID:       tenantID,
		URL:            url,
		Format:         aviso.FormatStandard,
		TimeoutSeconds: 5,
		Secrets:        []aviso.Secret{{Value: testSecret}},
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	if mod != nil {
		mod(e)
	}
	if err := s.CreateEndpoint(tb.Context(), e); err != nil {
		tb.Fatalf("create endpoint: %v", err)
	}
	return e
}

// publish stores n events of the tenant, each with one delivery to every endpoint, due at due.
func publish(tb testing.TB, s aviso.Store, tenantID string, n int, due time.Time, eps ...*aviso.Endpoint) []*aviso.Event {
	tb.Helper()
	var (
		batch  []aviso.NewEvent
		events []*aviso.Event
	)
	now := time.Now().UTC()
	for i := range n {
		ev := &aviso.Event{
			ID:        aviso.NewID(aviso.PrefixEvent, now),
			TenantID:  tenantID,
			Type:      "invoice.created",
			Data:      json.RawMessage(fmt.Sprintf(`{"invoice":{"number":"FV-%d","total":1190.5}}`, i)),
			CreatedAt: now,
		}
		ne := aviso.NewEvent{Event: ev}
		for _, e := range eps {
			d := due.UTC()
			ne.Deliveries = append(ne.Deliveries, &aviso.Delivery{
				ID: aviso.NewID(aviso.PrefixDelivery, now), TenantID: tenantID, EventID: ev.ID,
				EndpointID: e.ID, EventType: ev.Type, Status: aviso.StatusPending, NextAttemptAt: &d,
				CreatedAt: now, UpdatedAt: now,
			})
		}
		batch = append(batch, ne)
		events = append(events, ev)
		if len(batch) == 500 || i == n-1 {
			if _, err := s.InsertEvents(tb.Context(), batch); err != nil {
				tb.Fatalf("insert events: %v", err)
			}
			batch = batch[:0]
		}
	}
	return events
}

// deliveries lists every delivery of an endpoint.
func deliveries(tb testing.TB, s aviso.Store, tenantID, endpointID string) []*aviso.Delivery {
	tb.Helper()
	var out []*aviso.Delivery
	p := aviso.ListDeliveriesParams{TenantID: tenantID, EndpointID: endpointID, ListParams: aviso.ListParams{Limit: aviso.MaxLimit}}
	for {
		page, err := s.ListDeliveries(context.WithoutCancel(tb.Context()), p)
		if err != nil {
			tb.Fatalf("list deliveries: %v", err)
		}
		out = append(out, page.Data...)
		if !page.HasMore {
			return out
		}
		p.After = page.NextCursor
	}
}

// countStatus counts an endpoint's deliveries with the status.
func countStatus(tb testing.TB, s aviso.Store, tenantID, endpointID string, st aviso.DeliveryStatus) int {
	tb.Helper()
	n := 0
	for _, d := range deliveries(tb, s, tenantID, endpointID) {
		if d.Status == st {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after waitDeadline.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.After(waitDeadline)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			tb.Fatalf("timed out after %s waiting for %s", waitDeadline, what)
		case <-tick.C:
		}
	}
}

// running is a dispatcher whose Run is under way.
type running struct {
	d      *dispatch.Dispatcher
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Run and waits for it to return.
func (r *running) stop(tb testing.TB) {
	tb.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			tb.Errorf("Run: %v", err)
		}
		r.done <- nil // later stops return at once
	case <-time.After(waitDeadline):
		tb.Fatalf("Run did not return within %s of being cancelled", waitDeadline)
	}
}

// start creates a dispatcher on cfg and runs it until the test ends. At the end of the test the
// gates are opened first, so that handlers blocked on them let the dispatcher drain.
func start(tb testing.TB, cfg dispatch.Config, gates ...func()) *running {
	tb.Helper()
	d, err := dispatch.New(cfg)
	if err != nil {
		tb.Fatalf("dispatch.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(tb.Context()))
	r := &running{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		for _, open := range gates {
			open()
		}
		r.stop(tb)
		d.Close()
	})
	return r
}

// backend opens a real store. key names the database (a file for SQLite, a schema for
// PostgreSQL) so that a test can reopen the same one.
type backend struct {
	name   string
	newKey func(tb testing.TB) string
	open   func(tb testing.TB, key string) aviso.Store // closed when the test ends
}

// closer closes a store once, whether the test closes it early or cleanup does.
type closer struct {
	aviso.Store
	once sync.Once
	err  error
}

func (c *closer) Close() error {
	c.once.Do(func() { c.err = c.Store.Close() })
	return c.err
}

func closeAtEnd(tb testing.TB, s aviso.Store) aviso.Store {
	tb.Helper()
	c := &closer{Store: s}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	if k, ok := s.(aviso.LeaseKeeper); ok {
		return keeperCloser{c, k} // keep the optional interface visible to the dispatcher
	}
	return c
}

// keeperCloser is a closer of a store that renews leases.
type keeperCloser struct {
	*closer
	aviso.LeaseKeeper
}
