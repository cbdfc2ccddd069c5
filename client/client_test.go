package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/client"
	"github.com/aviso-dev/aviso/internal/testnode"
	"github.com/aviso-dev/aviso/server"
)

const rootKey = "avk_client_test_root"

// startNode runs a real node (SQLite, in-process) and returns its URL.
func startNode(t *testing.T) *server.Server {
	t.Helper()
	return testnode.Run(t, server.Config{RootKey: rootKey, AllowPrivateNetworks: true,
		RetrySchedule: []time.Duration{time.Hour}}).Server
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func collect[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatalf("iterate: %v", err)
		}
		out = append(out, v)
	}
	return out
}

// TestClientEveryRoute drives every route of the API through the client against a real node,
// checks what comes back, and then reads the node's request counters to prove that every route
// of api.Routes() was called.
func TestClientEveryRoute(t *testing.T) {
	srv := startNode(t)
	ctx := t.Context()
	c := client.New(srv.URL(), rootKey)
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if doc := must[[]byte](t, "openapi")(c.OpenAPI(ctx)); !strings.Contains(string(doc), `"openapi": "3.1.0"`) {
		t.Errorf("OpenAPI: %.80s", doc)
	}

	// Tenants, and a page size smaller than the list: the iterator walks every page.
	for _, id := range []string{"acme", "beta", "gamma"} {
		must[*aviso.Tenant](t, "create tenant")(c.CreateTenant(ctx, client.TenantInput{ID: id, Name: strings.ToUpper(id)}))
	}
	page := must[*aviso.Page[*aviso.Tenant]](t, "list tenants")(c.ListTenants(ctx, client.ListOptions{Limit: 2}))
	if len(page.Data) == 0 || len(page.Data) > 2 || !page.HasMore {
		t.Errorf("first page of 2: %d tenants, has_more %v", len(page.Data), page.HasMore)
	}
	if ts := collect(t, c.Tenants(ctx)); len(ts) != 3 || ts[0].ID != "acme" || ts[2].ID != "gamma" {
		t.Errorf("Tenants: %v", ts)
	}
	name := "ACME S.A."
	if ten := must[*aviso.Tenant](t, "update tenant")(c.UpdateTenant(ctx, "acme", client.TenantPatch{Name: &name})); ten.Name != name {
		t.Errorf("updated name %q", ten.Name)
	}
	if ten := must[*aviso.Tenant](t, "get tenant")(c.GetTenant(ctx, "acme")); ten.Name != name {
		t.Errorf("got name %q", ten.Name)
	}
	key := must[*client.IssuedKey](t, "create key")(c.CreateKey(ctx, "acme"))
	if !strings.HasPrefix(key.Key, "avk_") || key.TenantID != "acme" {
		t.Errorf("issued key %+v", key)
	}
	if link := must[*client.PortalLink](t, "portal link")(c.PortalLink(ctx, "acme", 10*time.Minute)); !strings.HasPrefix(link.URL, "http") ||
		link.ExpiresAt.Before(time.Now().Add(9*time.Minute)) {
		t.Errorf("portal link %+v", link)
	}
	if err := c.DeleteTenant(ctx, "gamma"); err != nil {
		t.Fatal(err)
	}

	// The catalog.
	et := must[*aviso.EventType](t, "create event type")(c.CreateEventType(ctx, client.EventTypeInput{Name: "test.client", Description: "a test"}))
	desc := "changed"
	must[*aviso.EventType](t, "update event type")(c.UpdateEventType(ctx, et.Name, client.EventTypePatch{Description: &desc}))
	if got := must[*aviso.EventType](t, "get event type")(c.GetEventType(ctx, et.Name)); got.Description != desc {
		t.Errorf("event type description %q", got.Description)
	}
	must[*aviso.Page[*aviso.EventType]](t, "list event types")(c.ListEventTypes(ctx, client.ListOptions{Limit: 5}))
	if n := len(collect(t, c.EventTypes(ctx))); n < 10 {
		t.Errorf("EventTypes: %d, want the seeded catalog and more", n)
	}
	if err := c.DeleteEventType(ctx, et.Name); err != nil {
		t.Fatal(err)
	}

	// Endpoints, for a tenant and for the platform's operational endpoints.
	var acmeEndpoint string
	for _, tenant := range []string{"acme", aviso.OperationalTenant} {
		no := false
		ep := must[*aviso.Endpoint](t, "create endpoint")(c.CreateEndpoint(ctx, tenant, client.EndpointInput{URL: recv.URL, Verify: &no, RateLimit: 50}))
		if ep.RateLimit != 50 {
			t.Errorf("%s endpoint's rate limit %d, want 50", tenant, ep.RateLimit)
		}
		must[*aviso.Page[*aviso.Endpoint]](t, "list endpoints")(c.ListEndpoints(ctx, tenant, client.ListOptions{}))
		if eps := collect(t, c.Endpoints(ctx, tenant)); len(eps) != 1 || eps[0].ID != ep.ID {
			t.Errorf("%s endpoints: %v", tenant, eps)
		}
		yes := true
		if got := must[*aviso.Endpoint](t, "disable")(c.UpdateEndpoint(ctx, tenant, ep.ID, client.EndpointPatch{Disabled: &yes})); !got.Disabled {
			t.Error("not disabled")
		}
		if got := must[*aviso.Endpoint](t, "enable")(c.UpdateEndpoint(ctx, tenant, ep.ID, client.EndpointPatch{Disabled: &no})); got.Disabled {
			t.Error("not enabled again")
		}
		unlimited := 0
		if got := must[*aviso.Endpoint](t, "remove the rate limit")(c.UpdateEndpoint(ctx, tenant, ep.ID, client.EndpointPatch{RateLimit: &unlimited})); got.RateLimit != 0 {
			t.Errorf("rate limit %d after removing it", got.RateLimit)
		}
		must[*aviso.Endpoint](t, "get endpoint")(c.GetEndpoint(ctx, tenant, ep.ID))
		before := must[*client.SecretInfo](t, "get secret")(c.GetSecret(ctx, tenant, ep.ID))
		after := must[*client.SecretInfo](t, "rotate secret")(c.RotateSecret(ctx, tenant, ep.ID))
		if after.Secret == before.Secret || len(after.Secrets) != 2 {
			t.Errorf("rotation: %d secrets, new equals old %v", len(after.Secrets), after.Secret == before.Secret)
		}
		at := must[*aviso.Attempt](t, "send test")(c.SendTest(ctx, tenant, ep.ID, client.TestInput{}))
		if at.ResponseStatus != http.StatusNoContent {
			t.Errorf("test attempt %+v", at)
		}
		ds := collect(t, c.EndpointDeliveries(ctx, tenant, ep.ID, ""))
		if len(ds) != 1 {
			t.Fatalf("%s endpoint deliveries: %v", tenant, ds)
		}
		must[*aviso.Page[*aviso.Delivery]](t, "list endpoint deliveries")(c.ListEndpointDeliveries(ctx, tenant, ep.ID,
			client.DeliveryListOptions{Status: aviso.StatusSucceeded}))
		if d := must[*aviso.Delivery](t, "get delivery")(c.GetDelivery(ctx, tenant, ds[0].ID)); len(d.Attempts) != 1 {
			t.Errorf("delivery attempts %v", d.Attempts)
		}
		if d := must[*aviso.Delivery](t, "retry delivery")(c.RetryDelivery(ctx, tenant, ds[0].ID)); d.Status != aviso.StatusPending {
			t.Errorf("retried delivery status %s", d.Status)
		}
		must[int](t, "replay")(c.Replay(ctx, tenant, ep.ID, client.ReplayInput{Since: time.Now().Add(-time.Hour), Status: "all"}))
		if tenant != aviso.OperationalTenant {
			f := `type == "invoice.created"`
			if r := must[*client.FilterTest](t, "filter test")(c.TestFilter(ctx, tenant, ep.ID, client.FilterTestInput{
				Filter: &f, Type: "invoice.created", Data: json.RawMessage(`{}`)})); !r.Match {
				t.Errorf("filter test %+v, want a match", r)
			}
		}
		if tenant == aviso.OperationalTenant {
			if err := c.DeleteEndpoint(ctx, tenant, ep.ID); err != nil {
				t.Fatal(err)
			}
		} else {
			acmeEndpoint = ep.ID
		}
	}

	// Events: an id published twice is created once; a batch; lists, iterators, documents.
	data := json.RawMessage(`{"id":"FAC-1","total":10}`)
	ev, created, err := c.Publish(ctx, "acme", client.PublishInput{ID: "evt_client_1", Type: "invoice.created", Data: data, ExternalReference: "FAC/1"})
	if err != nil || !created {
		t.Fatalf("publish: %v, created %v", err, created)
	}
	if _, created, err := c.Publish(ctx, "acme", client.PublishInput{ID: "evt_client_1", Type: "invoice.created", Data: data}); err != nil || created {
		t.Errorf("publish again: %v, created %v; want the stored event", err, created)
	}
	res := must[[]client.BatchResult](t, "batch")(c.PublishBatch(ctx, "acme", []client.PublishInput{
		{ID: "evt_client_2", Type: "invoice.created", Data: data}, {ID: "evt_client_1", Type: "invoice.created", Data: data}}))
	if len(res) != 2 || !res[0].Created || res[1].Created {
		t.Errorf("batch results %+v", res)
	}
	must[*aviso.Page[*aviso.Event]](t, "list events")(c.ListEvents(ctx, "acme", client.EventListOptions{Type: "invoice.created"}))
	if evs := collect(t, c.Events(ctx, "acme", client.EventListOptions{ExternalReference: "FAC/1"})); len(evs) != 1 || evs[0].ID != ev.ID {
		t.Errorf("events of FAC/1: %v", evs)
	}
	if got := must[*aviso.Event](t, "get event")(c.GetEvent(ctx, "acme", ev.ID)); got.ExternalReference != "FAC/1" {
		t.Errorf("event %+v", got)
	}
	must[*aviso.Page[*aviso.Delivery]](t, "list event deliveries")(c.ListEventDeliveries(ctx, "acme", ev.ID, client.ListOptions{}))
	if ds := collect(t, c.EventDeliveries(ctx, "acme", ev.ID)); len(ds) != 1 {
		t.Errorf("event deliveries %v", ds)
	}
	if doc := must[*client.Document](t, "document")(c.GetDocument(ctx, "acme", "FAC/1", client.ListOptions{})); doc.Latest == nil || doc.Latest.ID != ev.ID {
		t.Errorf("document %+v", doc)
	}

	// The feed: the key, the tenant's deliveries, and the stream from the first event on.
	if k := must[*client.Key](t, "whoami")(c.WhoAmI(ctx)); !k.Root {
		t.Errorf("whoami with the root key: %+v", k)
	}
	must[*aviso.Page[*aviso.Delivery]](t, "list deliveries")(c.ListDeliveries(ctx, "acme", client.DeliveryFilter{Type: "invoice.created"}))
	if ds := collect(t, c.Deliveries(ctx, "acme", client.DeliveryFilter{})); len(ds) < 2 {
		t.Errorf("tenant deliveries: %d", len(ds))
	}
	sctx, stop := context.WithCancel(ctx)
	var streamed []string
	for se, err := range c.StreamEvents(sctx, "acme", client.StreamOptions{Since: "2000-01-01T00:00:00Z"}) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if se.Cursor == "" {
			t.Errorf("streamed %s without a cursor", se.Event.ID)
		}
		streamed = append(streamed, se.Event.ID)
		if se.Event.ID == "evt_client_2" || len(streamed) == 5 {
			break
		}
	}
	stop()
	// The test send's event came first; then the two published, in order.
	if n := len(streamed); n < 2 || streamed[n-2] != "evt_client_1" || streamed[n-1] != "evt_client_2" {
		t.Errorf("streamed %v, want … evt_client_1, evt_client_2", streamed)
	}

	if err := c.DeleteEndpoint(ctx, "acme", acmeEndpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEndpoint(ctx, "acme", acmeEndpoint); client.ErrorCode(err) != aviso.ENOTFOUND {
		t.Errorf("deleted endpoint: %v, want not_found", err)
	}

	// The outbox routes: no relay here.
	if st := must[[]client.OutboxStatus](t, "outbox status")(c.OutboxStatus(ctx)); len(st) != 0 {
		t.Errorf("outbox status %v", st)
	}
	if _, err := c.OutboxRejected(ctx, "", client.ListOptions{}); client.ErrorCode(err) != aviso.ENOTFOUND {
		t.Errorf("outbox rejected without a relay: %v, want not_found", err)
	}

	// Every route of the API was called: the node counts requests by route pattern.
	metrics := must[*http.Response](t, "metrics")(http.Get(srv.URL() + "/metrics"))
	b, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, r := range api.Routes() {
		if !strings.Contains(string(b), `route="`+r.Method+" "+r.Path+`"`) {
			t.Errorf("no client call reached %s %s", r.Method, r.Path)
		}
	}
}

