package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// sessionCookie returns the value of the jar's session cookie for the dashboard.
func (u *user) sessionCookie() string {
	u.tb.Helper()
	base, _ := url.Parse(u.e.srv.URL + "/ui/")
	for _, c := range u.c.Jar.Cookies(base) {
		if c.Name == "aviso_session" {
			return c.Value
		}
	}
	return ""
}

// withCookie is a fresh user holding only a copy of another's session cookie.
func (e *env) withCookie(tb testing.TB, value string) *user {
	tb.Helper()
	u := e.user(tb)
	base, _ := url.Parse(e.srv.URL + "/ui/")
	u.c.Jar.SetCookies(base, []*http.Cookie{{Name: "aviso_session", Value: value, Path: "/ui/"}})
	return u
}

func TestSignOutEndsSessionOnServer(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name, key, page string
	}{
		{"root key", rootKey, "/ui/tenants"},
		{"tenant key", e.tenantKey, "/ui/t/acme/endpoints"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := e.user(t)
			u.login(tt.key)
			copied := u.sessionCookie()
			thief := e.withCookie(t, copied)
			wantStatus(t, thief.get(tt.page), http.StatusOK) // the copy works while the session lives

			r := u.post("/ui/logout", nil)
			wantStatus(t, r, http.StatusSeeOther)
			if r.location != "/ui/login?ok=signed_out" {
				t.Errorf("sign-out goes to %q, want the sign-in page", r.location)
			}
			wantContains(t, u.follow(r), "You have signed out.")
			r = thief.get(tt.page)
			if r.status != http.StatusSeeOther || r.location != "/ui/login" {
				t.Errorf("the copied cookie after sign-out: %d to %q, want the sign-in page", r.status, r.location)
			}
			wantStatus(t, thief.post("/ui/tenants", url.Values{"name": {"x"}}), http.StatusForbidden)
			// Signing in again opens a new session.
			u.login(tt.key)
			wantStatus(t, u.get(tt.page), http.StatusOK)
		})
	}
}

func TestKeyChangeEndsSessions(t *testing.T) {
	t.Run("root key replaced", func(t *testing.T) {
		e := newEnv(t)
		u := e.user(t)
		u.login(rootKey)
		wantStatus(t, u.get("/ui/tenants"), http.StatusOK)
		if _, err := e.svc.EnsureRootKey(context.Background(), "avk_a_new_root_key_for_web_tests"); err != nil {
			t.Fatal(err)
		}
		if r := u.get("/ui/tenants"); r.status != http.StatusSeeOther || r.location != "/ui/login" {
			t.Errorf("session of the replaced root key: %d to %q, want the sign-in page", r.status, r.location)
		}
		u2 := e.user(t)
		u2.login("avk_a_new_root_key_for_web_tests")
		wantStatus(t, u2.get("/ui/tenants"), http.StatusOK)
	})
	t.Run("tenant and its keys deleted", func(t *testing.T) {
		e := newEnv(t)
		u := e.user(t)
		u.login(e.tenantKey)
		wantStatus(t, u.get("/ui/t/acme/endpoints"), http.StatusOK)
		if err := e.svc.DeleteTenant(context.Background(), root, "acme"); err != nil {
			t.Fatal(err)
		}
		if r := u.get("/ui/t/acme/endpoints"); r.status != http.StatusSeeOther || r.location != "/ui/login" {
			t.Errorf("session of a deleted key: %d to %q, want the sign-in page", r.status, r.location)
		}
	})
}

func TestPortalSignOut(t *testing.T) {
	e := newEnv(t)
	link, _, err := e.ui.PortalLink(context.Background(), root, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	u := e.user(t)
	u.follow(u.get(link))
	wantStatus(t, u.get("/ui/t/acme/deliveries"), http.StatusOK)
	thief := e.withCookie(t, u.sessionCookie())

	r := u.post("/ui/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != "/ui/portal/ended" {
		t.Fatalf("portal sign-out goes to %q, want /ui/portal/ended", r.location)
	}
	page := u.follow(r)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page, "This link has ended", "open the webhooks page again")
	if strings.Contains(page.body, `name="key"`) {
		t.Error("a portal user is shown the API-key sign-in form")
	}
	// The copied cookie goes to the ended page too, and the link no longer opens a session.
	if r := thief.get("/ui/t/acme/endpoints"); r.status != http.StatusSeeOther || r.location != "/ui/portal/ended" {
		t.Errorf("copied portal cookie after sign-out: %d to %q", r.status, r.location)
	}
	again := e.user(t).get(link)
	wantStatus(t, again, http.StatusForbidden)
	wantContains(t, again, "This link has ended")
	// Another link of the same tenant (issued a second later, so another token) still works.
	e.clock.Add(time.Second)
	other, _, err := e.ui.PortalLink(context.Background(), root, "acme", 0)
	if err != nil || other == link {
		t.Fatalf("second link %q (%v), want a new one", other, err)
	}
	nu := e.user(t)
	wantStatus(t, nu.follow(nu.get(other)), http.StatusOK)
}

func TestDeleteTenantConfirmation(t *testing.T) {
	e := newEnv(t)
	u := e.user(t)
	u.login(rootKey)
	wantContains(t, u.get("/ui/t/other/endpoints"), `href="/ui/t/other/delete"`)
	ask := u.get("/ui/t/other/delete")
	wantStatus(t, ask, http.StatusOK)
	wantContains(t, ask, "Delete this tenant?", "Tenant other")
	wantStatus(t, u.post("/ui/t/other/delete", nil), http.StatusOK)
	if _, err := e.svc.GetTenant(context.Background(), root, "other"); err != nil {
		t.Fatalf("a post without the confirmation deleted the tenant: %v", err)
	}
	r := u.post("/ui/t/other/delete", url.Values{"confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, u.follow(r), "Tenant deleted.")
	if _, err := e.svc.GetTenant(context.Background(), root, "other"); aviso.ErrorCode(err) != aviso.ENOTFOUND {
		t.Errorf("tenant after confirmed delete: %v", err)
	}

	tu := e.user(t)
	tu.login(e.tenantKey)
	if strings.Contains(tu.get("/ui/t/acme/endpoints").body, "/ui/t/acme/delete") {
		t.Error("a tenant key is offered to delete its tenant")
	}
	wantStatus(t, tu.get("/ui/t/acme/delete"), http.StatusForbidden)
	wantStatus(t, tu.post("/ui/t/acme/delete", url.Values{"confirm": {"yes"}}), http.StatusForbidden)
}
