package dispatch_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/internal/testcert"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/webhook"
)

// TestAuthThroughRun delivers through the engine's loop to receivers that each require one kind
// of auth, and checks the attempt log records the credentials redacted — also the secret headers
// and the TusFacturas token — and that a debug-level log never holds them.
func TestAuthThroughRun(t *testing.T) {
	b := backends[0]
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	const (
		password  = "basic-pass-Zq81"
		bearer    = "bearer-token-Xk29"
		apiKey    = "secret-header-Lm47"
		tfToken   = "tf-token-Pr63"
		plainHead = "plain-value"
	)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		ok := false
		switch r.URL.Path {
		case "/basic":
			u, p, has := r.BasicAuth()
			ok = has && u == "aviso" && p == password
		case "/bearer":
			ok = r.Header.Get("Authorization") == "Bearer "+bearer
		case "/headers":
			ok = r.Header.Get("X-Api-Key") == apiKey && r.Header.Get("X-Plain") == plainHead &&
				r.Header.Get(webhook.TokenHeader) == tfToken
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	eps := []*aviso.Endpoint{
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/basic", func(e *aviso.Endpoint) {
			e.Auth = &aviso.Auth{Type: aviso.AuthBasic, Username: "aviso", Password: password}
		}),
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/bearer", func(e *aviso.Endpoint) {
			e.Auth = &aviso.Auth{Type: aviso.AuthBearer, Token: bearer}
		}),
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/headers", func(e *aviso.Endpoint) {
			e.Format, e.Token = aviso.FormatTusFacturas, tfToken
			e.Headers = map[string]string{"X-Plain": plainHead}
			e.SecretHeaders = map[string]string{"x-api-key": apiKey} // any spelling
		}),
	}
	publish(t, s, ten.ID, 3, time.Now(), eps...)
	cfg := config(s)
	var logs func() string
	cfg.Logger, logs = debugLogger()
	start(t, cfg)
	for _, ep := range eps {
		waitFor(t, ep.URL+" delivered", func() bool { return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 3 })
	}
	want := map[string]map[string]string{
		eps[0].ID: {"Authorization": "Basic " + aviso.Redacted},
		eps[1].ID: {"Authorization": "Bearer " + aviso.Redacted},
		eps[2].ID: {"X-Api-Key": aviso.Redacted, webhook.TokenHeader: aviso.Redacted, "X-Plain": plainHead},
	}
	for _, ep := range eps {
		for _, d := range deliveries(t, s, ten.ID, ep.ID) {
			full := getDelivery(t, s, ten.ID, d.ID)
			for _, a := range full.Attempts {
				for k, v := range want[ep.ID] {
					if a.RequestHeaders[k] != v {
						t.Errorf("%s attempt header %s = %q, want %q", ep.URL, k, a.RequestHeaders[k], v)
					}
				}
				raw, _ := json.Marshal(a)
				for _, secret := range []string{password, bearer, apiKey, tfToken} {
					if strings.Contains(string(raw), secret) {
						t.Errorf("%s attempt holds %q in clear: %s", ep.URL, secret, raw)
					}
				}
			}
		}
	}
	for _, secret := range []string{password, bearer, apiKey, tfToken} {
		if strings.Contains(logs(), secret) {
			t.Errorf("the debug log holds %q:\n%s", secret, logs())
		}
	}
}

// debugLogger returns a debug-level logger and a function reading what it wrote so far.
func debugLogger() (*slog.Logger, func() string) {
	var buf testenv.LogBuffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf.String
}

// tokenServer is an OAuth2 token endpoint (client credentials) that counts the tokens it issues;
// token n is "tok-n".
type tokenServer struct {
	srv       *httptest.Server
	issued    atomic.Int64
	expiresIn atomic.Int64 // seconds; 0: no expires_in
}

func newTokenServer(tb testing.TB, clientID, clientSecret string) *tokenServer {
	tb.Helper()
	ts := &tokenServer{}
	ts.expiresIn.Store(3600)
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.FormValue("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		if !ok || id != clientID || secret != clientSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		if r.FormValue("scope") != "webhooks:write" || r.FormValue("audience") != "https://erp.example" {
			http.Error(w, `{"error":"invalid_scope"}`, http.StatusBadRequest)
			return
		}
		n := ts.issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		body := map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer"}
		if e := ts.expiresIn.Load(); e > 0 {
			body["expires_in"] = e
		}
		json.NewEncoder(w).Encode(body)
	}))
	tb.Cleanup(ts.srv.Close)
	return ts
}

