package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso/web"
)

func TestPortalBrand(t *testing.T) {
	brand := web.Brand{Name: "Facturas Acme", LogoURL: "https://cdn.example/logo.png", PrimaryColor: "#1d4ed8",
		SupportURL: "https://help.example/webhooks"}
	e := newEnv(t, func(c *web.Config) { c.Brand = brand })
	link, _, err := e.ui.PortalLink(context.Background(), root, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	u := e.user(t)
	page := u.follow(u.get(link))
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page, "<title>Endpoints · Facturas Acme</title>", `<img src="https://cdn.example/logo.png" alt="" height="28">Facturas Acme`,
		`<span class="tenant-name">Tenant acme</span>`, `href="https://help.example/webhooks"`, `href="/ui/brand.css"`)
	if strings.Contains(page.body, `class="brand" href="/ui/">Aviso`) {
		t.Error("the portal is still branded Aviso")
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.example;") {
		t.Errorf("portal CSP %q does not allow the logo's origin", csp)
	}
	wantContains(t, u.get("/ui/brand.css"), "--accent: #1d4ed8")
	ended := u.follow(u.post("/ui/logout", nil))
	wantContains(t, ended, "Facturas Acme", `href="https://help.example/webhooks"`)

	// The operator's own dashboard keeps Aviso's name.
	op := e.user(t)
	r := op.login(rootKey)
	wantContains(t, r, `class="brand" href="/ui/">Aviso</a>`)
	if strings.Contains(r.body, "Facturas Acme") || strings.Contains(r.body, "brand.css") {
		t.Error("the operator's dashboard is white-labelled")
	}
}

func TestPortalBrandRefused(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name  string
		brand web.Brand
		want  string
	}{
		{"light colour", web.Brand{PrimaryColor: "#ffcc00"}, "contrast"},
		{"not a colour", web.Brand{PrimaryColor: "blue"}, "#1d4ed8"},
		{"logo not a URL", web.Brand{LogoURL: "logo.png"}, "absolute"},
		{"logo injecting CSP", web.Brand{LogoURL: "https://x.example/a.png; script-src *"}, "absolute"},
		{"support javascript", web.Brand{SupportURL: "javascript:alert(1)"}, "https: or mailto:"},
		{"two-line name", web.Brand{Name: "a\nb"}, "one line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := web.New(web.Config{Service: e.svc, Store: e.store, Brand: tt.brand})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New with %+v: %v, want an error about %q", tt.brand, err, tt.want)
			}
		})
	}
	if _, err := web.New(web.Config{Service: e.svc, Store: e.store, Brand: web.Brand{PrimaryColor: "#1d4ed8", SupportURL: "mailto:help@example.com"}}); err != nil {
		t.Errorf("a valid brand refused: %v", err)
	}
}
