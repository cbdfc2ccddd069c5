package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/internal/testnode"
	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/webhook"
)

const rootKey = "avk_test_root"

// node is a running Aviso node for a test; stop shuts it down gracefully and waits.
type node struct {
	*server.Server
	stop func()
}

func startNode(t *testing.T, dir string, schedule ...time.Duration) *node {
	t.Helper()
	return runNode(t, server.Config{
		Addr: "127.0.0.1:0", DataDir: dir, RootKey: rootKey, AllowPrivateNetworks: true,
		RetrySchedule: schedule, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Stdout: io.Discard,
	})
}

// runNode opens a node with cfg and runs it until the test ends (or stop).
func runNode(t *testing.T, cfg server.Config) *node {
	t.Helper()
	tn := testnode.Run(t, cfg)
	return &node{Server: tn.Server, stop: tn.Stop}
}

// call makes an API request with the root key and decodes the JSON answer into out (if non-nil).
func call(t *testing.T, n *node, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.URL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+rootKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

func mustCall(t *testing.T, n *node, want int, method, path string, body any, out any) {
	t.Helper()
	var raw json.RawMessage
	if got := call(t, n, method, path, body, &raw); got != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
}

// waitDelivery polls the API until the delivery reaches want, or fails after a deadline.
func waitDelivery(t *testing.T, n *node, tenant, id string, want aviso.DeliveryStatus, attempts int) *aviso.Delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var d aviso.Delivery
		mustCall(t, n, 200, "GET", "/v1/tenants/"+tenant+"/deliveries/"+id, nil, &d)
		if d.Status == want && d.AttemptCount >= attempts {
			return &d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: status %s after %d attempts, want %s after %d", id, d.Status, d.AttemptCount, want, attempts)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

func eventDeliveries(t *testing.T, n *node, tenant, eventID string) []*aviso.Delivery {
	t.Helper()
	var page aviso.Page[*aviso.Delivery]
	mustCall(t, n, 200, "GET", "/v1/tenants/"+tenant+"/events/"+eventID+"/deliveries", nil, &page)
	return page.Data
}

// TestQuickstart follows the README: a tenant, an endpoint, an event, and a signed POST that
// verifies with the endpoint's secret arrives; the attempt is logged.
func TestQuickstart(t *testing.T) {
	n := startNode(t, t.TempDir())
	got := make(chan *http.Request, 4)
	bodies := make(chan []byte, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME SA"}, nil)
	var ep aviso.Endpoint
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints",
		map[string]any{"url": recv.URL + "/hooks", "event_types": []string{"invoice.created"}}, &ep)
	<-got // the subscription handshake (a signed ping)
	<-bodies
	var sec struct{ Secret string }
	mustCall(t, n, 200, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/secret", nil, &sec)

	var ev aviso.Event
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "invoice.created",
		"external_reference": "FAC-0001", "data": map[string]any{"id": "FAC-0001", "total": 1190}}, &ev)

	var r *http.Request
	select {
	case r = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	body := <-bodies
	v := webhook.Verifier{Secrets: []string{sec.Secret}}
	if err := v.Verify(r.Header, body); err != nil {
		t.Fatalf("delivery does not verify with the endpoint secret: %v", err)
	}
	if r.Header.Get("webhook-id") != ev.ID || r.Header.Get("User-Agent") != aviso.UserAgent {
		t.Errorf("headers: %v", r.Header)
	}
	var msg struct {
		Type              string
		ExternalReference string `json:"external_reference"`
		Data              map[string]any
	}
	_ = json.Unmarshal(body, &msg)
	if msg.ExternalReference != "FAC-0001" || msg.Data["total"] != 1190.0 {
		t.Errorf("body %s", body)
	}
	ds := eventDeliveries(t, n, "acme", ev.ID)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	d := waitDelivery(t, n, "acme", ds[0].ID, aviso.StatusSucceeded, 1)
	if len(d.Attempts) != 1 || d.Attempts[0].ResponseStatus != 204 {
		t.Fatalf("attempts %+v", d.Attempts)
	}
}

// TestRestartResumesPending publishes while the receiver fails, stops the node, starts a new
// one on the same data directory, and the pending delivery is delivered by the new node.
func TestRestartResumesPending(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	healthy := true
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	setHealthy := func(b bool) { mu.Lock(); healthy = b; mu.Unlock() }

	n := startNode(t, dir, 100*time.Millisecond, 100*time.Millisecond, 2*time.Second)
	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
	var ep aviso.Endpoint
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": recv.URL}, &ep)
	setHealthy(false)
	var ev aviso.Event
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "customer.created",
		"data": map[string]any{"id": "774", "name": map[string]any{"fullname": "Ana"}}}, &ev)
	id := eventDeliveries(t, n, "acme", ev.ID)[0].ID
	// Three failed attempts: the third schedules the fourth two seconds later. Stop the node
	// before then; the new node on the same data directory makes the fourth attempt.
	waitDelivery(t, n, "acme", id, aviso.StatusPending, 3)
	n.stop()

	setHealthy(true)
	n2 := startNode(t, dir)
	d := waitDelivery(t, n2, "acme", id, aviso.StatusSucceeded, 4)
	if d.Attempts[len(d.Attempts)-1].ResponseStatus != 200 {
		t.Fatalf("last attempt %+v", d.Attempts[len(d.Attempts)-1])
	}
}

