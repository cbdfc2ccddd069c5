package dispatch_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// TestErrorsRedactURLs delivers through the engine's loop to an endpoint whose stored URL does
// not parse, to a receiver that redirects to a URL with a signature in its query, and to an
// OAuth2 endpoint whose token URL carries a key in its query (one client refused, one accepted):
// the attempts' errors and a debug-level log name each URL as scheme://host/path, never with
// its userinfo or query.
func TestErrorsRedactURLs(t *testing.T) {
	b := backends[0]
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	const (
		urlPass  = "url-pass-Hd71"
		urlToken = "url-token-Jq40"
		locSig   = "loc-sig-Pw62"
		tokenKey = "token-url-key-Zr19"
	)
	secrets := []string{urlPass, urlToken, locSig, tokenKey}
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/moved" {
			w.Header().Set("Location", "https://elsewhere.example/next?sig="+locSig)
			w.WriteHeader(http.StatusFound)
		}
	})
	ts := newTokenServer(t, "aviso-client", "client-secret-Vb52")
	refused := newTokenServer(t, "aviso-client", "another-secret")
	quick := func(e *aviso.Endpoint) { e.RetrySchedule = ms(10) } // one retry, soon
	eps := []*aviso.Endpoint{
		// A space in the host: stored before validation refused it, say.
		newEndpoint(t, s, ten.ID, "https://aviso:"+urlPass+"@exa mple.com/hook?token="+urlToken, quick),
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/moved", quick),
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/oauth", func(e *aviso.Endpoint) {
			quick(e)
			e.Auth = oauth2Auth(ts.srv.URL + "/token?api_key=" + tokenKey)
		}),
		newEndpoint(t, s, ten.ID, rc.srv.URL+"/refused", func(e *aviso.Endpoint) {
			quick(e)
			e.Auth = oauth2Auth(refused.srv.URL + "/token?api_key=" + tokenKey)
		}),
	}
	want := map[string]string{
		eps[0].ID: `invalid URL "https://exa mple.com/hook": invalid character " " in host name`,
		eps[1].ID: "redirect 302 not followed (Location: https://elsewhere.example/next)",
		eps[2].ID: "",
		eps[3].ID: "OAuth2 token request to " + refused.srv.URL + "/token failed: HTTP 401 invalid_client",
	}
	publish(t, s, ten.ID, 1, time.Now(), eps...)
	cfg := config(s)
	var logs func() string
	cfg.Logger, logs = debugLogger()
	start(t, cfg)
	for _, ep := range eps {
		waitFor(t, ep.URL+" attempted", func() bool {
			return countStatus(t, s, ten.ID, ep.ID, aviso.StatusPending) == 0
		})
		for _, d := range deliveries(t, s, ten.ID, ep.ID) {
			full := getDelivery(t, s, ten.ID, d.ID)
			if len(full.Attempts) == 0 || full.LastError != want[ep.ID] {
				t.Errorf("%s: last error %q after %d attempts, want %q", ep.URL, full.LastError, len(full.Attempts), want[ep.ID])
			}
			for _, a := range full.Attempts {
				if a.Error != want[ep.ID] {
					t.Errorf("%s: attempt error %q, want %q", ep.URL, a.Error, want[ep.ID])
				}
				a.URL = "" // the endpoint's own URL, as the tenant gave it
				raw, _ := json.Marshal(a)
				for _, secret := range secrets {
					if strings.Contains(string(raw), secret) {
						t.Errorf("%s: the attempt holds %q: %s", ep.URL, secret, raw)
					}
				}
			}
		}
	}
	if !strings.Contains(logs(), "token_url="+ts.srv.URL+"/token ") {
		t.Errorf("the debug log does not name the token URL redacted:\n%s", logs())
	}
	for _, secret := range secrets {
		if strings.Contains(logs(), secret) {
			t.Errorf("the debug log holds %q:\n%s", secret, logs())
		}
	}
}
