package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/aviso-dev/aviso/web"
)

// axeViolation is what the test reads of an axe-core violation.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any `json:"target"`
	} `json:"nodes"`
}

// runAxe injects axe-core (vendored in testdata/axe) into the current page and returns its
// serious and critical violations.
func runAxe(t *testing.T, ctx context.Context, axe string) []axeViolation {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axe+"\n;true")); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run axe-core: %v", err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("read axe-core's result: %v", err)
	}
	return vs
}

// TestBrowserAccessibility loads every page of the dashboard and the portal, in English and in
// Spanish, runs axe-core on each (no serious or critical violation may remain), checks that the
// page does not scroll sideways at phone width, and that Tab alone reaches the page's own
// controls past the header, with a visible focus ring.
func TestBrowserAccessibility(t *testing.T) {
	axe, err := os.ReadFile("testdata/axe/axe.min.js")
	if err != nil {
		t.Fatalf("read axe-core: %v", err)
	}
	// The portal is white-labelled, so that axe-core checks the brand's colour too.
	e := newEnv(t, func(c *web.Config) {
		c.Brand = web.Brand{Name: "Facturas Acme", PrimaryColor: "#0f5f8a", SupportURL: "mailto:soporte@example.com"}
	})
	rcv := newReceiver(t, 200)
	good := e.createEndpoint(t, "acme", rcv.URL+"/a11y")
	att, err := e.svc.SendTest(context.Background(), root, "acme", good.ID, serviceTest("invoice.created"))
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := failingEndpoint(t, e)
	portal, _, err := e.ui.PortalLink(context.Background(), root, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	ep, dl := "/ui/t/acme/endpoints/"+good.ID, "/ui/t/acme/deliveries/"+att.DeliveryID
	operator := []string{
		"/ui/tenants", "/ui/catalog", "/ui/catalog/invoice.paid/edit", "/ui/outbox",
		"/ui/t/acme/endpoints", "/ui/t/acme/endpoints/new", ep, ep + "?range=7d", ep + "?reveal=1", ep + "/edit",
		"/ui/t/acme/endpoints/" + bad.ID, ep + "/delete", ep + "/rotate", ep + "/replay",
		"/ui/t/acme/deliveries", "/ui/t/acme/deliveries?q=FV-0042", dl, dl + "/retry", "/ui/t/acme/delete",
		"/ui/nope",
	}
	portalPages := []string{"/ui/t/acme/endpoints", ep, "/ui/t/acme/deliveries", dl}
	// Screenshots for the README (with -screenshots), by language and path.
	shots := map[string]string{
		"en /ui/t/acme/endpoints/" + bad.ID: "endpoint-failing", "en " + ep + "?range=7d": "endpoint-7d",
		"en /ui/t/acme/deliveries": "log", "en " + dl: "delivery-attempt", "en " + dl + "/retry": "retry-confirm",
		"es /ui/t/acme/deliveries": "log-es", "es /ui/catalog": "catalog-es", "es /ui/portal/ended": "portal-ended-es",
	}
	portalShots := map[string]string{"es " + ep: "portal-endpoint-es"}

	ctx := newBrowser(t, 5*time.Minute)
	base := e.srv.URL
	var failures []string
	inPortal := false
	check := func(lang, path string) {
		t.Helper()
		start := time.Now()
		defer func() { t.Logf("%s %s checked in %v", lang, path, time.Since(start).Round(time.Millisecond)) }()
		do(t, ctx, "open "+path, chromedp.Navigate(base+path), chromedp.WaitReady(chromedp.CSS("main")))
		if name, ok := shots[lang+" "+path]; ok && !inPortal {
			shoot(t, ctx, name)
		} else if name, ok := portalShots[lang+" "+path]; ok && inPortal {
			shoot(t, ctx, name)
		}
		for _, v := range runAxe(t, ctx, string(axe)) {
			var targets []string
			for _, n := range v.Nodes {
				b, _ := json.Marshal(n.Target)
				targets = append(targets, string(b))
			}
			failures = append(failures, lang+" "+path+": "+v.Impact+" "+v.ID+" ("+v.Help+") at "+strings.Join(targets, ", "))
		}
		// Keyboard: from the top of the page, Tab reaches a control inside main, and the focused
		// element shows an outline.
		reached, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement.blur(); window.scrollTo(0,0);
			!!document.querySelector("main a[href], main button, main input, main select, main textarea, main summary")`))
		if err != nil {
			t.Fatal(err)
		}
		if reached && lang == "en" { // the same markup in both languages: once is enough
			inMain := false
			for range 40 {
				do(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
				got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const a = document.activeElement;
					if (!a || !a.closest("main")) return "";
					return getComputedStyle(a).outlineStyle; })()`))
				if err != nil {
					t.Fatal(err)
				}
				if got != "" {
					inMain = true
					if got == "none" {
						failures = append(failures, lang+" "+path+": the focused control has no visible outline")
					}
					break
				}
			}
			if !inMain {
				failures = append(failures, lang+" "+path+": 40 Tabs never reach the page's own controls")
			}
		}
		do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
		w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if w > 400 {
			failures = append(failures, fmt.Sprintf("%s %s: the page is %.0f px wide on a 390 px screen", lang, path, w))
		}
		do(t, ctx, "desktop width", chromedp.EmulateViewport(1200, 900))
	}

	for _, lang := range []string{"en", "es"} {
		do(t, ctx, "sign in", chromedp.Navigate(base+"/ui/lang/"+lang+"?next=/ui/login"), chromedp.WaitVisible(chromedp.CSS("#key")))
		check(lang, "/ui/login")
		do(t, ctx, "type the key", chromedp.SendKeys(chromedp.CSS("#key"), rootKey+kb.Enter),
			chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/t/acme/endpoints"]`)))
		for _, p := range operator {
			check(lang, p)
		}
		do(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#key")))
		do(t, ctx, "open the portal", chromedp.Navigate(base+portal),
			chromedp.WaitVisible(chromedp.CSS("main")))
		inPortal = true
		for _, p := range portalPages {
			check(lang, p)
		}
		inPortal = false
		do(t, ctx, "portal sign out", chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)),
			chromedp.WaitVisible(chromedp.CSS("#link-ended")))
		check(lang, "/ui/portal/ended")
		// Each language gets a fresh portal link: signing out ended the first.
		e.clock.Add(time.Second)
		if portal, _, err = e.ui.PortalLink(context.Background(), root, "acme", 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(failures) > 0 {
		t.Errorf("%d accessibility problems:\n%s", len(failures), strings.Join(failures, "\n"))
	}
}
