package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/web"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		key      string
		status   int
		location string
	}{
		{"root key", rootKey, http.StatusSeeOther, "/ui/tenants"},
		{"tenant key", e.tenantKey, http.StatusSeeOther, "/ui/t/acme/endpoints"},
		{"unknown key", "avk_nope", http.StatusUnauthorized, ""},
		{"empty key", "", http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.user(t)
			u.get("/ui/login")
			r := u.post("/ui/login", url.Values{"key": {tt.key}})
			wantStatus(t, r, tt.status)
			if r.location != tt.location {
				t.Errorf("Location = %q, want %q", r.location, tt.location)
			}
			if tt.status == http.StatusUnauthorized {
				wantContains(t, r, "That API key is not valid.")
				return
			}
			var c *http.Cookie
			for _, ck := range (&http.Response{Header: r.header}).Cookies() {
				if ck.Name == "aviso_session" {
					c = ck
				}
			}
			if c == nil {
				t.Fatal("no session cookie set")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
				t.Errorf("session cookie HttpOnly %v SameSite %v Secure %v; want HttpOnly, Lax, not Secure over HTTP", c.HttpOnly, c.SameSite, c.Secure)
			}
			if strings.Contains(c.Value, tt.key) {
				t.Error("the session cookie carries the API key")
			}
		})
	}
}

func TestSecureCookie(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.Secure = true })
	u := e.user(t)
	u.get("/ui/login")
	r := u.post("/ui/login", url.Values{"key": {rootKey}})
	wantStatus(t, r, http.StatusSeeOther)
	found := false
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "aviso_session" {
			found = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteNoneMode {
				t.Errorf("Secure %v HttpOnly %v SameSite %v; want Secure, HttpOnly, None (iframe embedding under TLS)", c.Secure, c.HttpOnly, c.SameSite)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}

func TestSignedOutRedirects(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	for _, p := range []string{"/ui/", "/ui/tenants", "/ui/t/acme/endpoints", "/ui/catalog"} {
		t.Run(p, func(t *testing.T) {
			r := u.get(p)
			wantStatus(t, r, http.StatusSeeOther)
			if r.location != "/ui/login" {
				t.Errorf("Location = %q, want /ui/login", r.location)
			}
		})
	}
	t.Run("post without session", func(t *testing.T) {
		wantStatus(t, u.post("/ui/tenants", url.Values{"name": {"x"}}), http.StatusForbidden)
	})
}

func TestPagesRender(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, http.StatusOK)
	ep := e.createEndpoint(t, "acme", rcv.URL+"/hook")
	ctx := context.Background()
	att, err := e.svc.SendTest(ctx, root, "acme", ep.ID, serviceTest("invoice.created"))
	if err != nil {
		t.Fatalf("send test: %v", err)
	}
	u := e.user(t)
	u.login(rootKey)
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"tenants", "/ui/tenants", []string{"Tenant acme", "/ui/t/other/endpoints", "New tenant"}},
		{"catalog", "/ui/catalog", []string{"invoice.created", "JSON Schema", "Example"}},
		{"endpoints", "/ui/t/acme/endpoints", []string{rcv.URL + "/hook", "Enabled", "100 % (1/1)", "HTTP 200", "<svg", "Attempts in the last 24 hours"}},
		{"new endpoint", "/ui/t/acme/endpoints/new", []string{`name="url"`, `value="invoice.paid"`, `<option value="alegra"`, `name="retry_schedule"`}},
		{"endpoint", "/ui/t/acme/endpoints/" + ep.ID, []string{ep.ID, "Reveal the signing secret", "Send test event", "Replay deliveries"}},
		{"endpoint with secret", "/ui/t/acme/endpoints/" + ep.ID + "?reveal=1", []string{"whsec_", "data-copy=\"secret-value\""}},
		{"edit endpoint", "/ui/t/acme/endpoints/" + ep.ID + "/edit", []string{"Edit endpoint", rcv.URL + "/hook"}},
		{"deliveries", "/ui/t/acme/deliveries", []string{att.DeliveryID, "invoice.created", "Succeeded"}},
		{"delivery", "/ui/t/acme/deliveries/" + att.DeliveryID, []string{"Request headers", "Webhook-Id", "Response body", "&lt;b&gt;received&lt;/b&gt;", "Retry now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := u.get(tt.path)
			wantStatus(t, r, http.StatusOK)
			wantContains(t, r, tt.want...)
			if strings.Contains(r.body, "<b>received</b>") {
				t.Error("a response body was rendered unescaped")
			}
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("operator page CSP %q: it must not be framed", csp)
			}
		})
	}
	t.Run("unknown page", func(t *testing.T) {
		wantStatus(t, u.get("/ui/nope"), http.StatusNotFound)
	})
	t.Run("static", func(t *testing.T) {
		r := u.get("/ui/static/app.css")
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r, ":focus-visible")
	})
}

