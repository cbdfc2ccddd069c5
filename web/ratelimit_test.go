package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/web"
)

// TestEndpointRateLimit: the endpoint form sets the rate limit and marks a bad one on its field;
// the endpoint's page shows it; and while the engine is slowing the endpoint because its
// receiver answers 429, the page says so, in English and Spanish.
func TestEndpointRateLimit(t *testing.T) {
	var d *dispatch.Dispatcher
	e := newEnv(t, func(cfg *web.Config) {
		var err error
		d, err = dispatch.New(dispatch.Config{Store: cfg.Store, AllowPrivateNetworks: true, IdleWait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Slowed = d.Slowed
	})
	rc := newReceiver(t, http.StatusTooManyRequests)
	u := e.user(t)
	u.login(rootKey)
	u.get("/ui/t/acme/endpoints/new")
	form := func(limit string) url.Values {
		return url.Values{"url": {rc.URL + "/in"}, "event_types": {"invoice.created"}, "format": {"standard"},
			"timeout_seconds": {"10"}, "rate_limit": {limit}}
	}
	for _, bad := range []string{"fast", "-1", "20000"} {
		r := u.post("/ui/t/acme/endpoints", form(bad))
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r, `id="rate-limit-error"`)
	}
	r := u.post("/ui/t/acme/endpoints", form("50"))
	wantStatus(t, r, http.StatusSeeOther)
	page := u.follow(r)
	wantContains(t, page, "Rate limit", "50 per second")
	path, _, _ := strings.Cut(r.location, "?")
	id := path[strings.LastIndex(path, "/")+1:]

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; d.Close() })
	if _, err := e.svc.Publish(ctx, root, "acme", []service.PublishInput{{Type: "invoice.created",
		Data: example(t, e, "invoice.created")}}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, ok := d.Slowed(id); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not slow the endpoint %q after a 429: %+v", id, d.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	page = u.get(path)
	wantContains(t, page, "Slowed down: the receiver answered 429", "below its limit of 50")
	u.get("/ui/lang/es?next=" + path)
	page = u.get(path)
	wantContains(t, page, "Envíos frenados: el receptor respondió 429", "Límite de envíos", "50 por segundo")
}
