package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/aviso-dev/aviso"
)

// noScript turns JavaScript off in the page, to show a flow needs none.
func noScript() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})
}

// TestBrowserConfirmAndSignOut deletes an endpoint through its confirmation page with JavaScript
// off and by keyboard (cancel first, then confirm), then signs out and finds that the session's
// cookie, set again by hand in the browser, opens nothing.
func TestBrowserConfirmAndSignOut(t *testing.T) {
	e := newEnv(t)
	ep := e.createEndpoint(t, "acme", "http://127.0.0.1:1/confirm")
	ctx := newBrowser(t)
	base := e.srv.URL
	page := base + "/ui/t/acme/endpoints/" + ep.ID

	do(t, ctx, "sign in without JavaScript",
		noScript(),
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), rootKey+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/t/acme/endpoints"]`)),
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`a[href$="/delete"]`)),
		chromedp.Click(chromedp.CSS(`a[href$="/delete"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-button")),
	)
	if s := text(t, ctx, "main"); !strings.Contains(s, "Delete this endpoint?") || !strings.Contains(s, ep.URL) {
		t.Errorf("confirmation page %q does not say what will be deleted", s)
	}
	shoot(t, ctx, "confirm")
	do(t, ctx, "cancel by keyboard",
		chromedp.Focus(chromedp.CSS("#confirm-button")),
		chromedp.KeyEvent(kb.Tab), // to Cancel
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#state")),
	)
	if _, err := e.svc.GetEndpoint(context.Background(), root, "acme", ep.ID); err != nil {
		t.Fatalf("cancel deleted the endpoint: %v", err)
	}
	do(t, ctx, "confirm by keyboard",
		chromedp.Click(chromedp.CSS(`a[href$="/delete"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-button")),
		chromedp.Focus(chromedp.CSS("#confirm-button")),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`.flash.ok`)),
	)
	if s := text(t, ctx, ".flash.ok"); !strings.Contains(s, "Endpoint deleted") {
		t.Errorf("flash after delete %q", s)
	}
	if _, err := e.svc.GetEndpoint(context.Background(), root, "acme", ep.ID); aviso.ErrorCode(err) != aviso.ENOTFOUND {
		t.Errorf("endpoint after the confirmed delete: %v", err)
	}

	readCookie := func() string {
		t.Helper()
		var v string
		do(t, ctx, "read the session cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			cs, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/ui/"}})
			if err != nil {
				return err
			}
			for _, c := range cs.Cookies {
				if c.Name == "aviso_session" {
					v = c.Value
				}
			}
			return nil
		}))
		return v
	}
	session := readCookie()
	if session == "" {
		t.Fatal("no session cookie in the browser")
	}
	do(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#key")),
	)
	if s := text(t, ctx, ".flash.ok"); !strings.Contains(s, "signed out") {
		t.Errorf("sign-in page after sign-out says %q", s)
	}
	do(t, ctx, "put the old cookie back", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{Name: "aviso_session", Value: session,
			URL: base + "/ui/", Path: "/ui/"})
		return err
	}))
	if readCookie() != session {
		t.Fatal("the old session cookie could not be put back")
	}
	do(t, ctx, "the old cookie opens nothing",
		chromedp.Navigate(base+"/ui/tenants"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
	)
}
