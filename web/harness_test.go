package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/catalog"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/web"
)

const rootKey = "avk_root_key_for_web_tests"

// clock is a settable clock for the dashboard (portal link and session expiry).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the real stack behind the dashboard: a SQLite store in a temporary directory, the
// service, a dispatcher that may reach 127.0.0.1, and the dashboard on an httptest server.
type env struct {
	store     aviso.Store
	svc       *service.Service
	ui        *web.Handler
	srv       *httptest.Server
	clock     *clock
	tenantKey string // a key scoped to tenant "acme"
}

var root = aviso.Principal{KeyID: aviso.RootKeyID}

func newEnv(tb testing.TB, mod ...func(*web.Config)) *env {
	tb.Helper()
	ctx := context.Background()
	st := testenv.SQLite(tb)
	d, err := dispatch.New(dispatch.Config{Store: st, AllowPrivateNetworks: true})
	if err != nil {
		tb.Fatalf("dispatcher: %v", err)
	}
	tb.Cleanup(func() { d.Close() })
	svc, err := service.New(service.Config{Store: st, Sender: d, AllowPrivateNetworks: true,
		HandshakeTimeout: 3 * time.Second})
	if err != nil {
		tb.Fatalf("service: %v", err)
	}
	if err := svc.SeedCatalog(ctx, catalog.EventTypes()); err != nil {
		tb.Fatalf("seed catalog: %v", err)
	}
	if _, err := svc.EnsureRootKey(ctx, rootKey); err != nil {
		tb.Fatalf("root key: %v", err)
	}
	for _, id := range []string{"acme", "other"} {
		if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: id, Name: "Tenant " + id}); err != nil {
			tb.Fatalf("create tenant: %v", err)
		}
	}
	key, _, err := svc.CreateTenantKey(ctx, root, "acme")
	if err != nil {
		tb.Fatalf("tenant key: %v", err)
	}
	c := &clock{t: time.Now().UTC()}
	cfg := web.Config{Service: svc, Store: st, Now: c.Now, PortalSecret: []byte("test-secret")}
	for _, m := range mod {
		m(&cfg)
	}
	ui, err := web.New(cfg)
	if err != nil {
		tb.Fatalf("web.New: %v", err)
	}
	srv := httptest.NewServer(ui)
	tb.Cleanup(srv.Close)
	return &env{store: st, svc: svc, ui: ui, srv: srv, clock: c, tenantKey: key}
}

// receiver is an endpoint on 127.0.0.1 that answers with status and records the bodies it got.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	bodies []string
	got    chan struct{}
}

func newReceiver(tb testing.TB, status int) *receiver {
	tb.Helper()
	r := &receiver{status: status, got: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
		_, _ = io.WriteString(w, `<b>received</b>`)
		r.got <- struct{}{}
	}))
	tb.Cleanup(r.Close)
	return r
}

func (r *receiver) setStatus(s int) { r.mu.Lock(); r.status = s; r.mu.Unlock() }

// user is a browser-like client: a cookie jar, no automatic redirects.
type user struct {
	tb   testing.TB
	e    *env
	c    *http.Client
	csrf string // from the last page that had a form
}

func (e *env) user(tb testing.TB) *user {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	return &user{tb: tb, e: e, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status   int
	body     string
	location string
	header   http.Header
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (u *user) do(req *http.Request) resp {
	u.tb.Helper()
	res, err := u.c.Do(req)
	if err != nil {
		u.tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		u.tb.Fatalf("read body: %v", err)
	}
	if m := csrfRe.FindStringSubmatch(string(b)); m != nil {
		u.csrf = m[1]
	}
	return resp{status: res.StatusCode, body: string(b), location: res.Header.Get("Location"), header: res.Header}
}

func (u *user) get(path string, hdr ...string) resp {
	u.tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u.e.srv.URL+path, nil)
	if err != nil {
		u.tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return u.do(req)
}

// post submits a form with the current CSRF token (unless the form sets csrf itself).
func (u *user) post(path string, form url.Values, hdr ...string) resp {
	u.tb.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", u.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, u.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		u.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return u.do(req)
}

// follow GETs a redirect's target.
func (u *user) follow(r resp) resp {
	u.tb.Helper()
	if r.status != http.StatusSeeOther && r.status != http.StatusFound {
		u.tb.Fatalf("want a redirect, got %d: %s", r.status, excerpt(r.body))
	}
	return u.get(r.location)
}

// login signs in with key and returns the start page.
func (u *user) login(key string) resp {
	u.tb.Helper()
	if r := u.get("/ui/login"); r.status != http.StatusOK {
		u.tb.Fatalf("login page: %d", r.status)
	}
	r := u.post("/ui/login", url.Values{"key": {key}})
	if r.status != http.StatusSeeOther {
		u.tb.Fatalf("sign in: %d: %s", r.status, excerpt(r.body))
	}
	return u.follow(r)
}

func excerpt(s string) string {
	if i := strings.Index(s, `<main`); i >= 0 {
		s = s[i:]
	}
	return s[:min(len(s), 1500)]
}

func wantStatus(tb testing.TB, r resp, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d: %s", r.status, status, excerpt(r.body))
	}
}

func wantContains(tb testing.TB, r resp, subs ...string) {
	tb.Helper()
	for _, s := range subs {
		if !strings.Contains(r.body, s) {
			tb.Errorf("page lacks %q: %s", s, excerpt(r.body))
		}
	}
}

// createEndpoint stores an endpoint through the service (not the form) for tests about others.
func (e *env) createEndpoint(tb testing.TB, tenant, url string) *aviso.Endpoint {
	tb.Helper()
	no := false
	ep, err := e.svc.CreateEndpoint(context.Background(), root, tenant, service.EndpointInput{URL: url, Verify: &no})
	if err != nil {
		tb.Fatalf("create endpoint: %v", err)
	}
	return ep
}

// waitFor receives one signal from ch or fails after a deadline.
func waitFor(tb testing.TB, ch <-chan struct{}, what string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		tb.Fatalf("timed out waiting for %s", what)
	}
}