// TestClientErrors: API errors come back as *Error with status, code, message, field and the
// request id.
func TestClientErrors(t *testing.T) {
	srv := startNode(t)
	ctx := t.Context()
	c := client.New(srv.URL(), rootKey)
	_, err := c.GetTenant(ctx, "nope")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != aviso.ENOTFOUND || e.Message == "" || !strings.HasPrefix(e.RequestID, "req_") {
		t.Errorf("get a missing tenant: %#v", err)
	}
	must[*aviso.Tenant](t, "create tenant")(c.CreateTenant(ctx, client.TenantInput{ID: "acme", Name: "ACME"}))
	_, _, err = c.Publish(ctx, "acme", client.PublishInput{Type: "invoice.created", Data: json.RawMessage(`{"total":"mil"}`)})
	if !errors.As(err, &e) || e.Status != 422 || e.Code != aviso.EINVALID || e.Field == "" {
		t.Errorf("publish invalid data: %#v", err)
	}
	if _, err := client.New(srv.URL(), "avk_wrong").ListTenants(ctx, client.ListOptions{}); client.ErrorCode(err) != aviso.EUNAUTHORIZED {
		t.Errorf("wrong key: %v", err)
	}
}

// TestClientRetries: a call safe to repeat is retried on 503 (after its Retry-After) and 429,
// a publish without an id is not, one with an id is; a 4xx is never retried.
func TestClientRetries(t *testing.T) {
	var calls atomic.Int32
	fail := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if fail.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "0")
			status := http.StatusServiceUnavailable
			if r.Method == http.MethodPost {
				status = http.StatusTooManyRequests
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"try later"}}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no"}}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"evt_1","tenant_id":"acme","type":"t","data":{}}`)
	}))
	defer srv.Close()
	c := client.New(srv.URL, "k", client.WithRetries(3), client.WithBackoff(func(int) time.Duration { return time.Millisecond }))
	ctx := t.Context()
	for _, tc := range []struct {
		name      string
		failures  int32
		call      func() error
		wantCalls int32
		wantErr   bool
	}{
		{"get retried", 2, func() error { _, err := c.GetEvent(ctx, "acme", "evt_1"); return err }, 3, false},
		{"get gives up", 9, func() error { _, err := c.GetEvent(ctx, "acme", "evt_1"); return err }, 4, true},
		{"publish with id retried", 1, func() error {
			_, _, err := c.Publish(ctx, "acme", client.PublishInput{ID: "evt_1", Type: "t", Data: json.RawMessage(`{}`)})
			return err
		}, 2, false},
		{"publish without id not retried", 1, func() error {
			_, _, err := c.Publish(ctx, "acme", client.PublishInput{Type: "t", Data: json.RawMessage(`{}`)})
			return err
		}, 1, true},
		{"404 not retried", 0, func() error { _, err := c.GetEvent(ctx, "acme", "missing"); return err }, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			fail.Store(tc.failures)
			err := tc.call()
			if got := calls.Load(); got != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Errorf("%d calls, error %v; want %d calls, error %v", got, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}