func TestCreateTenantForm(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	u.get("/ui/tenants")
	u.login(rootKey)
	r := u.post("/ui/tenants", url.Values{"id": {"newco"}, "name": {"New Co"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != "/ui/t/newco/endpoints?ok=tenant_created" {
		t.Errorf("Location = %q", r.location)
	}
	wantContains(t, u.follow(r), "Tenant created.", "New Co")
	t.Run("duplicate", func(t *testing.T) {
		u.get("/ui/tenants")
		r := u.post("/ui/tenants", url.Values{"id": {"newco"}, "name": {"Again"}})
		wantStatus(t, r, http.StatusConflict) // as the API answers (aviso.HTTPStatus)
		wantContains(t, r, "already exists")
	})
	t.Run("invalid", func(t *testing.T) {
		r := u.post("/ui/tenants", url.Values{"id": {"bad id!"}, "name": {"X"}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r, `id="tenant-id-error">must be`)
	})
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	u.login(rootKey)
	u.get("/ui/tenants")
	good := u.csrf
	tests := []struct {
		name string
		path string
		form url.Values
		hdr  []string
	}{
		{"missing token", "/ui/tenants", url.Values{"csrf": {""}, "id": {"t1"}, "name": {"x"}}, nil},
		{"wrong token", "/ui/tenants", url.Values{"csrf": {"AAAA"}, "id": {"t2"}, "name": {"x"}}, nil},
		{"cross-site request with a valid token", "/ui/tenants", url.Values{"csrf": {good}, "id": {"t3"}, "name": {"x"}},
			[]string{"Sec-Fetch-Site", "cross-site"}},
		{"foreign origin", "/ui/tenants", url.Values{"csrf": {good}, "id": {"t4"}, "name": {"x"}},
			[]string{"Origin", "https://evil.example"}},
		{"login without token", "/ui/login", url.Values{"csrf": {""}, "key": {rootKey}}, nil},
		{"logout without token", "/ui/logout", url.Values{"csrf": {""}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := u.post(tt.path, tt.form, tt.hdr...)
			wantStatus(t, r, http.StatusForbidden)
		})
	}
	page, err := e.svc.ListTenants(context.Background(), root, aviso.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 {
		t.Errorf("%d tenants after rejected forms, want the 2 seeded", len(page.Data))
	}
	// The session survived the rejected logout and the good token still works.
	wantStatus(t, u.post("/ui/tenants", url.Values{"csrf": {good}, "id": {"ok1"}, "name": {"x"}}), http.StatusSeeOther)
}

func TestEndpointLifecycle(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, http.StatusOK)
	u := e.user(t)
	u.login(e.tenantKey)
	u.get("/ui/t/acme/endpoints/new")

	r := u.post("/ui/t/acme/endpoints", url.Values{
		"url": {rcv.URL + "/in"}, "description": {"Billing <prod>"}, "event_types": {"invoice.created", "invoice.paid"},
		"format": {"standard"}, "headers": {"X-Team: billing\n"}, "timeout_seconds": {"7"},
		"retry_schedule": {"5s, 1m"}, "verify": {"1"}})
	wantStatus(t, r, http.StatusSeeOther)
	waitFor(t, rcv.got, "the subscription handshake")
	page := u.follow(r)
	wantContains(t, page, "Endpoint created.", rcv.URL+"/in", "Billing &lt;prod&gt;", "X-Team: billing", "5s 1m0s", "invoice.paid")
	epID := strings.TrimSuffix(strings.TrimPrefix(r.location, "/ui/t/acme/endpoints/"), "?ok=endpoint_created")
	base := "/ui/t/acme/endpoints/" + epID
	ep, err := e.svc.GetEndpoint(context.Background(), root, "acme", epID)
	if err != nil {
		t.Fatalf("stored endpoint: %v", err)
	}
	if ep.TimeoutSeconds != 7 || len(ep.EventTypes) != 2 || ep.Headers["X-Team"] != "billing" || ep.VerifiedAt == nil {
		t.Errorf("stored endpoint %+v", ep)
	}

	t.Run("edit", func(t *testing.T) {
		u.get(base + "/edit")
		r := u.post(base+"/edit", url.Values{"url": {rcv.URL + "/in"}, "description": {"renamed"},
			"event_types": {"invoice.created"}, "format": {"alegra"}, "timeout_seconds": {"9"}})
		wantStatus(t, r, http.StatusSeeOther)
		wantContains(t, u.follow(r), "Endpoint saved.", "renamed", "alegra")
		ep, _ := e.svc.GetEndpoint(context.Background(), root, "acme", epID)
		if ep.Format != aviso.FormatAlegra || ep.TimeoutSeconds != 9 || len(ep.EventTypes) != 1 || len(ep.Headers) != 0 {
			t.Errorf("edited endpoint %+v", ep)
		}
	})

	t.Run("rotate secret", func(t *testing.T) {
		before, _ := e.svc.GetSecret(context.Background(), root, "acme", epID)
		// The page links to a confirmation; a post without the confirmation only asks.
		wantContains(t, u.get(base), `href="`+base+`/rotate"`)
		ask := u.get(base + "/rotate")
		wantStatus(t, ask, http.StatusOK)
		wantContains(t, ask, "keeps signing alongside it for 24 hours", `name="confirm" value="yes"`)
		wantStatus(t, u.post(base+"/rotate", nil), http.StatusOK)
		if now, _ := e.svc.GetSecret(context.Background(), root, "acme", epID); now.Secret != before.Secret {
			t.Fatal("a post without the confirmation rotated the secret")
		}
		r := u.post(base+"/rotate", url.Values{"confirm": {"yes"}})
		wantStatus(t, r, http.StatusSeeOther)
		page := u.follow(r)
		after, _ := e.svc.GetSecret(context.Background(), root, "acme", epID)
		if after.Secret == before.Secret || len(after.Secrets) != 2 {
			t.Fatalf("after rotation: %d secrets, changed %v", len(after.Secrets), after.Secret != before.Secret)
		}
		if !strings.Contains(html.UnescapeString(page.body), after.Secret) {
			t.Error("the new secret is not shown")
		}
		wantContains(t, page, "Secret rotated.")
	})

	t.Run("send test", func(t *testing.T) {
		u.get(base)
		r := u.post(base+"/test", url.Values{"type": {"invoice.created"},
			"data": {`{"id":"F-1","number":"<script>alert(1)</script>","total":10}`}})
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r, "Result", "HTTP 200", "&lt;b&gt;received&lt;/b&gt;", "Open this delivery in the log")
		rcv.mu.Lock()
		last := rcv.bodies[len(rcv.bodies)-1]
		rcv.mu.Unlock()
		if !strings.Contains(last, "F-1") {
			t.Errorf("receiver got %q, want the edited payload", last)
		}
		if strings.Contains(r.body, "<script>alert") {
			t.Error("payload rendered unescaped")
		}
	})

	t.Run("bad test payload", func(t *testing.T) {
		r := u.post(base+"/test", url.Values{"type": {"invoice.created"}, "data": {`{not json`}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r, "data: is not valid JSON")
	})

	t.Run("delivery log and detail", func(t *testing.T) {
		r := u.get("/ui/t/acme/deliveries?status=succeeded&type=invoice.created")
		wantStatus(t, r, http.StatusOK)
		d, err := e.store.ListDeliveries(context.Background(), aviso.ListDeliveriesParams{TenantID: "acme"})
		if err != nil || len(d.Data) != 1 {
			t.Fatalf("deliveries: %v, %v", d, err)
		}
		dl := d.Data[0]
		wantContains(t, r, dl.ID)
		for _, q := range []string{"status=failed", "type=invoice.paid", "since=2999-01-01T00:00"} {
			if r := u.get("/ui/t/acme/deliveries?" + q); strings.Contains(r.body, dl.ID) {
				t.Errorf("filter %s still lists %s", q, dl.ID)
			}
		}
		r = u.get("/ui/t/acme/deliveries/" + dl.ID)
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r, "alert(1)", "Webhook-Signature", "HTTP 200", " ms")
		if strings.Contains(r.body, "<script>alert") {
			t.Error("request body rendered unescaped")
		}

		// Retry shows what it will send first; only the confirmed post queues it.
		ask := u.get("/ui/t/acme/deliveries/" + dl.ID + "/retry")
		wantStatus(t, ask, http.StatusOK)
		wantContains(t, ask, "Send this event to the endpoint again now?", rcv.URL, "alert(1)", `name="confirm" value="yes"`)
		wantStatus(t, u.post("/ui/t/acme/deliveries/"+dl.ID+"/retry", nil), http.StatusOK)
		if got, _ := e.svc.GetDelivery(context.Background(), root, "acme", dl.ID); got.Status != aviso.StatusSucceeded {
			t.Fatalf("a retry without confirmation queued the delivery: %s", got.Status)
		}
		r = u.post("/ui/t/acme/deliveries/"+dl.ID+"/retry", url.Values{"confirm": {"yes"}})
		wantStatus(t, r, http.StatusSeeOther)
		wantContains(t, u.follow(r), "Delivery queued for another attempt.", "Pending")
	})

	t.Run("replay", func(t *testing.T) {
		ask := u.get(base + "/replay?since=2000-01-01T00:00&status=all")
		wantStatus(t, ask, http.StatusOK)
		if !regexp.MustCompile(`Queue \d+ deliveries of this endpoint again\?`).MatchString(ask.body) {
			t.Errorf("replay confirmation does not say how many: %s", excerpt(ask.body))
		}
		wantContains(t, ask, `name="since" value="2000-01-01T00:00"`, `name="status" value="all"`)
		r := u.post(base+"/replay", url.Values{"since": {"2000-01-01T00:00"}, "status": {"all"}, "confirm": {"yes"}})
		wantStatus(t, r, http.StatusSeeOther)
		wantContains(t, u.follow(r), "Deliveries queued again.")
	})

	t.Run("disable and enable", func(t *testing.T) {
		u.get(base)
		r := u.post(base+"/disable", nil)
		wantStatus(t, r, http.StatusSeeOther)
		wantContains(t, u.follow(r), "Endpoint disabled", "by hand")
		ep, _ := e.svc.GetEndpoint(context.Background(), root, "acme", epID)
		if !ep.Disabled || ep.DisabledReason != aviso.DisabledByUser {
			t.Fatalf("endpoint disabled %v reason %q", ep.Disabled, ep.DisabledReason)
		}
		wantContains(t, u.get("/ui/t/acme/endpoints"), "Disabled", "by hand")
		r = u.post(base+"/enable", nil)
		wantStatus(t, r, http.StatusSeeOther)
		wantContains(t, u.follow(r), "Endpoint enabled.")
		if ep, _ := e.svc.GetEndpoint(context.Background(), root, "acme", epID); ep.Disabled {
			t.Error("endpoint still disabled")
		}
	})

	t.Run("delete", func(t *testing.T) {
		ask := u.get(base + "/delete")
		wantStatus(t, ask, http.StatusOK)
		wantContains(t, ask, "Delete this endpoint?", "cannot be undone")
		wantStatus(t, u.post(base+"/delete", nil), http.StatusOK)
		if _, err := e.svc.GetEndpoint(context.Background(), root, "acme", epID); err != nil {
			t.Fatalf("a post without the confirmation deleted the endpoint: %v", err)
		}
		r := u.post(base+"/delete", url.Values{"confirm": {"yes"}})
		wantStatus(t, r, http.StatusSeeOther)
		if _, err := e.svc.GetEndpoint(context.Background(), root, "acme", epID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
			t.Errorf("endpoint after delete: %v", err)
		}
	})
}

func TestEndpointFormErrors(t *testing.T) {
	e := newEnv(t)
	failing := newReceiver(t, http.StatusInternalServerError)
	u := e.user(t)
	u.login(rootKey)
	u.get("/ui/t/acme/endpoints/new")
	tests := []struct {
		name string
		form url.Values
		id   string // the field's element id
		want string
	}{
		{"bad url", url.Values{"url": {"ftp://x"}, "format": {"standard"}}, "url", "must be an absolute"},
		{"bad header line", url.Values{"url": {failing.URL}, "headers": {"no colon here"}}, "headers", "line 1"},
		{"bad retry", url.Values{"url": {failing.URL}, "retry_schedule": {"soon"}}, "retry", "is not a duration"},
		{"bad timeout", url.Values{"url": {failing.URL}, "timeout_seconds": {"99"}, "format": {"standard"}}, "timeout", "30"},
		{"handshake refused", url.Values{"url": {failing.URL}, "format": {"standard"}, "verify": {"1"}}, "url",
			"The URL did not accept the verification request: it answered HTTP 500."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := u.post("/ui/t/acme/endpoints", tt.form)
			wantStatus(t, r, http.StatusUnprocessableEntity)
			// The banner says to look at the field; the field is marked and carries the message.
			wantContains(t, r, "Check the field marked below.", `aria-invalid="true" aria-describedby="`+tt.id+`-error"`,
				`<span class="field-error" id="`+tt.id+`-error">`)
			i := strings.Index(r.body, `id="`+tt.id+`-error">`)
			if i < 0 || !strings.Contains(r.body[i:min(len(r.body), i+400)], html.EscapeString(tt.want)) {
				t.Errorf("the %s field's message lacks %q: %s", tt.id, tt.want, excerpt(r.body))
			}
			if strings.Contains(r.body, `"verify": false`) || strings.Contains(r.body, tt.id+": ") {
				t.Error("the form shows API wording")
			}
		})
	}
	t.Run("spanish", func(t *testing.T) {
		r := u.post("/ui/t/acme/endpoints", url.Values{"url": {failing.URL}, "format": {"standard"}, "verify": {"1"}},
			"Accept-Language", "es")
		wantContains(t, r, "Revise el campo marcado abajo.", "La URL no aceptó la petición de verificación: respondió HTTP 500.")
	})
	t.Run("error page headings", func(t *testing.T) {
		r := u.get("/ui/t/nope/endpoints", "Accept-Language", "es")
		wantStatus(t, r, http.StatusNotFound)
		wantContains(t, r, "<h1>No encontrado</h1>")
		if strings.Contains(r.body, "Not Found") {
			t.Error("a Spanish error page has an English heading")
		}
	})
	page, err := e.svc.ListEndpoints(context.Background(), root, "acme", aviso.ListParams{})
	if err != nil || len(page.Data) != 0 {
		t.Errorf("endpoints after rejected forms: %d, %v", len(page.Data), err)
	}
}

func TestCrossTenant(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, http.StatusOK)
	theirs := e.createEndpoint(t, "other", rcv.URL)
	u := e.user(t)
	u.login(e.tenantKey)
	u.get("/ui/t/acme/endpoints")

	gets := []string{
		"/ui/t/other/endpoints",
		"/ui/t/other/endpoints/new",
		"/ui/t/other/endpoints/" + theirs.ID,
		"/ui/t/other/endpoints/" + theirs.ID + "/edit",
		"/ui/t/acme/endpoints/" + theirs.ID,
		"/ui/t/other/deliveries",
		"/ui/t/other/deliveries/dlv_nope",
		"/ui/t/nonexistent/endpoints",
	}
	for _, p := range gets {
		t.Run("GET "+p, func(t *testing.T) {
			r := u.get(p)
			wantStatus(t, r, http.StatusNotFound)
			if strings.Contains(r.body, rcv.URL) {
				t.Error("another tenant's endpoint URL leaked")
			}
		})
	}
	posts := []string{"/disable", "/enable", "/rotate", "/test", "/delete", "/edit", "/replay"}
	for _, p := range posts {
		t.Run("POST "+p, func(t *testing.T) {
			r := u.post("/ui/t/other/endpoints/"+theirs.ID+p, url.Values{"url": {"http://127.0.0.1:1/"}, "since": {"2000-01-01T00:00"}})
			wantStatus(t, r, http.StatusNotFound)
		})
	}
	after, err := e.svc.GetEndpoint(context.Background(), root, "other", theirs.ID)
	if err != nil || after.Disabled || after.URL != theirs.URL || len(after.Secrets) != 1 {
		t.Errorf("the other tenant's endpoint changed: %+v, %v", after, err)
	}
	t.Run("tenants page is root only", func(t *testing.T) {
		wantStatus(t, u.get("/ui/tenants"), http.StatusForbidden)
		wantStatus(t, u.post("/ui/tenants", url.Values{"name": {"x"}}), http.StatusForbidden)
	})
	t.Run("navigation has no tenants link", func(t *testing.T) {
		r := u.get("/ui/t/acme/endpoints")
		if strings.Contains(r.body, `href="/ui/tenants"`) {
			t.Error("a tenant key sees the tenants link")
		}
	})
}

func TestPortalLink(t *testing.T) {
	e := newEnv(t, func(c *web.Config) {
		c.BaseURL = "https://aviso.example"
		c.PortalFrameAncestors = "https://platform.example"
	})
	ctx := context.Background()
	acmeKey := aviso.Principal{KeyID: "k", TenantID: "acme"}

	t.Run("scope of the issuer", func(t *testing.T) {
		if _, _, err := e.ui.PortalLink(ctx, acmeKey, "other", 0); aviso.ErrorCode(err) != aviso.ENOTFOUND {
			t.Errorf("tenant key linking another tenant: %v, want not_found", err)
		}
		if _, _, err := e.ui.PortalLink(ctx, root, "missing", 0); aviso.ErrorCode(err) != aviso.ENOTFOUND {
			t.Errorf("link to a missing tenant: %v, want not_found", err)
		}
		if _, _, err := e.ui.PortalLink(ctx, root, "acme", 48*time.Hour); aviso.ErrorField(err) != "ttl" {
			t.Errorf("48h link: %v, want invalid ttl", err)
		}
	})

	link, exp, err := e.ui.PortalLink(ctx, acmeKey, "acme", 10*time.Minute)
	if err != nil {
		t.Fatalf("PortalLink: %v", err)
	}
	if want := e.clock.Now().Add(10 * time.Minute); exp.After(want) || exp.Before(want.Add(-time.Second)) {
		t.Errorf("expires_at %v, want about %v", exp, want)
	}
	path, ok := strings.CutPrefix(link, "https://aviso.example")
	if !ok || !strings.HasPrefix(path, "/ui/portal?t=") {
		t.Fatalf("link %q", link)
	}

	u := e.user(t)
	r := u.get(path)
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != "/ui/t/acme/endpoints" {
		t.Fatalf("portal redirects to %q", r.location)
	}
	page := u.follow(r)
	wantContains(t, page, "Tenant acme")
	if got := page.header.Get("Content-Security-Policy"); !strings.HasSuffix(got, "frame-ancestors https://platform.example") {
		t.Errorf("portal page CSP %q: the configured sites must be able to frame it", got)
	}
	if got := e.user(t).get("/ui/login").header.Get("Content-Security-Policy"); !strings.HasSuffix(got, "frame-ancestors 'none'") {
		t.Errorf("sign-in page CSP %q: it must not be framed", got)
	}
	tests := []struct {
		path   string
		status int
	}{
		{"/ui/t/acme/deliveries", http.StatusOK},
		{"/ui/catalog", http.StatusOK},
		{"/ui/t/other/endpoints", http.StatusNotFound},
		{"/ui/t/other/deliveries", http.StatusNotFound},
		{"/ui/tenants", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) { wantStatus(t, u.get(tt.path), tt.status) })
	}
	t.Run("tampered link", func(t *testing.T) {
		wantStatus(t, e.user(t).get(strings.Replace(path, "t=", "t=x", 1)), http.StatusForbidden)
	})
	t.Run("expired link", func(t *testing.T) {
		e.clock.Add(11 * time.Minute)
		r := e.user(t).get(path)
		wantStatus(t, r, http.StatusForbidden)
		wantContains(t, r, "expired")
	})
}

