package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/webhook"
)

// TestEndpointCredentials: auth secrets and secret headers are accepted, used on the handshake
// and on test sends, and never returned — not by create, get, list, update, the attempt log or
// the delivery — while a GET's body sent back as a PATCH keeps them.
func TestEndpointCredentials(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", "")
	const password, apiKey = "pw-Hs73kq", "hdr-Jw28mz"
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "aviso" || p != password || r.Header.Get("X-Api-Key") != apiKey || r.Header.Get("X-Plain") != "p" {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	body := map[string]any{"url": srv.URL + "/hook", "event_types": []string{"invoice.created"},
		"auth":    map[string]any{"type": "basic", "username": "aviso", "password": password},
		"headers": map[string]any{"X-Plain": "p", "X-Api-Key": map[string]any{"value": apiKey, "secret": true}}}
	noSecrets := func(what string, b []byte) {
		t.Helper()
		if strings.Contains(string(b), password) || strings.Contains(string(b), apiKey) {
			t.Errorf("%s shows a credential in clear: %s", what, b)
		}
	}

	// A wrong password fails the handshake: it is sent with the endpoint's auth.
	wrong := map[string]any{}
	for k, v := range body {
		wrong[k] = v
	}
	wrong["auth"] = map[string]any{"type": "basic", "username": "aviso", "password": "nope"}
	status, b := e.do(t, "POST", "/v1/tenants/acme/endpoints", key, wrong)
	if status != 422 || refused.Load() != 1 {
		t.Fatalf("a handshake with the wrong password: %d %s (receiver refused %d), want 422", status, b, refused.Load())
	}

	status, b = e.do(t, "POST", "/v1/tenants/acme/endpoints", key, body)
	if status != 201 {
		t.Fatalf("create: %d %s", status, b)
	}
	noSecrets("create", b)
	var ep map[string]any
	json.Unmarshal(b, &ep)
	id := ep["id"].(string)
	wantShown := func(what string, ep map[string]any) {
		t.Helper()
		auth, _ := ep["auth"].(map[string]any)
		headers, _ := ep["headers"].(map[string]any)
		sh, _ := headers["X-Api-Key"].(map[string]any)
		if auth["password"] != aviso.Redacted || auth["username"] != "aviso" || headers["X-Plain"] != "p" ||
			sh["value"] != aviso.Redacted || sh["secret"] != true {
			t.Errorf("%s shows auth %v headers %v; want the password and the secret header as %q", what, auth, headers, aviso.Redacted)
		}
	}
	wantShown("create", ep)
	status, b = e.do(t, "GET", "/v1/tenants/acme/endpoints/"+id, key, nil)
	noSecrets("get", b)
	var got map[string]any
	json.Unmarshal(b, &got)
	wantShown("get", got)
	_, b = e.do(t, "GET", "/v1/tenants/acme/endpoints", key, nil)
	noSecrets("list", b)

	// What GET showed, sent back, keeps the stored values: the test send still authenticates.
	patch := map[string]any{"auth": got["auth"], "headers": got["headers"], "description": "round trip"}
	status, b = e.do(t, "PATCH", "/v1/tenants/acme/endpoints/"+id, key, patch)
	if status != 200 {
		t.Fatalf("patch with the redacted values: %d %s", status, b)
	}
	noSecrets("update", b)
	status, b = e.do(t, "POST", "/v1/tenants/acme/endpoints/"+id+"/test", key, map[string]any{})
	noSecrets("test attempt", b)
	var at aviso.Attempt
	json.Unmarshal(b, &at)
	if status != 200 || at.ResponseStatus != 200 {
		t.Fatalf("test send after the round trip: %d %s", status, b)
	}
	if at.RequestHeaders["Authorization"] != "Basic "+aviso.Redacted || at.RequestHeaders["X-Api-Key"] != aviso.Redacted {
		t.Errorf("attempt headers %v, want Authorization and X-Api-Key redacted", at.RequestHeaders)
	}
	_, b = e.do(t, "GET", "/v1/tenants/acme/deliveries/"+at.DeliveryID, key, nil)
	noSecrets("delivery", b)
	if !strings.Contains(string(b), "Basic "+aviso.Redacted) {
		t.Errorf("the delivery's attempt log does not show the redacted authorization: %s", b)
	}
	// The signing secret stays readable through its own route, and only there.
	var sec struct {
		Signing string `json:"signing"`
		Secret  string `json:"secret"`
	}
	_, b = e.do(t, "GET", "/v1/tenants/acme/endpoints/"+id+"/secret", key, nil)
	noSecrets("secret route", b)
	json.Unmarshal(b, &sec)
	if !strings.HasPrefix(sec.Secret, webhook.SecretPrefix) || sec.Signing != aviso.SigningHMAC {
		t.Errorf("secret route: %s", b)
	}
	// Removing the auth: the receiver refuses the next test send.
	var removed map[string]any
	e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+id, key, map[string]any{"auth": nil}, 200, &removed)
	if _, has := removed["auth"]; has {
		t.Errorf("auth still shown after \"auth\": null: %v", removed["auth"])
	}
	e.call(t, "POST", "/v1/tenants/acme/endpoints/"+id+"/test", key, map[string]any{}, 200, &at)
	if at.ResponseStatus != 401 {
		t.Errorf("test send without auth: %d, want the receiver's 401", at.ResponseStatus)
	}
}