// TestTusFacturasReceivers runs the TusFacturas document's receivers (Flask and Express) as
// written (token from the environment) against real deliveries: 200 with the right token; with a
// wrong one they answer 403, which is recorded as a failed attempt and retried.
func TestTusFacturasReceivers(t *testing.T) {
	for _, rc := range testenv.TusFacturasReceivers() {
		t.Run(rc.Name, func(t *testing.T) {
			url, _ := rc.Start(t, "TOKEN_TF")

			n := startNode(t, t.TempDir(), 50*time.Millisecond, time.Hour)
			mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "tf", "name": "TF"}, nil)
			var good, bad aviso.Endpoint
			// The right token passes the handshake (a signed ping with the token header) and deliveries.
			mustCall(t, n, 201, "POST", "/v1/tenants/tf/endpoints", map[string]any{"url": url, "format": "tusfacturas", "token": "TOKEN_TF"}, &good)
			// A wrong token fails the handshake with the receiver's 403 …
			var e struct {
				Error struct{ Code, Message, Field string }
			}
			if code := call(t, n, "POST", "/v1/tenants/tf/endpoints", map[string]any{"url": url, "format": "tusfacturas", "token": "WRONG"}, &e); code != 422 || !strings.Contains(e.Error.Message, "403") {
				t.Fatalf("wrong token handshake: %d %+v", code, e)
			}
			// … so it is created unverified to see deliveries fail.
			mustCall(t, n, 201, "POST", "/v1/tenants/tf/endpoints", map[string]any{"url": url, "format": "tusfacturas", "token": "WRONG", "verify": false}, &bad)

			var ev aviso.Event
			mustCall(t, n, 202, "POST", "/v1/tenants/tf/events", map[string]any{"type": "invoice.created",
				"external_reference": "FAC-0042", "data": map[string]any{"id": "42", "total": 10}}, &ev)
			for _, d := range eventDeliveries(t, n, "tf", ev.ID) {
				switch d.EndpointID {
				case good.ID:
					got := waitDelivery(t, n, "tf", d.ID, aviso.StatusSucceeded, 1)
					if got.Attempts[0].ResponseStatus != 200 {
						t.Errorf("right token: %+v", got.Attempts[0])
					}
				case bad.ID:
					got := waitDelivery(t, n, "tf", d.ID, aviso.StatusPending, 2) // failed once, retried once
					for _, a := range got.Attempts {
						if a.ResponseStatus != 403 {
							t.Errorf("wrong token attempt: %+v", a)
						}
					}
				default:
					t.Errorf("unexpected delivery %+v", d)
				}
			}
		})
	}
}

// TestPortalLink: the API's portal link opens the dashboard scoped to its tenant, which cannot
// reach another tenant or the catalog editor.
func TestPortalLink(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "other", "name": "Other"}, nil)
	var link struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/portal-link", map[string]any{"ttl": "10m"}, &link)
	if !strings.HasPrefix(link.URL, n.URL()+"/ui/portal?") || time.Until(link.ExpiresAt) > 11*time.Minute || time.Until(link.ExpiresAt) < 9*time.Minute {
		t.Fatalf("link %+v", link)
	}
	var e struct{ Error struct{ Code, Field string } }
	if code := call(t, n, "POST", "/v1/tenants/acme/portal-link", map[string]any{"ttl": "48h"}, &e); code != 422 || e.Error.Field != "ttl" {
		t.Fatalf("48h link: %d %+v", code, e)
	}
	if code := call(t, n, "POST", "/v1/tenants/nobody/portal-link", nil, nil); code != 404 {
		t.Fatalf("unknown tenant: %d", code)
	}

	jar := newJar()
	c := &http.Client{Jar: jar}
	res, err := c.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/ui/t/acme/endpoints" {
		t.Fatalf("portal landed on %d %s", res.StatusCode, res.Request.URL)
	}
	for path, want := range map[string]int{
		"/ui/t/acme/endpoints":             200,
		"/ui/t/other/endpoints":            404,
		"/ui/tenants":                      403,
		"/ui/catalog/invoice.created/edit": 403,
		"/ui/t/other/deliveries":           404,
	} {
		res, err := c.Get(n.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("portal session GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}
}

func newJar() http.CookieJar {
	j, _ := cookiejar.New(nil)
	return j
}

// TestRetentionPrunes runs a node whose retention is shorter than the test: the pruner deletes
// the old event with its deliveries and attempts, through the real loop.
func TestRetentionPrunes(t *testing.T) {
	n := runNode(t, server.Config{RootKey: rootKey, AllowPrivateNetworks: true,
		Retention: time.Second, PruneInterval: 50 * time.Millisecond})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer recv.Close()
	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": recv.URL}, nil)
	var ev aviso.Event
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "customer.created",
		"data": map[string]any{"id": "1", "name": map[string]any{"fullname": "Ana"}}}, &ev)
	d := eventDeliveries(t, n, "acme", ev.ID)[0]
	waitDelivery(t, n, "acme", d.ID, aviso.StatusSucceeded, 1)
	deadline := time.Now().Add(20 * time.Second)
	for call(t, n, "GET", "/v1/tenants/acme/events/"+ev.ID, nil, nil) != 404 {
		if time.Now().After(deadline) {
			t.Fatal("the event was not pruned within 20 s")
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
	if code := call(t, n, "GET", "/v1/tenants/acme/deliveries/"+d.ID, nil, nil); code != 404 {
		t.Fatalf("delivery of a pruned event: %d, want 404", code)
	}
}