func TestLanguage(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, accept, want, lang string
	}{
		{"default english", "", "Sign in", `lang="en"`},
		{"spanish from Accept-Language", "es-ES,es;q=0.9,en;q=0.5", "Iniciar sesión", `lang="es"`},
		{"english preferred", "en-GB,es;q=0.2", "Sign in", `lang="en"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.user(t).get("/ui/login", "Accept-Language", tt.accept)
			wantStatus(t, r, http.StatusOK)
			wantContains(t, r, tt.want, tt.lang)
		})
	}
	t.Run("switch", func(t *testing.T) {
		u := e.user(t)
		u.login(rootKey)
		r := u.get("/ui/lang/es?next=/ui/t/acme/endpoints")
		wantStatus(t, r, http.StatusSeeOther)
		if r.location != "/ui/t/acme/endpoints" {
			t.Errorf("switch redirects to %q", r.location)
		}
		page := u.follow(r)
		wantContains(t, page, `lang="es"`, "Nuevo endpoint", "Cerrar sesión", `aria-current="true">Español`)
		// The cookie wins over Accept-Language.
		wantContains(t, u.get("/ui/catalog", "Accept-Language", "en"), "Catálogo de eventos")
		wantContains(t, u.follow(u.get("/ui/lang/en?next=/ui/catalog")), "Event catalog")
	})
	t.Run("no open redirect", func(t *testing.T) {
		r := e.user(t).get("/ui/lang/es?next=https://evil.example/")
		if r.location != "/ui/" {
			t.Errorf("Location = %q, want /ui/", r.location)
		}
	})
	t.Run("unknown language", func(t *testing.T) {
		wantStatus(t, e.user(t).get("/ui/lang/fr"), http.StatusNotFound)
	})
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	u.login(rootKey)
	u.get("/ui/tenants")
	r := u.post("/ui/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	r = u.get("/ui/tenants")
	if r.status != http.StatusSeeOther || r.location != "/ui/login" {
		t.Errorf("after sign-out: %d to %q, want the sign-in page", r.status, r.location)
	}
}

func TestCatalogEditor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const path = "/ui/catalog/invoice.paid/edit"
	before, err := e.svc.GetEventType(ctx, root, "invoice.paid")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("tenant key and portal cannot edit", func(t *testing.T) {
		link, _, err := e.ui.PortalLink(ctx, root, "acme", 0)
		if err != nil {
			t.Fatal(err)
		}
		portal := e.user(t)
		portal.follow(portal.get(link))
		tenant := e.user(t)
		tenant.login(e.tenantKey)
		for name, u := range map[string]*user{"portal": portal, "tenant key": tenant} {
			if r := u.get("/ui/catalog"); strings.Contains(r.body, path) {
				t.Errorf("%s sees the edit link", name)
			}
			wantStatus(t, u.get(path), http.StatusForbidden)
			wantStatus(t, u.post(path, url.Values{"description": {"hacked"}}), http.StatusForbidden)
		}
		after, _ := e.svc.GetEventType(ctx, root, "invoice.paid")
		if after.Description != before.Description {
			t.Errorf("description changed to %q", after.Description)
		}
	})

	u := e.user(t)
	u.login(rootKey)
	wantContains(t, u.get("/ui/catalog"), path)
	t.Run("invalid schema", func(t *testing.T) {
		wantContains(t, u.get(path), "Edit event type", `name="schema"`)
		r := u.post(path, url.Values{"description": {"x"}, "schema": {`{"type": 5}`}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r, "schema:")
		r = u.post(path, url.Values{"description": {"x"}, "example": {`{oops`}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r, "example: is not valid JSON")
	})
	t.Run("save", func(t *testing.T) {
		u.get(path)
		r := u.post(path, url.Values{"description": {"An invoice was paid <fully>"}, "description_es": {"Se pagó una factura"},
			"schema": {`{"type":"object","required":["id"]}`}, "example": {`{"id":"F-9"}`}})
		wantStatus(t, r, http.StatusSeeOther)
		wantContains(t, u.follow(r), "Event type saved.", "An invoice was paid &lt;fully&gt;")
		after, _ := e.svc.GetEventType(ctx, root, "invoice.paid")
		if after.Descriptions["es"] != "Se pagó una factura" || !strings.Contains(string(after.Schema), `"required"`) {
			t.Errorf("saved %+v", after)
		}
		wantContains(t, u.get("/ui/catalog", "Cookie", "aviso_lang=es"), "Se pagó una factura")
	})
}
