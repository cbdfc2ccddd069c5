package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/aviso-dev/aviso/service"
)

// feedStores are the stores the feed's tests run on: both.
var feedStores = []struct {
	name string
	open func(tb testing.TB) aviso.Store
}{
	{"sqlite", openStore},
	{"postgres", func(tb testing.TB) aviso.Store {
		url, schema := testenv.PostgresSchema(tb, "aviso_api_")
		s, err := postgres.Open(context.Background(), url, postgres.Options{Migrate: true, Schema: schema})
		if err != nil {
			tb.Fatalf("open postgres: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}},
}

// feedAnswer is the JSON of GET …/events.
type feedAnswer struct {
	Data []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"data"`
	NextCursor string `json:"next_cursor"`
	HasMore    bool   `json:"has_more"`
}

// publishers has 8 goroutines publish through the API, single events and batches mixed, and
// returns the IDs they publish and a channel closed when they are done.
func publishers(tb testing.TB, e *env, key, tenant string) (ids []string, done <-chan struct{}) {
	tb.Helper()
	const workers, rounds = 8, 12
	for w := range workers {
		for i := range rounds {
			for j := range 1 + i%3 {
				ids = append(ids, fmt.Sprintf("w%d-%02d-%d", w, i, j))
			}
		}
	}
	ch := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				var batch []any
				for j := range 1 + i%3 {
					batch = append(batch, map[string]any{"id": fmt.Sprintf("w%d-%02d-%d", w, i, j), "type": "invoice.created",
						"data": map[string]any{"total": i}})
				}
				if len(batch) == 1 {
					e.call(tb, "POST", "/v1/tenants/"+tenant+"/events", key, batch[0], 202, nil)
				} else {
					e.call(tb, "POST", "/v1/tenants/"+tenant+"/events/batch", key, map[string]any{"events": batch}, 202, nil)
				}
			}
		})
	}
	go func() { wg.Wait(); close(ch) }()
	return ids, ch
}

// fullRead reads the whole feed from the start and returns the event IDs in order.
func fullRead(tb testing.TB, e *env, key, tenant string) []string {
	tb.Helper()
	var out []string
	cursor := ""
	for {
		var a feedAnswer
		e.call(tb, "GET", "/v1/tenants/"+tenant+"/events?limit=500&after="+cursor, key, nil, 200, &a)
		for _, d := range a.Data {
			out = append(out, d.ID)
		}
		if len(a.Data) == 0 {
			return out
		}
		cursor = a.NextCursor
	}
}

// TestFeedPollerExactlyOnce: a poller that keeps nothing but its cursor, stopped and started
// again after every page while 8 publishers commit, sees every event once, in the order of a
// later full read.
func TestFeedPollerExactlyOnce(t *testing.T) {
	for _, st := range feedStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, st.open(t), api.Config{})
			e.eventType(t, "invoice.created", "")
			key := e.tenant(t, "acme")
			want, done := publishers(t, e, key, "acme")

			seen := map[string]bool{}
			var order []string
			cursor, restarts := "", 0
			deadline := time.Now().Add(60 * time.Second)
			for len(order) < len(want) {
				if time.Now().After(deadline) {
					t.Fatalf("after %d restarts the poller has seen %d of %d events", restarts, len(order), len(want))
				}
				restarts++
				var a feedAnswer
				e.call(t, "GET", "/v1/tenants/acme/events?limit=7&wait=1s&after="+cursor, key, nil, 200, &a)
				if a.NextCursor == "" {
					t.Fatal("next_cursor is empty")
				}
				for _, d := range a.Data {
					if seen[d.ID] {
						t.Fatalf("event %s seen twice (restart %d, cursor %q)", d.ID, restarts, cursor)
					}
					seen[d.ID] = true
					order = append(order, d.ID)
				}
				cursor = a.NextCursor
			}
			<-done
			// Nothing more after the last cursor, and the order is the feed's.
			var a feedAnswer
			e.call(t, "GET", "/v1/tenants/acme/events?after="+cursor, key, nil, 200, &a)
			if len(a.Data) != 0 || a.NextCursor == "" {
				t.Errorf("after the last cursor: %d events, cursor %q; want none and a cursor", len(a.Data), a.NextCursor)
			}
			if full := fullRead(t, e, key, "acme"); !slices.Equal(full, order) {
				t.Errorf("a full read gives %d events in another order than the poller saw", len(full))
			}
			for _, id := range want {
				if !seen[id] {
					t.Errorf("event %s never seen", id)
				}
			}
		})
	}
}

// sseMessage is one block of an event stream.
type sseMessage struct {
	id, event, data string
	comment         bool
}

// sseReader reads an event stream block by block.
type sseReader struct{ r *bufio.Reader }

func (s *sseReader) next() (sseMessage, error) {
	var m sseMessage
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return m, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			m.comment = true
		case "id":
			m.id = value
		case "event":
			m.event = value
		case "data":
			m.data += value
		}
	}
}

// stream opens the tenant's event stream with the headers (pairs) given.
func stream(tb testing.TB, e *env, ctx context.Context, path, key string, header ...string) *http.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

// TestFeedStreamExactlyOnce: an SSE consumer that disconnects after a few messages and
// reconnects with Last-Event-ID, while 8 publishers commit, sees every event once, in feed order.
func TestFeedStreamExactlyOnce(t *testing.T) {
	for _, st := range feedStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, st.open(t), api.Config{})
			e.eventType(t, "invoice.created", "")
			key := e.tenant(t, "acme")
			want, done := publishers(t, e, key, "acme")

			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			seen := map[string]bool{}
			var order []string
			last := aviso.FeedCursor{}.String() // the start of the feed
			connects := 0
			for len(order) < len(want) {
				connects++
				resp := stream(t, e, ctx, "/v1/tenants/acme/events/stream", key, "Last-Event-ID", last)
				if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
					t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				rd := &sseReader{bufio.NewReader(resp.Body)}
				for n := 1 + rand.IntN(15); n > 0 && len(order) < len(want); {
					m, err := rd.next()
					if err != nil {
						t.Fatalf("read the stream (connection %d, %d of %d events seen): %v", connects, len(order), len(want), err)
					}
					if m.id != "" {
						last = m.id
					}
					if m.data == "" {
						continue
					}
					var ev aviso.Event
					if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
						t.Fatalf("data %q: %v", m.data, err)
					}
					if m.event != ev.Type || ev.TenantID != "acme" || m.id == "" {
						t.Fatalf("message id %q event %q for an event of type %q, tenant %q", m.id, m.event, ev.Type, ev.TenantID)
					}
					if seen[ev.ID] {
						t.Fatalf("event %s seen twice (connection %d)", ev.ID, connects)
					}
					seen[ev.ID] = true
					order = append(order, ev.ID)
					n--
				}
				resp.Body.Close()
			}
			<-done
			if full := fullRead(t, e, key, "acme"); !slices.Equal(full, order) {
				t.Errorf("a full read gives another order than the stream's %d events over %d connections", len(order), connects)
			}
		})
	}
}

// hookStore tells the test when a feed read found nothing, so that it publishes only once the
// long-poll is waiting.
type hookStore struct {
	aviso.Store
	empty chan struct{}
}

func (s *hookStore) ReadFeed(ctx context.Context, p aviso.FeedParams) (*aviso.FeedPage, error) {
	pg, err := s.Store.ReadFeed(ctx, p)
	if err == nil && !p.End && len(pg.Items) == 0 && !pg.Pending {
		select {
		case s.empty <- struct{}{}:
		default:
		}
	}
	return pg, err
}

// TestFeedLongPoll: a read with wait= answers with the event published while it waits, and with
// an empty page and the same position when the wait ends without one.
func TestFeedLongPoll(t *testing.T) {
	for _, st := range feedStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			hs := &hookStore{Store: st.open(t), empty: make(chan struct{}, 1)}
			e := newEnvWith(t, hs, api.Config{})
			e.eventType(t, "invoice.created", "")
			key := e.tenant(t, "acme")
			var start feedAnswer
			e.call(t, "GET", "/v1/tenants/acme/events", key, nil, 200, &start)
			if len(start.Data) != 0 || start.NextCursor == "" {
				t.Fatalf("empty feed: %+v; want no events and a cursor", start)
			}

			// A wait that ends: an empty page, and the cursor still reads everything after it.
			var idle feedAnswer
			e.call(t, "GET", "/v1/tenants/acme/events?wait=200ms&after="+start.NextCursor, key, nil, 200, &idle)
			if len(idle.Data) != 0 || idle.NextCursor == "" {
				t.Fatalf("idle long-poll: %+v", idle)
			}

			<-hs.empty // drain what the reads above signalled
			got := make(chan feedAnswer, 1)
			go func() {
				var a feedAnswer
				e.call(t, "GET", "/v1/tenants/acme/events?wait=25s&types=invoice.created&after="+idle.NextCursor, key, nil, 200, &a)
				got <- a
			}()
			select {
			case <-hs.empty:
			case <-time.After(10 * time.Second):
				t.Fatal("the long-poll never read the feed")
			}
			e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"id": "FAC-1", "type": "invoice.created", "data": map[string]any{}}, 202, nil)
			a := <-got
			if len(a.Data) != 1 || a.Data[0].ID != "FAC-1" {
				t.Fatalf("the long-poll answered %+v; want the event published while it waited", a)
			}
			var again feedAnswer
			e.call(t, "GET", "/v1/tenants/acme/events?after="+start.NextCursor, key, nil, 200, &again)
			if len(again.Data) != 1 || again.Data[0].ID != "FAC-1" {
				t.Errorf("after the empty feed's cursor: %+v; want FAC-1", again)
			}
		})
	}
}

func TestFeedErrors(t *testing.T) {
	e := newEnv(t)
	e.eventType(t, "invoice.created", "")
	key := e.tenant(t, "acme")
	e.tenant(t, "other")
	tests := []struct {
		name, path string
		header     []string
		status     int
		code       string
		field      string
	}{
		{"bad cursor", "/v1/tenants/acme/events?after=nope", nil, 422, "invalid_cursor", "after"},
		{"bad Last-Event-ID", "/v1/tenants/acme/events/stream", []string{"Last-Event-ID", "42"}, 422, "invalid_cursor", "Last-Event-ID"},
		{"wait too long", "/v1/tenants/acme/events?wait=31s", nil, 422, "invalid", "wait"},
		{"bad since", "/v1/tenants/acme/events?since=yesterday", nil, 422, "invalid", "since"},
		{"unknown type", "/v1/tenants/acme/events?types=invoice.created,invoice.craeted", nil, 422, "invalid", "types"},
		{"unknown type, stream", "/v1/tenants/acme/events/stream?types=nope", nil, 422, "invalid", "types"},
		{"other tenant's feed", "/v1/tenants/other/events", nil, 404, "not_found", ""},
		{"other tenant's stream", "/v1/tenants/other/events/stream", nil, 404, "not_found", ""},
		{"other tenant's deliveries", "/v1/tenants/other/deliveries", nil, 404, "not_found", ""},
		{"bad status", "/v1/tenants/acme/deliveries?status=lost", nil, 422, "invalid", "status"},
		{"unknown endpoint", "/v1/tenants/acme/deliveries?endpoint_id=ep_nope", nil, 404, "not_found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.do(t, "GET", tc.path, key, nil, tc.header...)
			var ae apiError
			if err := json.Unmarshal(body, &ae); err != nil || status != tc.status || ae.Error.Code != tc.code || ae.Error.Field != tc.field {
				t.Errorf("GET %s: %d %s; want %d %s field %q", tc.path, status, body, tc.status, tc.code, tc.field)
			}
		})
	}
}

// TestFeedStreamKeepAliveAndShutdown: an idle stream gets a comment line every StreamKeepAlive,
// starts at the end of the feed when given no cursor, and ends when the server shuts down.
func TestFeedStreamKeepAliveAndShutdown(t *testing.T) {
	shutdown, stop := context.WithCancel(context.Background())
	defer stop()
	e := newEnvWith(t, openStore(t), api.Config{Shutdown: shutdown, StreamKeepAlive: 50 * time.Millisecond})
	e.eventType(t, "invoice.created", "")
	key := e.tenant(t, "acme")
	e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"id": "OLD", "type": "invoice.created", "data": map[string]any{}}, 202, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	resp := stream(t, e, ctx, "/v1/tenants/acme/events/stream", key)
	defer resp.Body.Close()
	rd := &sseReader{bufio.NewReader(resp.Body)}
	var start string
	for keepAlives := 0; keepAlives < 2; {
		m, err := rd.next()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.data != "" {
			t.Fatalf("a stream without a cursor sent an event published before it started: %+v", m)
		}
		if m.id != "" && start == "" {
			start = m.id
		}
		if m.comment {
			keepAlives++
		}
	}
	if start == "" {
		t.Fatal("the stream never said where it starts (an id line)")
	}
	e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"id": "NEW", "type": "invoice.created", "data": map[string]any{}}, 202, nil)
	for {
		m, err := rd.next()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.data != "" {
			if !strings.Contains(m.data, `"id":"NEW"`) {
				t.Fatalf("first event %s; want NEW", m.data)
			}
			break
		}
	}
	stop() // the server shuts down: the stream ends cleanly
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the stream did not end cleanly at shutdown: %v", err)
	}
}

// TestTenantDeliveries: the tenant-wide deliveries listing with its filters.
func TestTenantDeliveries(t *testing.T) {
	e := newEnv(t)
	e.eventType(t, "invoice.created", "")
	e.eventType(t, "invoice.paid", "")
	key := e.tenant(t, "acme")
	otherKey := e.tenant(t, "other")
	rc := newReceiver(t, 200)
	var ep1, ep2 struct{ ID string }
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL + "/a", "verify": false}, 201, &ep1)
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL + "/b", "verify": false,
		"event_types": []string{"invoice.paid"}}, 201, &ep2)
	var oep struct{ ID string }
	e.call(t, "POST", "/v1/tenants/other/endpoints", otherKey, map[string]any{"url": rc.URL + "/o", "verify": false}, 201, &oep)
	e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.created", "external_reference": "FAC-1", "data": map[string]any{}}, 202, nil)
	e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.paid", "external_reference": "FAC-1", "data": map[string]any{}}, 202, nil)
	e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.paid", "external_reference": "FAC-2", "data": map[string]any{}}, 202, nil)
	e.call(t, "POST", "/v1/tenants/other/events", otherKey, map[string]any{"type": "invoice.paid", "external_reference": "FAC-1", "data": map[string]any{}}, 202, nil)

	type page struct {
		Data []struct {
			EndpointID string `json:"endpoint_id"`
			EventType  string `json:"event_type"`
			TenantID   string `json:"tenant_id"`
		} `json:"data"`
		NextCursor string `json:"next_cursor"`
		HasMore    bool   `json:"has_more"`
	}
	tests := []struct {
		query string
		want  int
	}{
		{"", 5},
		{"?limit=2", 2},
		{"?type=invoice.paid", 4},
		{"?external_reference=FAC-1", 3},
		{"?external_reference=FAC-1&endpoint_id=" + ep2.ID, 1},
		{"?status=pending&type=invoice.created", 1},
		{"?status=failed", 0},
	}
	for _, tc := range tests {
		var p page
		e.call(t, "GET", "/v1/tenants/acme/deliveries"+tc.query, key, nil, 200, &p)
		if len(p.Data) != tc.want {
			t.Errorf("deliveries%s: %d, want %d", tc.query, len(p.Data), tc.want)
		}
		for _, d := range p.Data {
			if d.TenantID != "acme" {
				t.Errorf("deliveries%s: a delivery of tenant %s", tc.query, d.TenantID)
			}
		}
	}
	// Pages follow each other.
	var p1, p2 page
	e.call(t, "GET", "/v1/tenants/acme/deliveries?limit=3", key, nil, 200, &p1)
	e.call(t, "GET", "/v1/tenants/acme/deliveries?limit=3&after="+p1.NextCursor, key, nil, 200, &p2)
	if !p1.HasMore || len(p2.Data) != 2 || p2.HasMore {
		t.Errorf("pages of 3: %d (more %v) then %d (more %v); want 3 then 2", len(p1.Data), p1.HasMore, len(p2.Data), p2.HasMore)
	}
	// The other tenant's endpoint is not acme's.
	status, _ := e.do(t, "GET", "/v1/tenants/acme/deliveries?endpoint_id="+oep.ID, key, nil)
	if status != 404 {
		t.Errorf("acme's deliveries of another tenant's endpoint: %d, want 404", status)
	}
}

// TestFeedAcrossNodes: two nodes on one PostgreSQL schema. A poller that resumes from its cursor
// on one node then the other, while publishers publish on both, sees every event once in one
// order; a long-poll on one node is woken by a publish on the other (NOTIFY aviso_events).
func TestFeedAcrossNodes(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "aviso_api_nodes_")
	open := func() aviso.Store {
		s, err := postgres.Open(context.Background(), url, postgres.Options{Migrate: true, Schema: schema})
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := newEnvWith(t, open(), api.Config{})
	a.eventType(t, "invoice.created", "")
	key := a.tenant(t, "acme")
	// Node b: its own store, service and API on the same schema (the root key is a's).
	hs := &hookStore{Store: open(), empty: make(chan struct{}, 1)}
	svc, err := service.New(service.Config{Store: hs, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Service: svc}))
	t.Cleanup(srv.Close)
	b := &env{srv: srv, store: hs, svc: svc, root: a.root}

	want, done := publishers(t, a, key, "acme") // on a; and a few on b meanwhile
	for i := range 10 {
		b.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"id": fmt.Sprintf("b-%d", i), "type": "invoice.created", "data": map[string]any{}}, 202, nil)
		want = append(want, fmt.Sprintf("b-%d", i))
	}
	seen := map[string]bool{}
	var order []string
	cursor := ""
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; len(order) < len(want); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the poller has seen %d of %d events", len(order), len(want))
		}
		node := []*env{a, b}[i%2]
		var page feedAnswer
		node.call(t, "GET", "/v1/tenants/acme/events?limit=9&wait=1s&after="+cursor, key, nil, 200, &page)
		for _, d := range page.Data {
			if seen[d.ID] {
				t.Fatalf("event %s seen twice", d.ID)
			}
			seen[d.ID] = true
			order = append(order, d.ID)
		}
		cursor = page.NextCursor
	}
	<-done
	if full := fullRead(t, b, key, "acme"); !slices.Equal(full, order) {
		t.Errorf("a full read on the other node gives another order than the poller saw")
	}

	// A long-poll on b, woken by a publish on a.
	for len(hs.empty) > 0 {
		<-hs.empty
	}
	got := make(chan feedAnswer, 1)
	go func() {
		var page feedAnswer
		b.call(t, "GET", "/v1/tenants/acme/events?wait=25s&after="+cursor, key, nil, 200, &page)
		got <- page
	}()
	select {
	case <-hs.empty:
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll never read the feed")
	}
	a.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"id": "from-a", "type": "invoice.created", "data": map[string]any{}}, 202, nil)
	if page := <-got; len(page.Data) != 1 || page.Data[0].ID != "from-a" {
		t.Fatalf("the long-poll on the other node answered %+v; want the event published on the first", page)
	}
}
