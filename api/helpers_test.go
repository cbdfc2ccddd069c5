package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/service"
)

// env is the real stack: an API server over a service over a SQLite file, with a real
// dispatcher (its loop not running) for handshakes and test sends.
type env struct {
	srv   *httptest.Server
	store aviso.Store
	svc   *service.Service
	root  string // the root key
}

// handshakeTimeout stands in for the 5 s of production: a receiver that stalls is refused
// after it, so the test does not wait five seconds.
const handshakeTimeout = 300 * time.Millisecond

// maxPayload is the test server's event data limit, small so that 413 is cheap to provoke.
const maxPayload = 4 << 10

func newEnv(tb testing.TB) *env {
	tb.Helper()
	return newEnvOn(tb, openStore(tb), nil)
}

// newEnvOn is newEnv on a given store; portal, when set, makes the dashboard's portal links.
func newEnvOn(tb testing.TB, store aviso.Store, portal func(*service.Service) api.PortalLinker) *env {
	tb.Helper()
	return envWith(tb, store, api.Config{}, portal)
}

// newEnvWith is newEnv on the given store, with cfg's fields other than Service.
func newEnvWith(tb testing.TB, store aviso.Store, cfg api.Config) *env {
	tb.Helper()
	return envWith(tb, store, cfg, nil)
}

func envWith(tb testing.TB, store aviso.Store, cfg api.Config, portal func(*service.Service) api.PortalLinker) *env {
	tb.Helper()
	ctx := context.Background()
	disp, err := dispatch.New(dispatch.Config{Store: store, AllowPrivateNetworks: true})
	if err != nil {
		tb.Fatalf("new dispatcher: %v", err)
	}
	tb.Cleanup(func() { disp.Close() })
	svc, err := service.New(service.Config{Store: store, Sender: disp, AllowPrivateNetworks: true,
		HandshakeTimeout: handshakeTimeout, MaxPayloadBytes: maxPayload})
	if err != nil {
		tb.Fatalf("new service: %v", err)
	}
	root, err := svc.EnsureRootKey(ctx, "")
	if err != nil || root == "" {
		tb.Fatalf("ensure root key: %q, %v", root, err)
	}
	cfg.Service = svc
	if portal != nil {
		cfg.Portal = portal(svc)
	}
	srv := httptest.NewServer(api.New(cfg))
	tb.Cleanup(srv.Close)
	return &env{srv: srv, store: store, svc: svc, root: root}
}

// do sends a request and returns the status and body. body is marshalled unless it is a string
// (sent as is) or nil.
func (e *env) do(tb testing.TB, method, path, key string, body any, header ...string) (int, []byte) {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, out
}

// call is do that expects status want and decodes the answer into out (when not nil).
func (e *env) call(tb testing.TB, method, path, key string, body any, want int, out any, header ...string) {
	tb.Helper()
	status, b := e.do(tb, method, path, key, body, header...)
	if status != want {
		tb.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// apiError is the error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// tenant creates a tenant with the root key and returns a key scoped to it.
func (e *env) tenant(tb testing.TB, id string) (key string) {
	tb.Helper()
	e.call(tb, "POST", "/v1/tenants", e.root, map[string]any{"id": id, "name": "Tenant " + id}, 201, nil)
	var k struct {
		Key      string `json:"key"`
		TenantID string `json:"tenant_id"`
	}
	e.call(tb, "POST", "/v1/tenants/"+id+"/keys", e.root, nil, 201, &k)
	if k.Key == "" || k.TenantID != id {
		tb.Fatalf("issued key %+v", k)
	}
	return k.Key
}

// eventType adds a catalog entry with an optional schema.
func (e *env) eventType(tb testing.TB, name, schema string) {
	tb.Helper()
	body := map[string]any{"name": name, "description": "test type " + name, "example": map[string]any{"total": 1}}
	if schema != "" {
		body["schema"] = json.RawMessage(schema)
	}
	e.call(tb, "POST", "/v1/event-types", e.root, body, 201, nil)
}

// snapshot is everything stored, as JSON, to check that a refused request changed nothing.
func (e *env) snapshot(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	all := map[string]any{}
	tenants, err := e.store.ListTenants(ctx, aviso.ListParams{Limit: aviso.MaxLimit})
	if err != nil {
		tb.Fatal(err)
	}
	all["tenants"] = tenants
	types, err := e.store.ListEventTypes(ctx, aviso.ListParams{Limit: aviso.MaxLimit})
	if err != nil {
		tb.Fatal(err)
	}
	all["types"] = types
	for _, t := range tenants.Data {
		eps, err := e.store.ListEndpoints(ctx, aviso.ListEndpointsParams{ListParams: aviso.ListParams{Limit: aviso.MaxLimit}, TenantID: t.ID})
		if err != nil {
			tb.Fatal(err)
		}
		evs, err := e.store.ListEvents(ctx, aviso.ListEventsParams{ListParams: aviso.ListParams{Limit: aviso.MaxLimit}, TenantID: t.ID})
		if err != nil {
			tb.Fatal(err)
		}
		ds, err := e.store.ListDeliveries(ctx, aviso.ListDeliveriesParams{ListParams: aviso.ListParams{Limit: aviso.MaxLimit}, TenantID: t.ID})
		if err != nil {
			tb.Fatal(err)
		}
		all[t.ID] = []any{eps, evs, ds}
	}
	b, err := json.Marshal(all)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is an HTTP server on 127.0.0.1 that answers status and records what it gets.
type receiver struct {
	*httptest.Server
	got chan received
	mu  sync.Mutex
	st  int
}

func newReceiver(tb testing.TB, status int) *receiver {
	tb.Helper()
	rc := &receiver{got: make(chan received, 100), st: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.got <- received{Header: r.Header.Clone(), Body: b}
		rc.mu.Lock()
		st := rc.st
		rc.mu.Unlock()
		w.WriteHeader(st)
	}))
	tb.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setStatus(st int) {
	rc.mu.Lock()
	rc.st = st
	rc.mu.Unlock()
}

// next waits (with a deadline) for the next request the receiver got.
func (rc *receiver) next(tb testing.TB) received {
	tb.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("the receiver got no request within 10s")
		return received{}
	}
}

// none checks the receiver got nothing so far.
func (rc *receiver) none(tb testing.TB) {
	tb.Helper()
	select {
	case r := <-rc.got:
		tb.Fatalf("the receiver got an unexpected request: %s", r.Body)
	default:
	}
}

// staller answers nothing until the client gives up: the receiver slower than the handshake.
func staller(tb testing.TB) string {
	tb.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() { close(stop) }) // runs before srv.Close
	return srv.URL
}

// closedPort returns a URL on 127.0.0.1 where nothing listens.
func closedPort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook"
}
