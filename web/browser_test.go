package web_test

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/aviso-dev/aviso/internal/testenv"
)

// screenshots, when set (go test ./web -run Browser -screenshots=../docs/screenshots), is where
// the browser test saves pictures of the main pages for the README.
var screenshots = flag.String("screenshots", "", "directory to save screenshots of the main pages in")

// newBrowser starts headless Chromium for one test, bounded by a deadline (90 s, or the one given).
func newBrowser(t *testing.T, limit ...time.Duration) context.Context {
	t.Helper()
	path := testenv.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	deadline := 90 * time.Second
	if len(limit) > 0 {
		deadline = limit[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
}

// TestBrowser walks the flow in headless Chromium: sign in by keyboard, create an
// endpoint, send a test event, find it in the delivery log, open the attempt, disable the
// endpoint and switch the language.
func TestBrowser(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, http.StatusOK)
	ctx := newBrowser(t, 3*time.Minute)
	base := e.srv.URL

	do(t, ctx, "sign in by keyboard",
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
	)
	shoot(t, ctx, "login")
	// The first Tab reaches the skip link.
	do(t, ctx, "tab to skip link", chromedp.KeyEvent(kb.Tab))
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`)); err != nil || got != "skip" {
		t.Errorf("first Tab focuses %q (%v), want the skip link", got, err)
	}
	do(t, ctx, "type the key",
		chromedp.SendKeys(chromedp.CSS("#key"), rootKey+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/t/acme/endpoints"]`)),
	)
	shoot(t, ctx, "tenants")

	do(t, ctx, "open acme and the new endpoint form",
		chromedp.Click(chromedp.CSS(`a[href="/ui/t/acme/endpoints"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/t/acme/endpoints/new"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/ui/t/acme/endpoints/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#url")),
	)
	shoot(t, ctx, "endpoint-form")
	do(t, ctx, "create the endpoint",
		chromedp.SendKeys(chromedp.CSS("#url"), rcv.URL+"/browser"),
		chromedp.SendKeys(chromedp.CSS("#description"), "Browser test"),
		chromedp.Click(chromedp.CSS(`input[value="invoice.created"]`)),
		chromedp.Click(chromedp.CSS(`input[value="invoice.paid"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/ui/t/acme/endpoints"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#state")),
	)
	if s := text(t, ctx, "#state"); !strings.Contains(s, "Enabled") {
		t.Errorf("new endpoint state %q", s)
	}

	before, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("test-data").value`))
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "pick another type by keyboard",
		chromedp.Focus(chromedp.CSS("#test-type")),
		chromedp.KeyEvent(kb.ArrowDown),
	)
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("test-type").value`)); v != "invoice.paid" {
		t.Errorf("type after ArrowDown = %q, want invoice.paid", v)
	}
	if after, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("test-data").value`)); after == before || after == "" {
		t.Error("the payload did not change to the new type's example")
	}
	do(t, ctx, "send a test event",
		chromedp.Click(chromedp.CSS(`form[action$="/test#test"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#test-result")),
	)
	if s := text(t, ctx, "#test-result"); !strings.Contains(s, "HTTP 200") {
		t.Errorf("test result %q, want HTTP 200", s)
	}
	shoot(t, ctx, "endpoint")

	do(t, ctx, "find it in the delivery log",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/t/acme/deliveries"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#f-status`)),
		chromedp.SetValue(chromedp.CSS("#f-status"), "succeeded"),
		chromedp.Click(chromedp.CSS(`form.filters button`)),
		// The filtered page, not the one it replaces: only it marks the option selected.
		chromedp.WaitReady(chromedp.CSS(`#f-status option[value="succeeded"][selected]`)),
		chromedp.WaitVisible(chromedp.CSS(`td a[href*="/deliveries/dlv_"]`)),
	)
	if s := text(t, ctx, "table"); !strings.Contains(s, "invoice.paid") {
		t.Errorf("delivery log %q lacks the invoice.paid test event", s)
	}
	shoot(t, ctx, "deliveries")
	do(t, ctx, "open the attempt",
		chromedp.Click(chromedp.CSS(`td a[href*="/deliveries/dlv_"]`)),
		chromedp.WaitVisible(chromedp.CSS(`details.attempt[open] .response-body`)),
	)
	if s := text(t, ctx, "details.attempt[open] .response-body"); s != "<b>received</b>" {
		t.Errorf("response body shown as %q, want the escaped text", s)
	}
	if s := text(t, ctx, "pre.request-body"); !strings.Contains(s, `"invoice.paid"`) {
		t.Errorf("request body %q", s)
	}
	shoot(t, ctx, "delivery")

	do(t, ctx, "disable the endpoint",
		chromedp.Click(chromedp.CSS(`dd a[href*="/endpoints/ep_"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/disable"] button`)),
		chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/enable"] button`)),
	)
	if s := text(t, ctx, "#state"); !strings.Contains(s, "Disabled") {
		t.Errorf("state after disabling %q", s)
	}

	do(t, ctx, "switch to Spanish",
		chromedp.Click(chromedp.CSS(`a[hreflang="es"]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="es"] #state`)),
	)
	if s := text(t, ctx, "#state"); !strings.Contains(s, "Desactivado") {
		t.Errorf("state in Spanish %q", s)
	}
	do(t, ctx, "endpoints list", chromedp.Navigate(base+"/ui/t/acme/endpoints"), chromedp.WaitVisible(chromedp.CSS("svg")))
	shoot(t, ctx, "endpoints-es")
	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.WaitVisible(chromedp.CSS("table")))
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`)); err != nil || w > 400 {
		t.Errorf("page is %v px wide on a 390 px screen (%v): it scrolls sideways", w, err)
	}
	shoot(t, ctx, "endpoints-phone")
}
