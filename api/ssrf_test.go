package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/service"
)

// TestSSRFBypasses is the regression test of issue 19: with private networks refused, a tenant
// cannot reach a loopback service by spelling its address with an IPv6 zone id, as an
// IPv4-compatible, NAT64 or 6to4 address, nor reach an IPv4 documentation address — not at
// creation, not by a change, and not by a test send or a delivery of an endpoint stored before
// the guard knew the spelling.
func TestSSRFBypasses(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int32
	secret := "loopback-only-service"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, secret)
	})
	srv6 := listen6(t, handler)
	_, port, _ := net.SplitHostPort(srv6.Listener.Addr().String())

	store := openStore(t)
	disp, err := dispatch.New(dispatch.Config{Store: store, IdleWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer disp.Close()
	svc, err := service.New(service.Config{Store: store, Sender: disp, HandshakeTimeout: handshakeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	root, err := svc.EnsureRootKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Service: svc}))
	defer srv.Close()
	e := &env{srv: srv, store: store, svc: svc, root: root}
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", "")

	urls := []string{
		"http://[::1%25lo]:" + port + "/x",
		"http://[::1%25eth0]:" + port + "/x",
		"http://[fe80::1%25eth0]:" + port + "/",
		"http://[fd00::1%25eth0]/",
		"http://[fd00:ec2::254%25eth0]/",
		"http://[::169.254.169.254]/",
		"http://[::127.0.0.1]:" + port + "/",
		"http://[64:ff9b::a9fe:a9fe]/",
		"http://[64:ff9b:1::a9fe:a9fe]/",
		"http://[2002:a9fe:a9fe::1]/",
		"http://[2002:7f00:1::1]:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://192.0.2.1/", "http://198.51.100.7/", "http://203.0.113.9/",
	}
	for _, u := range urls {
		for _, verify := range []bool{true, false} {
			var ae apiError
			e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": u, "verify": verify}, 422, &ae)
			if ae.Error.Field != "url" || !strings.Contains(ae.Error.Message, "--allow-private-networks") {
				t.Errorf("%s: %+v", u, ae.Error)
			}
		}
	}

	// An endpoint on a public address cannot be changed to one of them either.
	pub := &aviso.Endpoint{ID: aviso.NewID(aviso.PrefixEndpoint, time.Now()), TenantID: "acme", URL: "https://8.8.8.8/hook",
		Format: aviso.FormatStandard, TimeoutSeconds: 2, Secrets: []aviso.Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := store.CreateEndpoint(ctx, pub); err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+pub.ID, key, map[string]any{"url": u, "verify": false}, 422, nil)
	}

	// Endpoints stored with such URLs (as before the fix): the dial-time check refuses them on a
	// test send and on a delivery.
	var ids []string
	for _, u := range []string{"http://[::1%25lo]:" + port + "/x", "http://[::ffff:127.0.0.1]:" + port + "/", "http://[::127.0.0.1]:" + port + "/"} {
		ep := *pub
		ep.ID = aviso.NewID(aviso.PrefixEndpoint, time.Now())
		ep.URL = u
		ep.EventTypes = []string{"invoice.created"}
		if err := store.CreateEndpoint(ctx, &ep); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ep.ID)
		var at aviso.Attempt
		e.call(t, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/test", key, nil, 200, &at)
		if at.ResponseStatus != 0 || strings.Contains(at.ResponseBody, secret) || !strings.Contains(at.Error, "refused") {
			t.Errorf("test send to %s: %+v", u, at)
		}
	}
	if err := store.DeleteEndpoint(ctx, "acme", pub.ID); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- disp.Run(rctx) }()
	defer func() { cancel(); <-done }()
	e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.created", "data": map[string]any{"n": 1}}, 202, nil)
	// Wait for the published event's delivery to each endpoint to be attempted; every recorded
	// attempt, the test sends' included, must be a refusal.
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			var page struct {
				Data []struct {
					ID       string `json:"id"`
					EventID  string `json:"event_id"`
					Attempts int    `json:"attempt_count"`
				} `json:"data"`
			}
			e.call(t, "GET", "/v1/tenants/acme/endpoints/"+id+"/deliveries", key, nil, 200, &page)
			attempted := false
			for _, d := range page.Data {
				attempted = attempted || (!strings.HasPrefix(d.EventID, "evt_test_") && d.Attempts > 0)
			}
			if attempted {
				for _, dl := range page.Data {
					var d struct {
						Attempts []aviso.Attempt `json:"attempts"`
					}
					e.call(t, "GET", "/v1/tenants/acme/deliveries/"+dl.ID, key, nil, 200, &d)
					for _, a := range d.Attempts {
						if a.ResponseStatus != 0 || strings.Contains(a.ResponseBody, secret) || !strings.Contains(a.Error, "refused") {
							t.Errorf("delivery to %s: %+v", id, a)
						}
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("endpoint %s: the event's delivery was not attempted within 30s: %+v", id, page.Data)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback service was reached %d times", n)
	}
}

// listen6 serves h on the IPv6 loopback, or skips where the machine has none.
func listen6(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		tb.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}
