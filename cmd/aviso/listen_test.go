package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/internal/testnode"
	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/webhook"
)

const testRootKey = "avk_listen_test_root_key"

// node is a real Aviso node (SQLite in dir) run in-process until stop.
type node struct {
	srv  *server.Server
	stop func()
}

func startNode(tb testing.TB, addr, dir string) *node {
	tb.Helper()
	tn := testnode.Run(tb, server.Config{Addr: addr, DataDir: dir, RootKey: testRootKey, AllowPrivateNetworks: true,
		DisableUI: true})
	return &node{srv: tn.Server, stop: tn.Stop}
}

// api calls the node's API with key and decodes the answer into out.
func (n *node) api(tb testing.TB, method, path, key string, body any, want int, out any) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.srv.URL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		tb.Fatalf("%s %s: %d %s; want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatal(err)
		}
	}
}

// verifiedReceiver is a local receiver behind the webhook package's Middleware: got receives the
// ID of every event whose signature verified; requests counts every request by webhook-id.
type verifiedReceiver struct {
	*httptest.Server
	got      chan string
	mu       sync.Mutex
	requests map[string]int
}

func newVerifiedReceiver(tb testing.TB, opts webhook.MiddlewareOptions) *verifiedReceiver {
	tb.Helper()
	rc := &verifiedReceiver{got: make(chan string, 100), requests: map[string]int{}}
	h, err := webhook.Middleware(opts, func(w http.ResponseWriter, r *http.Request, ev *webhook.ReceivedEvent) {
		rc.got <- ev.ID
	})
	if err != nil {
		tb.Fatal(err)
	}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.requests[r.Header.Get(webhook.HeaderID)]++
		rc.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(rc.Close)
	return rc
}

func (rc *verifiedReceiver) next(tb testing.TB) string {
	tb.Helper()
	select {
	case id := <-rc.got:
		return id
	case <-time.After(30 * time.Second):
		tb.Fatal("the receiver got no verified event within 30 s")
		return ""
	}
}

// startListen runs `aviso listen` with args until the test ends; it returns its output.
func startListen(tb testing.TB, environ map[string]string, args ...string) *testenv.LogBuffer {
	tb.Helper()
	out := &testenv.LogBuffer{}
	m := NewMain(out, out, env(environ))
	if err := m.ParseFlags(append([]string{"listen"}, args...)); err != nil {
		tb.Fatalf("listen %v: %v", args, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("listen ended with %v; output:\n%s", err, out)
		}
	})
	return out
}

// TestListenForwardsAcrossARestart: aviso listen forwards each event, signed so that the webhook
// package's middleware accepts it, and after Aviso restarts it reconnects and goes on from the
// last event it forwarded: every event once.
func TestListenForwardsAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, "127.0.0.1:0", dir)
	addr := n.srv.Addr()
	n.api(t, "POST", "/v1/tenants", testRootKey, map[string]any{"id": "acme", "name": "ACME"}, 201, nil)
	var k struct{ Key string }
	n.api(t, "POST", "/v1/tenants/acme/keys", testRootKey, nil, 201, &k)

	secret := webhook.NewSecret()
	rc := newVerifiedReceiver(t, webhook.MiddlewareOptions{Secrets: []string{secret}})
	since := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	publish := func(id string) {
		n.api(t, "POST", "/v1/tenants/acme/events", k.Key, map[string]any{"id": id, "type": "invoice.created",
			"data": map[string]any{"id": id, "number": "FV-" + id, "total": 100}}, 202, nil)
	}
	publish("E1")
	out := startListen(t, map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": k.Key},
		"--forward-to", rc.URL+"/webhook", "--secret", secret, "--since", since, "--types", "invoice.created,invoice.paid")
	publish("E2")
	for _, want := range []string{"E1", "E2"} {
		if got := rc.next(t); got != want {
			t.Fatalf("received %s, want %s; listen said:\n%s", got, want, out)
		}
	}

	n.stop()
	n = startNode(t, addr, dir) // the same data, the same address
	publish("E3")
	publish("E4")
	for _, want := range []string{"E3", "E4"} {
		if got := rc.next(t); got != want {
			t.Fatalf("after the restart received %s, want %s; listen said:\n%s", got, want, out)
		}
	}
	rc.mu.Lock()
	for id, count := range rc.requests {
		if count != 1 {
			t.Errorf("event %s forwarded %d times", id, count)
		}
	}
	rc.mu.Unlock()
	// The line of a forward follows the receiver's answer.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "E4  → 200") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	said := out.String()
	for _, want := range []string{"Signing secret: " + secret, "invoice.created", "E1  → 200", "E4  → 200", "connection to Aviso lost", "reconnected"} {
		if !strings.Contains(said, want) {
			t.Errorf("listen's output lacks %q:\n%s", want, said)
		}
	}
}