func oauth2Auth(tokenURL string) *aviso.Auth {
	return &aviso.Auth{Type: aviso.AuthOAuth2, TokenURL: tokenURL, ClientID: "aviso-client",
		ClientSecret: "client-secret-Vb52", Scope: "webhooks:write", Audience: "https://erp.example"}
}

// TestOAuth2 checks the token is fetched once and shared by every attempt of the node (two
// endpoints of the same client), fetched again once when the receiver refuses it with a 401,
// and fetched again shortly before it expires.
func TestOAuth2(t *testing.T) {
	b := backends[0]
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	ts := newTokenServer(t, "aviso-client", "client-secret-Vb52")
	var accepted atomic.Value // the token the receiver accepts
	accepted.Store("tok-1")
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") != "Bearer "+accepted.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	eps := []*aviso.Endpoint{
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/a", func(e *aviso.Endpoint) { e.Auth = oauth2Auth(ts.srv.URL + "/token") }),
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/b", func(e *aviso.Endpoint) { e.Auth = oauth2Auth(ts.srv.URL + "/token") }),
	}
	publish(t, s, ten.ID, 20, time.Now(), eps...)
	cfg := config(s)
	var logs func() string
	cfg.Logger, logs = debugLogger()
	start(t, cfg)
	for _, ep := range eps {
		waitFor(t, "the first 20 delivered", func() bool { return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 20 })
	}
	if n := ts.issued.Load(); n != 1 {
		t.Fatalf("%d token requests for 40 attempts, want 1 shared token", n)
	}
	// The receiver revokes tok-1: every attempt is refused once, and one new token serves all.
	accepted.Store("tok-2")
	publish(t, s, ten.ID, 20, time.Now(), eps...)
	for _, ep := range eps {
		waitFor(t, "the next 20 delivered", func() bool { return countStatus(t, s, ten.ID, ep.ID, aviso.StatusSucceeded) == 40 })
	}
	if n := ts.issued.Load(); n != 2 {
		t.Fatalf("%d token requests after a revocation, want 2 (one new token for all)", n)
	}
	for _, d := range deliveries(t, s, ten.ID, eps[0].ID) {
		if d.AttemptCount != 1 {
			t.Fatalf("delivery %s took %d attempts; the 401 retry with a new token is part of one attempt", d.ID, d.AttemptCount)
		}
		for _, a := range getDelivery(t, s, ten.ID, d.ID).Attempts {
			if a.RequestHeaders["Authorization"] != "Bearer "+aviso.Redacted {
				t.Fatalf("attempt Authorization %q, want it redacted", a.RequestHeaders["Authorization"])
			}
		}
	}
	if got := logs(); !strings.Contains(got, "oauth2 token fetched") || strings.Contains(got, "client-secret-Vb52") ||
		strings.Contains(got, "tok-1") || strings.Contains(got, "tok-2") {
		t.Errorf("the debug log must say a token was fetched and hold neither the client secret nor a token:\n%s", got)
	}

	t.Run("expiry", func(t *testing.T) {
		ts2 := newTokenServer(t, "aviso-client", "client-secret-Vb52")
		ts2.expiresIn.Store(120)
		rc2 := newReceiver(t, nil)
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		cfg := config(s)
		cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
		d, err := dispatch.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ep := &aviso.Endpoint{ID: "ep_exp", TenantID: ten.ID, URL: rc2.srv.URL, Format: aviso.FormatStandard, TimeoutSeconds: 5,
			Secrets: []aviso.Secret{{Value: testSecret}}, Auth: oauth2Auth(ts2.srv.URL)}
		ev := &aviso.Event{ID: "evt_exp", TenantID: ten.ID, Type: "invoice.created", Data: []byte(`{}`), CreatedAt: time.Now()}
		send := func() {
			if a := d.Send(t.Context(), ep, ev); !a.Succeeded() {
				t.Fatalf("send: %d %s", a.ResponseStatus, a.Error)
			}
		}
		send()
		now.Add(int64(60 * time.Second)) // 60 s before expiry: still cached
		send()
		if n := ts2.issued.Load(); n != 1 {
			t.Fatalf("%d token requests within the token's life, want 1", n)
		}
		now.Add(int64(35 * time.Second)) // 25 s before expiry: inside the margin
		send()
		if n := ts2.issued.Load(); n != 2 {
			t.Fatalf("%d token requests shortly before expiry, want 2", n)
		}
	})
}

