package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// receiverServer starts the middleware on 127.0.0.1 and records the events its handler got. The
// handler answers status (200 when 0).
type receiverServer struct {
	URL    string
	mu     sync.Mutex
	events []*ReceivedEvent
	status int
}

func startReceiver(tb testing.TB, opts MiddlewareOptions) *receiverServer {
	tb.Helper()
	rs := &receiverServer{}
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	h, err := Middleware(opts, func(w http.ResponseWriter, r *http.Request, ev *ReceivedEvent) {
		rs.mu.Lock()
		rs.events = append(rs.events, ev)
		status := rs.status
		rs.mu.Unlock()
		if status != 0 {
			http.Error(w, "handler failed", status)
			return
		}
		_, _ = io.WriteString(w, "handled "+ev.Type)
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	rs.URL = srv.URL
	return rs
}

func (rs *receiverServer) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.events)
}

func (rs *receiverServer) setStatus(s int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.status = s
}

// post sends req to url as a sender copying the header map verbatim would, and returns the
// status and response body.
func post(tb testing.TB, url string, req *Request) (int, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req.Body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func testRequest(tb testing.TB, f aviso.Format, typ string) *Request {
	tb.Helper()
	req, err := Build(testEndpoint(tb, f, false), testEvent(tb, typ), testNow)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

func TestMiddleware(t *testing.T) {
	tampered := testRequest(t, aviso.FormatStandard, "invoice.created")
	tampered.Body = bytes.Replace(tampered.Body, []byte("1190"), []byte("9999"), 1)
	noSig := testRequest(t, aviso.FormatStandard, "invoice.created")
	delete(noSig.Header, HeaderSignature)
	wrongToken := testRequest(t, aviso.FormatTusFacturas, "invoice.created")
	wrongToken.Header[TokenHeader] = []string{"TOKEN_TF"}
	badHMAC := testRequest(t, aviso.FormatFacturaScripts, "invoice.created")
	badHMAC.Header[HMACHeader] = []string{SignHMACHex(testOldSecret, badHMAC.Body)}
	alegraHandshake, err := HandshakeRequest(testEndpoint(t, aviso.FormatAlegra, false), testNow)
	if err != nil {
		t.Fatal(err)
	}
	ping, err := HandshakeRequest(testEndpoint(t, aviso.FormatStandard, false), testNow)
	if err != nil {
		t.Fatal(err)
	}
	all := MiddlewareOptions{Secrets: []string{testSecret}}
	tests := []struct {
		name     string
		opts     MiddlewareOptions
		req      *Request
		status   int
		contains string
		handled  bool
	}{
		{"standard", all, testRequest(t, aviso.FormatStandard, "invoice.created"), 200, "handled invoice.created", true},
		{"alegra", all, testRequest(t, aviso.FormatAlegra, "customer.created"), 200, "handled customer.created", true},
		{"tampered", all, tampered, 401, "signature does not match", false},
		{"no signature", all, noSig, 401, "webhook-signature", false},
		{"token ok", MiddlewareOptions{Token: testToken}, testRequest(t, aviso.FormatTusFacturas, "receipt.paid"), 200, "handled receipt.paid", true},
		{"token wrong", MiddlewareOptions{Token: testToken}, wrongToken, 403, "TF-WebhookToken", false},
		{"hmac ok", MiddlewareOptions{HMACSecret: testSecret}, testRequest(t, aviso.FormatFacturaScripts, "invoice.paid"), 200, "handled invoice.paid", true},
		{"hmac wrong", MiddlewareOptions{HMACSecret: testSecret}, badHMAC, 401, "X-Webhook-Signature", false},
		{"alegra handshake", all, alegraHandshake, 200, "OK", false},
		{"ping", all, ping, 200, "OK", false},
		{"too old", MiddlewareOptions{Secrets: []string{testSecret}, Now: func() time.Time { return testNow.Add(time.Hour) }},
			testRequest(t, aviso.FormatStandard, "invoice.created"), 401, "timestamp too old", false},
		{"too large", MiddlewareOptions{Secrets: []string{testSecret}, MaxBodyBytes: 10},
			testRequest(t, aviso.FormatStandard, "invoice.created"), 413, "over 10 bytes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := startReceiver(t, tt.opts)
			status, body := post(t, rs.URL, tt.req)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Errorf("got %d %q, want %d containing %q", status, body, tt.status, tt.contains)
			}
			if handled := rs.count() == 1; handled != tt.handled {
				t.Errorf("handler called %d times, want handled=%v", rs.count(), tt.handled)
			}
		})
	}
}

func TestMiddlewareDedup(t *testing.T) {
	rs := startReceiver(t, MiddlewareOptions{Secrets: []string{testSecret}})
	req := testRequest(t, aviso.FormatStandard, "invoice.created")

	rs.setStatus(http.StatusInternalServerError)
	if status, _ := post(t, rs.URL, req); status != 500 {
		t.Fatalf("failing handler: status %d, want 500", status)
	}
	rs.setStatus(0)
	if status, body := post(t, rs.URL, req); status != 200 || body != "handled invoice.created" {
		t.Fatalf("retry after a failure: %d %q, want it handled again", status, body)
	}
	if status, body := post(t, rs.URL, req); status != 200 || body != "OK (duplicate)" {
		t.Fatalf("duplicate: %d %q", status, body)
	}
	if n := rs.count(); n != 2 {
		t.Fatalf("handler called %d times, want 2 (the failure and the retry)", n)
	}
}

func TestMiddlewareMethodAndConfig(t *testing.T) {
	rs := startReceiver(t, MiddlewareOptions{Secrets: []string{testSecret}})
	resp, err := http.Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
	next := func(http.ResponseWriter, *http.Request, *ReceivedEvent) {}
	bad := []struct {
		name string
		opts MiddlewareOptions
		next HandlerFunc
	}{
		{"nothing to verify", MiddlewareOptions{}, next},
		{"bad secret", MiddlewareOptions{Secrets: []string{"whsec_!!"}}, next},
		{"nil handler", MiddlewareOptions{Token: "x"}, nil},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Middleware(tt.opts, tt.next); err == nil {
				t.Fatal("Middleware accepted a bad configuration")
			}
		})
	}
}

func TestMemoryDedup(t *testing.T) {
	ctx := context.Background()
	now := testNow
	clock := func() time.Time { return now }
	seen := func(tb testing.TB, d *MemoryDedup, id string) bool {
		tb.Helper()
		ok, err := d.Seen(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		return ok
	}
	t.Run("ttl", func(t *testing.T) {
		d := NewMemoryDedup(10, time.Minute, clock)
		if seen(t, d, "a") || !seen(t, d, "a") {
			t.Fatal("second Seen of a should report true, the first false")
		}
		now = now.Add(2 * time.Minute)
		if seen(t, d, "a") {
			t.Fatal("a expired but is still seen")
		}
	})
	t.Run("max", func(t *testing.T) {
		d := NewMemoryDedup(2, time.Hour, clock)
		for _, id := range []string{"a", "b", "c"} {
			seen(t, d, id)
		}
		if seen(t, d, "a") {
			t.Fatal("a should have been evicted by c")
		}
		if !seen(t, d, "c") {
			t.Fatal("c should still be remembered")
		}
		if len(d.seen) > 2 {
			t.Fatalf("holds %d ids, max 2", len(d.seen))
		}
	})
	t.Run("forget", func(t *testing.T) {
		d := NewMemoryDedup(0, 0, clock)
		seen(t, d, "a")
		if err := d.Forget(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if seen(t, d, "a") {
			t.Fatal("a was forgotten but is still seen")
		}
	})
}