// TestListenFormats: in the facturascripts and tusfacturas formats the forwarded request carries
// the format's own headers, which the middleware checks.
func TestListenFormats(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", t.TempDir())
	n.api(t, "POST", "/v1/tenants", testRootKey, map[string]any{"id": "acme", "name": "ACME"}, 201, nil)
	for _, tc := range []struct {
		format, eventType string
		opts              func(secret, token string) webhook.MiddlewareOptions
	}{
		{"facturascripts", "invoice.paid", func(s, _ string) webhook.MiddlewareOptions {
			return webhook.MiddlewareOptions{Secrets: []string{s}, HMACSecret: s}
		}},
		{"tusfacturas", "invoice.created", func(s, tok string) webhook.MiddlewareOptions {
			return webhook.MiddlewareOptions{Secrets: []string{s}, Token: tok}
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			secret, token := webhook.NewSecret(), "tok-"+tc.format
			rc := newVerifiedReceiver(t, tc.opts(secret, token))
			id := "F-" + tc.format
			since := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
			n.api(t, "POST", "/v1/tenants/acme/events", testRootKey, map[string]any{"id": id, "type": tc.eventType,
				"external_reference": id, "data": map[string]any{"id": id, "number": "FV-1", "total": 100, "paid_at": "2026-03-04T10:00:00Z"}}, 202, nil)
			out := startListen(t, map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": testRootKey},
				"--tenant", "acme", "--forward-to", rc.URL, "--secret", secret, "--token", token, "--format", tc.format,
				"--since", since, "--types", tc.eventType)
			if got := rc.next(t); got != id {
				t.Fatalf("received %s, want %s; listen said:\n%s", got, id, out)
			}
		})
	}
}

