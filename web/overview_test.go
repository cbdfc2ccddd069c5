package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// failingEndpoint makes an endpoint whose receiver refuses connections, publishes one invoice
// event (reference FV-0042) to it, and sends test events until the failures disable it.
func failingEndpoint(t *testing.T, e *env) (*aviso.Endpoint, *aviso.Event) {
	t.Helper()
	ctx := context.Background()
	ep := e.createEndpoint(t, "acme", "http://127.0.0.1:1/refused")
	// No minimum span, so that ten quick failures disable it.
	if _, err := e.svc.UpdateEndpoint(ctx, root, "acme", ep.ID, service.EndpointPatch{
		DisableAfter: json.RawMessage(`{"failures":10,"min_span":"0s"}`)}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Publish(ctx, root, "acme", []service.PublishInput{{Type: "invoice.created",
		Data: example(t, e, "invoice.created"), ExternalReference: "FV-0042"}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	for i := range aviso.DisableAfterFailures {
		if _, err := e.svc.SendTest(ctx, root, "acme", ep.ID, serviceTest("invoice.paid")); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
	}
	ep, err = e.svc.GetEndpoint(ctx, root, "acme", ep.ID)
	if err != nil || !ep.Disabled || ep.DisabledReason != aviso.DisabledConsecutiveFailed {
		t.Fatalf("after %d failures: %+v (%v), want disabled by failures", aviso.DisableAfterFailures, ep, err)
	}
	return ep, res[0].Event
}

func TestEndpointOverview(t *testing.T) {
	e := newEnv(t)
	ep, _ := failingEndpoint(t, e)
	u := e.user(t)
	u.login(rootKey)
	base := "/ui/t/acme/endpoints/" + ep.ID

	r := u.get(base)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r,
		"<title>"+ep.URL+" · Aviso</title>", // titled by URL (no description), not by ID
		"Disabled after repeated failures", "after 10 failed attempts in a row",
		"The receiver refused the connection", // the last error in words
		"Failures in a row", "10 / 10", "Disabled automatically at 10 consecutive failures spanning at least 0s",
		"p50 ", "p95 ", "Attempts in the last 24 hours", "Hour (UTC)", ">Attempts</text>",
		`href="`+base+`?range=7d"`, "Recent deliveries", `<span class="badge muted">Test</span>`,
		`href="`+base+`/replay?status=failed"`)
	if strings.Contains(r.body, "<h1>Endpoint") {
		t.Error("the endpoint page is still titled by ID")
	}

	week := u.get(base + "?range=7d")
	wantContains(t, week, "Attempts in the last 7 days", "Day (UTC)", `aria-current="page">7 days`)

	t.Run("spanish", func(t *testing.T) {
		u.get("/ui/lang/es?next=" + base)
		r := u.get(base)
		wantContains(t, r, "Desactivado tras fallos repetidos", "El receptor rechazó la conexión", "Fallos seguidos", "Hora (UTC)")
		u.get("/ui/lang/en?next=" + base)
	})
}

// An endpoint disabled because its receiver answered 410 Gone (the engine's disabling, see
// dispatch's tests) says so in its banner, in both languages.
func TestGoneBanner(t *testing.T) {
	e := newEnv(t)
	ep := e.createEndpoint(t, "acme", "http://127.0.0.1:1/hook")
	if _, err := e.store.SetEndpointDisabled(context.Background(), aviso.SetEndpointDisabledParams{TenantID: "acme",
		ID: ep.ID, Disabled: true, Reason: aviso.DisabledGone, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	u := e.user(t)
	u.login(rootKey)
	base := "/ui/t/acme/endpoints/" + ep.ID
	r := u.get(base)
	wantContains(t, r, "Disabled: the receiver answered 410 Gone", "no longer exists")
	if strings.Contains(r.body, "Disabled by hand") {
		t.Error("a 410 Gone is shown as a disabling by hand")
	}
	u.get("/ui/lang/es?next=" + base)
	wantContains(t, u.get(base), "Desactivado: el receptor respondió 410 Gone")
}

func TestDeliveryLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ep, ev := failingEndpoint(t, e)
	u := e.user(t)
	u.login(rootKey)
	log := "/ui/t/acme/deliveries"

	r := u.get(log)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, ">"+ep.URL+"</a>", // the endpoint column
		">FV-0042</a>",                            // the external reference column
		`<span class="badge muted">Test</span>`,   // tests told from real events
		"The receiver refused the connection",     // the cause, not "endpoint disabled"
		"Not sent: the endpoint was disabled",     // the published event, never attempted
		`<time datetime="`, `title="`, "just now") // relative times, exact on hover
	if strings.Contains(r.body, ">endpoint disabled<") {
		t.Error("a row shows the raw \"endpoint disabled\"")
	}

	for _, path := range []string{log + "?ref=FV-0042", log + "?q=FV-0042", log + "?q=" + ev.ID} {
		t.Run(path, func(t *testing.T) {
			r := u.get(path)
			wantStatus(t, r, http.StatusOK)
			if n := strings.Count(r.body, `href="/ui/t/acme/deliveries/dlv_`); n != 1 {
				t.Errorf("%d deliveries listed, want the one of FV-0042", n)
			}
			wantContains(t, r, "invoice.created")
		})
	}
	// Another tenant's event ID finds nothing here.
	e.createEndpoint(t, "other", "http://127.0.0.1:1/other")
	res, err := e.svc.Publish(ctx, root, "other", []service.PublishInput{{Type: "invoice.created",
		Data: example(t, e, "invoice.created"), ExternalReference: "FV-0042"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(u.get(log+"?q="+res[0].Event.ID).body, `href="/ui/t/acme/deliveries/dlv_`); n != 0 {
		t.Errorf("another tenant's event ID lists %d deliveries of acme", n)
	}
	if n := strings.Count(u.get(log+"?ref=FV-0042").body, `href="/ui/t/acme/deliveries/dlv_`); n != 1 {
		t.Errorf("the reference lists %d of acme's deliveries, want 1 (not the other tenant's)", n)
	}

	t.Run("filters", func(t *testing.T) {
		for q, want := range map[string]int{"status=failed": 11, "type=invoice.paid": 10, "endpoint=" + ep.ID: 11,
			"since=2999-01-01T00:00": 0, "until=2000-01-01T00:00": 0} {
			if n := strings.Count(u.get(log+"?"+q).body, `href="/ui/t/acme/deliveries/dlv_`); n != want {
				t.Errorf("%s lists %d, want %d", q, n, want)
			}
		}
	})

	t.Run("pagination", func(t *testing.T) {
		ep2 := e.createEndpoint(t, "acme", "http://127.0.0.1:1/many")
		var batch []service.PublishInput
		for i := range 55 {
			batch = append(batch, service.PublishInput{Type: "invoice.created", Data: example(t, e, "invoice.created"),
				ExternalReference: fmt.Sprintf("P-%d", i)})
		}
		if _, err := e.svc.Publish(ctx, root, "acme", batch); err != nil {
			t.Fatal(err)
		}
		first := u.get(log + "?endpoint=" + ep2.ID)
		if n := strings.Count(first.body, `href="/ui/t/acme/deliveries/dlv_`); n != aviso.DefaultLimit {
			t.Fatalf("first page lists %d, want %d", n, aviso.DefaultLimit)
		}
		m := regexpNext.FindStringSubmatch(first.body)
		if m == nil {
			t.Fatalf("no next page link: %s", excerpt(first.body))
		}
		second := u.get(strings.ReplaceAll(m[1], "&amp;", "&"))
		if n := strings.Count(second.body, `href="/ui/t/acme/deliveries/dlv_`); n != 5 {
			t.Errorf("second page lists %d, want 5", n)
		}
		wantContains(t, second, "Newest")
	})
}

var regexpNext = regexp.MustCompile(`href="([^"]+)" rel="next"`)

// example returns the catalog's example data of typ.
func example(tb testing.TB, e *env, typ string) json.RawMessage {
	tb.Helper()
	et, err := e.svc.GetEventType(context.Background(), root, typ)
	if err != nil {
		tb.Fatal(err)
	}
	return et.Example
}