// TestEndpointAuthInvalid: bad auth and secret headers are refused naming the field, and
// nothing is stored.
func TestEndpointAuthInvalid(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	url := "https://127.0.0.1:9/hook"
	before := e.snapshot(t)
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"unknown type", map[string]any{"auth": map[string]any{"type": "digest"}}, "auth.type"},
		{"basic without password", map[string]any{"auth": map[string]any{"type": "basic", "username": "u"}}, "auth.password"},
		{"bearer placeholder", map[string]any{"auth": map[string]any{"type": "bearer", "token": aviso.Redacted}}, "auth"},
		{"oauth2 bad token URL", map[string]any{"auth": map[string]any{"type": "oauth2", "token_url": "ftp://x", "client_id": "a", "client_secret": "b"}}, "auth.token_url"},
		{"mtls bad pem", map[string]any{"auth": map[string]any{"type": "mtls", "cert_pem": "x", "key_pem": "y"}}, "auth.cert_pem"},
		{"unknown auth field", map[string]any{"auth": map[string]any{"type": "bearer", "token": "t", "tokn": "t"}}, "tokn"},
		{"authorization header beside auth", map[string]any{"auth": map[string]any{"type": "bearer", "token": "t"},
			"headers": map[string]any{"authorization": "Bearer x"}}, "headers"},
		{"secret header placeholder", map[string]any{"headers": map[string]any{"X-K": map[string]any{"value": aviso.Redacted, "secret": true}}}, "/headers/X-K"},
		{"header neither string nor object", map[string]any{"headers": map[string]any{"X-K": 5}}, "headers"},
		{"signing unknown", map[string]any{"signing": "rsa"}, "signing"},
		{"ed25519 facturascripts", map[string]any{"signing": "ed25519", "format": "facturascripts"}, "signing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["url"], tc.body["verify"] = url, false
			status, b := e.do(t, "POST", "/v1/tenants/acme/endpoints", key, tc.body)
			var ae apiError
			json.Unmarshal(b, &ae)
			if status != 422 || ae.Error.Field != tc.field {
				t.Errorf("status %d field %q (%s), want 422 on %q", status, ae.Error.Field, b, tc.field)
			}
		})
	}
	if after := e.snapshot(t); after != before {
		t.Errorf("refused requests changed the store")
	}
}

// TestEd25519Endpoint: an endpoint with Ed25519 signing shows its public key (never the
// private one) on the secret route, its test sends verify with that key as any Standard
// Webhooks v1a receiver would, and a rotation overlaps the old and the new key.
func TestEd25519Endpoint(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", "")
	var keys atomic.Value
	keys.Store([]string{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v := webhook.Verifier{Secrets: keys.Load().([]string)}
		if err := v.Verify(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	var ep aviso.Endpoint
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": srv.URL, "signing": "ed25519", "verify": false}, 201, &ep)
	if ep.Signing != aviso.SigningEd25519 {
		t.Fatalf("signing %q", ep.Signing)
	}
	type secretInfo struct {
		Signing string         `json:"signing"`
		Secret  string         `json:"secret"`
		Secrets []aviso.Secret `json:"secrets"`
	}
	var sec secretInfo
	status, b := e.do(t, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/secret", key, nil)
	json.Unmarshal(b, &sec)
	if status != 200 || sec.Signing != "ed25519" || !strings.HasPrefix(sec.Secret, webhook.PublicKeyPrefix) ||
		strings.Contains(string(b), webhook.SigningKeyPrefix) {
		t.Fatalf("secret route of an ed25519 endpoint: %d %s; want its whpk_ key and no whsk_", status, b)
	}
	keys.Store([]string{sec.Secret})
	test := func(want int) {
		t.Helper()
		var at aviso.Attempt
		e.call(t, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/test", key, map[string]any{}, 200, &at)
		if at.ResponseStatus != want || !strings.Contains(at.RequestHeaders["Webhook-Signature"], "v1a,") {
			t.Fatalf("test send: %d (%s) signature %q; want %d and a v1a signature", at.ResponseStatus, at.ResponseBody,
				at.RequestHeaders["Webhook-Signature"], want)
		}
	}
	test(200)
	old := sec.Secret
	e.call(t, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/rotate-secret", key, nil, 200, &sec)
	if len(sec.Secrets) != 2 || sec.Secrets[1].Value != old || sec.Secrets[1].ExpiresAt == nil || sec.Secret == old {
		t.Fatalf("rotation: %+v; want a new public key and the old one expiring", sec)
	}
	test(200) // signed by both keys: the receiver still holding the old one accepts it
	keys.Store([]string{sec.Secret})
	test(200)
	// Back to HMAC: the new whsec_ secret signs beside the Ed25519 keys until they expire.
	e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, key, map[string]any{"signing": "hmac"}, 200, nil)
	e.call(t, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/secret", key, nil, 200, &sec)
	if sec.Signing != "hmac" || !strings.HasPrefix(sec.Secret, webhook.SecretPrefix) || len(sec.Secrets) != 3 {
		t.Fatalf("after switching to hmac: %+v", sec)
	}
	test(200) // the whpk_ receiver still verifies the v1a signature beside the new v1
}