// TestOAuth2Errors: a refused client and a token URL the SSRF guard blocks fail the attempt with
// a message that names the token URL, without the client secret.
func TestOAuth2Errors(t *testing.T) {
	b := backends[0]
	s := b.open(t, b.newKey(t))
	ts := newTokenServer(t, "aviso-client", "another-secret")
	rc := newReceiver(t, nil)
	ev := &aviso.Event{ID: "evt_1", TenantID: "t", Type: "invoice.created", Data: []byte(`{}`), CreatedAt: time.Now()}
	open, err := dispatch.New(config(s))
	if err != nil {
		t.Fatal(err)
	}
	guardedCfg := config(s)
	guardedCfg.AllowPrivateNetworks = false
	guarded, err := dispatch.New(guardedCfg)
	if err != nil {
		t.Fatal(err)
	}
	ep := &aviso.Endpoint{ID: "ep_1", TenantID: "t", URL: rc.srv.URL, Format: aviso.FormatStandard, TimeoutSeconds: 5,
		Secrets: []aviso.Secret{{Value: testSecret}}, Auth: oauth2Auth(ts.srv.URL)}
	a := open.Send(t.Context(), ep, ev)
	if !strings.Contains(a.Error, "OAuth2 token request to "+ts.srv.URL) || !strings.Contains(a.Error, "401") ||
		strings.Contains(a.Error, "client-secret-Vb52") {
		t.Errorf("refused client: error %q", a.Error)
	}
	// The receiver is public (never reached); the token URL is loopback.
	pub := *ep
	pub.URL = "https://receiver.example/hook"
	a = guarded.Send(t.Context(), &pub, ev)
	if !strings.Contains(a.Error, "SSRF guard") || ts.issued.Load() != 0 {
		t.Errorf("guarded token URL: error %q, %d tokens issued; want the SSRF guard's refusal and none", a.Error, ts.issued.Load())
	}
	if len(rc.requests()) != 0 {
		t.Errorf("the receiver got %d requests without a token", len(rc.requests()))
	}
}

// TestMTLS delivers to a TLS receiver that requires a client certificate from a private CA,
// trusting that CA through ca_pem; without the certificate, or without the CA, it fails.
func TestMTLS(t *testing.T) {
	b := backends[0]
	s := b.open(t, b.newKey(t))
	certs := testcert.New(t, "aviso-client")
	var gotCN atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			gotCN.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		fmt.Fprint(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{certs.ServerCert}, ClientCAs: certs.CAPool,
		ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	d, err := dispatch.New(config(s))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ev := &aviso.Event{ID: "evt_1", TenantID: "t", Type: "invoice.created", Data: []byte(`{}`), CreatedAt: time.Now()}
	ep := func(a *aviso.Auth) *aviso.Endpoint {
		return &aviso.Endpoint{ID: "ep_mtls", TenantID: "t", URL: srv.URL, Format: aviso.FormatStandard, TimeoutSeconds: 5,
			Secrets: []aviso.Secret{{Value: testSecret}}, Auth: a}
	}
	mtls := &aviso.Auth{Type: aviso.AuthMTLS, CertPEM: certs.ClientCertPEM, KeyPEM: certs.ClientKeyPEM, CAPEM: certs.CAPEM}
	if err := ep(mtls).Validate(); err != nil {
		t.Fatalf("the mtls endpoint does not validate: %v", err)
	}
	if a := d.Send(t.Context(), ep(mtls), ev); !a.Succeeded() || gotCN.Load() != "aviso-client" {
		t.Fatalf("mtls: status %d error %q, client CN %v; want 200 with the client certificate", a.ResponseStatus, a.Error, gotCN.Load())
	}
	for _, tc := range []struct {
		name string
		auth *aviso.Auth
		want string
	}{
		{"no client certificate", &aviso.Auth{Type: aviso.AuthBearer, Token: "x", CAPEM: certs.CAPEM}, "network error"},
		{"server CA not trusted", &aviso.Auth{Type: aviso.AuthMTLS, CertPEM: certs.ClientCertPEM, KeyPEM: certs.ClientKeyPEM}, "TLS certificate not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := d.Send(t.Context(), ep(tc.auth), ev); a.Succeeded() || !strings.Contains(a.Error, tc.want) {
				t.Errorf("status %d error %q, want a failure containing %q", a.ResponseStatus, a.Error, tc.want)
			}
		})
	}
}