// TestListenErrors: what a person gets wrong is said plainly, before anything is forwarded.
func TestListenErrors(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", t.TempDir())
	n.api(t, "POST", "/v1/tenants", testRootKey, map[string]any{"id": "acme", "name": "ACME"}, 201, nil)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error
	}{
		{"no key", map[string]string{"AVISO_URL": n.srv.URL()}, []string{"--forward-to", "http://127.0.0.1:1/"}, "--key or set AVISO_KEY"},
		{"no forward-to", map[string]string{"AVISO_KEY": "k"}, nil, "--forward-to"},
		{"bad format", map[string]string{"AVISO_KEY": "k"}, []string{"--forward-to", "http://127.0.0.1:1/", "--format", "xml"}, "--format"},
		{"bad key", map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": "avk_wrong"}, []string{"--forward-to", "http://127.0.0.1:1/"}, "refused the API key"},
		{"unreachable", map[string]string{"AVISO_URL": closed.URL, "AVISO_KEY": "k"}, []string{"--forward-to", "http://127.0.0.1:1/"}, "cannot reach Aviso at " + closed.URL},
		{"root key without tenant", map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": testRootKey}, []string{"--forward-to", "http://127.0.0.1:1/"}, "--tenant"},
		{"unknown type", map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": testRootKey},
			[]string{"--tenant", "acme", "--forward-to", "http://127.0.0.1:1/", "--types", "invoice.craeted"}, `"invoice.craeted" is not in the event catalog`},
		{"unknown tenant", map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": testRootKey},
			[]string{"--tenant", "nobody", "--forward-to", "http://127.0.0.1:1/"}, `tenant "nobody" not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			m := NewMain(&out, &out, env(tc.env))
			err := m.ParseFlags(append([]string{"listen"}, tc.args...))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				err = m.Run(ctx)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one that says %q", err, tc.want)
			}
		})
	}
}

// TestTrigger: aviso trigger publishes an event of the type with the catalog's example (or
// --data), and says plainly what is wrong.
func TestTrigger(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", t.TempDir())
	n.api(t, "POST", "/v1/tenants", testRootKey, map[string]any{"id": "acme", "name": "ACME"}, 201, nil)
	var k struct{ Key string }
	n.api(t, "POST", "/v1/tenants/acme/keys", testRootKey, nil, 201, &k)
	var et struct{ Example json.RawMessage }
	n.api(t, "GET", "/v1/event-types/invoice.paid", k.Key, nil, 200, &et)
	trigger := func(environ map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		m := NewMain(&out, &out, env(environ))
		if err := m.ParseFlags(append([]string{"trigger"}, args...)); err != nil {
			return out.String(), err
		}
		err := m.Run(context.Background())
		return out.String(), err
	}
	keyEnv := map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": k.Key}

	said, err := trigger(keyEnv, "invoice.paid", "--external-reference", "FAC-9", "--id", "T1")
	if err != nil || !strings.Contains(said, "Published T1 (invoice.paid) for tenant acme") {
		t.Fatalf("trigger: %q, %v", said, err)
	}
	var ev struct {
		Type              string          `json:"type"`
		Data              json.RawMessage `json:"data"`
		ExternalReference string          `json:"external_reference"`
	}
	n.api(t, "GET", "/v1/tenants/acme/events/T1", k.Key, nil, 200, &ev)
	var a, b any
	_ = json.Unmarshal(ev.Data, &a)
	_ = json.Unmarshal(et.Example, &b)
	if ev.Type != "invoice.paid" || ev.ExternalReference != "FAC-9" || !jsonEqual(a, b) {
		t.Errorf("published %+v; want the catalog's example %s", ev, et.Example)
	}
	if said, err := trigger(keyEnv, "invoice.paid", "--id", "T1"); err != nil || !strings.Contains(said, "published before") {
		t.Errorf("trigger again: %q, %v", said, err)
	}
	// --data, and the root key with --tenant (flags before the type).
	if _, err := trigger(map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": testRootKey}, "--tenant", "acme", "--id", "T2",
		"--data", `{"id":"X","number":"FV-2","total":5,"paid_at":"2026-03-04T10:00:00Z"}`, "invoice.paid"); err != nil {
		t.Fatalf("trigger with --data: %v", err)
	}
	n.api(t, "GET", "/v1/tenants/acme/events/T2", k.Key, nil, 200, &ev)
	if !strings.Contains(string(ev.Data), `"FV-2"`) {
		t.Errorf("--data not used: %s", ev.Data)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown type", keyEnv, []string{"invoice.lost"}, `the event type "invoice.lost" is not in the catalog`},
		{"no type", keyEnv, nil, "name one event type"},
		{"bad key", map[string]string{"AVISO_URL": n.srv.URL(), "AVISO_KEY": "avk_nope"}, []string{"invoice.paid"}, "refused the API key"},
		{"unreachable", map[string]string{"AVISO_URL": "http://127.0.0.1:1", "AVISO_KEY": "k"}, []string{"invoice.paid"}, "cannot reach Aviso"},
		{"bad data", keyEnv, []string{"invoice.paid", "--data", "{nope"}, "not valid JSON"},
		{"data against the schema", keyEnv, []string{"invoice.paid", "--data", `{"total":"many"}`}, "Aviso answered 422"},
		{"another tenant", keyEnv, []string{"invoice.paid", "--tenant", "other"}, `belongs to tenant "acme"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := trigger(tc.env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one that says %q", err, tc.want)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
