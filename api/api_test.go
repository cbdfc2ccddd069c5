package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/webhook"
)

const invoiceSchema = `{"type":"object","required":["total"],"properties":{"total":{"type":"number","minimum":0}}}`

func TestHealth(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path, func(t *testing.T) {
			var out map[string]string
			e.call(t, "GET", path, "", nil, 200, &out)
			if out["status"] == "" {
				t.Fatalf("no status in %v", out)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	keyA := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", invoiceSchema)
	big := fmt.Sprintf(`{"type":"invoice.created","data":{"total":1,"pad":%q}}`, strings.Repeat("x", maxPayload))
	tests := []struct {
		name, method, path, key string
		body                    any
		status                  int
		code, field, message    string
	}{
		{"no key", "GET", "/v1/tenants", "", nil, 401, aviso.EUNAUTHORIZED, "", "Authorization: Bearer"},
		{"unknown key", "GET", "/v1/tenants", "avk_nope", nil, 401, aviso.EUNAUTHORIZED, "", "unknown API key"},
		{"tenant key lists tenants", "GET", "/v1/tenants", keyA, nil, 403, aviso.EFORBIDDEN, "", "root key"},
		{"tenant key creates tenant", "POST", "/v1/tenants", keyA, map[string]any{"name": "x"}, 403, aviso.EFORBIDDEN, "", ""},
		{"tenant key deletes own tenant", "DELETE", "/v1/tenants/acme", keyA, nil, 403, aviso.EFORBIDDEN, "", ""},
		{"tenant key writes catalog", "POST", "/v1/event-types", keyA, map[string]any{"name": "x.y"}, 403, aviso.EFORBIDDEN, "", ""},
		{"bad JSON", "POST", "/v1/tenants", e.root, `{"name":`, 400, aviso.EINVALIDJSON, "", "JSON"},
		{"not an object", "POST", "/v1/tenants", e.root, `[1]`, 400, aviso.EBADREQUEST, "", "object"},
		{"empty body", "POST", "/v1/tenants", e.root, ``, 400, aviso.EBADREQUEST, "", "empty"},
		{"unknown field", "POST", "/v1/tenants", e.root, `{"name":"x","nmae":"y"}`, 422, aviso.EINVALID, "nmae", "not a known field"},
		{"wrong type", "POST", "/v1/tenants", e.root, `{"name":5}`, 422, aviso.EINVALID, "name", "string"},
		{"duplicate tenant", "POST", "/v1/tenants", e.root, map[string]any{"id": "acme", "name": "Again"}, 409, aviso.ECONFLICT, "", "acme"},
		{"bad tenant id", "POST", "/v1/tenants", e.root, map[string]any{"id": "a b", "name": "x"}, 422, aviso.EINVALID, "id", ""},
		{"missing tenant", "GET", "/v1/tenants/nobody", e.root, nil, 404, aviso.ENOTFOUND, "", "nobody"},
		{"no route", "GET", "/v2/nothing", e.root, nil, 404, aviso.ENOTFOUND, "", "no route"},
		{"unknown event type", "POST", "/v1/tenants/acme/events", keyA, map[string]any{"type": "nope.nope", "data": map[string]any{}}, 422, aviso.EINVALID, "type", "catalog"},
		{"schema violation", "POST", "/v1/tenants/acme/events", keyA, map[string]any{"type": "invoice.created", "data": map[string]any{"total": -5}}, 422, aviso.EINVALID, "/data/total", "minimum"},
		{"schema missing property", "POST", "/v1/tenants/acme/events", keyA, map[string]any{"type": "invoice.created", "data": map[string]any{}}, 422, aviso.EINVALID, "/data", "required"},
		{"data over the limit", "POST", "/v1/tenants/acme/events", keyA, big, 413, aviso.ETOOLARGE, "data", "limit"},
		{"batch entry names its position", "POST", "/v1/tenants/acme/events/batch", keyA, map[string]any{"events": []any{
			map[string]any{"type": "invoice.created", "data": map[string]any{"total": 1}},
			map[string]any{"type": "invoice.created", "data": map[string]any{"total": "one"}}}}, 422, aviso.EINVALID, "/events/1/data/total", "type"},
		{"empty batch", "POST", "/v1/tenants/acme/events/batch", keyA, map[string]any{"events": []any{}}, 422, aviso.EINVALID, "events", ""},
		{"bad limit", "GET", "/v1/tenants/acme/events?limit=x", keyA, nil, 422, aviso.EINVALID, "limit", ""},
		{"unknown subscribed type", "POST", "/v1/tenants/acme/endpoints", keyA, map[string]any{"url": "http://127.0.0.1:1/", "event_types": []string{"nope.nope"}, "verify": false}, 422, aviso.EINVALID, "event_types", "catalog"},
		{"bad endpoint url", "POST", "/v1/tenants/acme/endpoints", keyA, map[string]any{"url": "ftp://x", "verify": false}, 422, aviso.EINVALID, "url", ""},
		{"bad delivery status", "GET", "/v1/tenants/acme/endpoints/ep_x/deliveries?status=lost", keyA, nil, 422, aviso.EINVALID, "status", ""},
		{"negative rate limit", "POST", "/v1/tenants/acme/endpoints", keyA, map[string]any{"url": "http://127.0.0.1:1/", "rate_limit": -1, "verify": false}, 422, aviso.EINVALID, "rate_limit", "deliveries per second"},
		{"rate limit too high", "POST", "/v1/tenants/acme/endpoints", keyA, map[string]any{"url": "http://127.0.0.1:1/", "rate_limit": 10001, "verify": false}, 422, aviso.EINVALID, "rate_limit", "10000"},
		{"rate limit not a number", "POST", "/v1/tenants/acme/endpoints", keyA, map[string]any{"url": "http://127.0.0.1:1/", "rate_limit": "fast", "verify": false}, 422, aviso.EINVALID, "rate_limit", ""},
		{"fractional rate limit", "POST", "/v1/tenants/acme/endpoints", keyA, map[string]any{"url": "http://127.0.0.1:1/", "rate_limit": 2.5, "verify": false}, 422, aviso.EINVALID, "rate_limit", ""},
		{"invalid schema", "POST", "/v1/event-types", e.root, map[string]any{"name": "bad.schema", "schema": map[string]any{"type": 5}}, 422, aviso.EINVALID, "schema", ""},
		{"missing document", "GET", "/v1/tenants/acme/documents/FAC-0", keyA, nil, 404, aviso.ENOTFOUND, "", "FAC-0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			var got apiError
			e.call(t, tc.method, tc.path, tc.key, tc.body, tc.status, &got)
			if got.Error.Code != tc.code || got.Error.Field != tc.field {
				t.Errorf("error %+v, want code %q field %q", got.Error, tc.code, tc.field)
			}
			if !strings.Contains(got.Error.Message, tc.message) {
				t.Errorf("message %q does not say %q", got.Error.Message, tc.message)
			}
			if after := e.snapshot(t); after != before {
				t.Errorf("a refused request changed the stored data:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestCrossTenant checks that a tenant key sees another tenant's resources as absent on every
// tenant-scoped route.
func TestCrossTenant(t *testing.T) {
	e := newEnv(t)
	keyA := e.tenant(t, "acme")
	e.tenant(t, "globex")
	e.eventType(t, "invoice.created", "")
	rc := newReceiver(t, 200)
	var ep aviso.Endpoint
	e.call(t, "POST", "/v1/tenants/globex/endpoints", e.root, map[string]any{"url": rc.URL, "verify": false}, 201, &ep)
	var ev aviso.Event
	e.call(t, "POST", "/v1/tenants/globex/events", e.root, map[string]any{"type": "invoice.created", "data": map[string]any{"total": 1}, "external_reference": "FAC-1"}, 202, &ev)
	var ds aviso.Page[*aviso.Delivery]
	e.call(t, "GET", "/v1/tenants/globex/events/"+ev.ID+"/deliveries", e.root, nil, 200, &ds)
	if len(ds.Data) != 1 {
		t.Fatalf("deliveries %+v, want 1", ds.Data)
	}
	g := "/v1/tenants/globex"
	epp := g + "/endpoints/" + ep.ID
	routes := []struct{ method, path string }{
		{"GET", g}, {"POST", g + "/keys"},
		{"GET", g + "/endpoints"}, {"POST", g + "/endpoints"},
		{"GET", epp}, {"PATCH", epp}, {"DELETE", epp},
		{"POST", epp + "/rotate-secret"}, {"GET", epp + "/secret"}, {"POST", epp + "/test"},
		{"GET", epp + "/deliveries"}, {"POST", epp + "/replay"},
		{"POST", g + "/events"}, {"POST", g + "/events/batch"}, {"GET", g + "/events"},
		{"GET", g + "/events/" + ev.ID}, {"GET", g + "/events/" + ev.ID + "/deliveries"},
		{"GET", g + "/deliveries/" + ds.Data[0].ID}, {"POST", g + "/deliveries/" + ds.Data[0].ID + "/retry"},
		{"GET", g + "/documents/FAC-1"},
	}
	bodies := map[string]any{"POST": map[string]any{}, "PATCH": map[string]any{"disabled": true}}
	before := e.snapshot(t)
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			var got apiError
			e.call(t, r.method, r.path, keyA, bodies[r.method], 404, &got)
			if got.Error.Code != aviso.ENOTFOUND {
				t.Errorf("code %q, want not_found", got.Error.Code)
			}
			// The owner still reaches it (the route is real).
			if r.method == "GET" {
				e.call(t, r.method, r.path, e.root, nil, 200, nil)
			}
		})
	}
	if after := e.snapshot(t); after != before {
		t.Errorf("cross-tenant requests changed the stored data")
	}
	rc.none(t)
}

func TestTenantsAndCatalog(t *testing.T) {
	e := newEnv(t)
	var gen aviso.Tenant
	e.call(t, "POST", "/v1/tenants", e.root, map[string]any{"name": "Generated", "metadata": map[string]string{"plan": "pro"}}, 201, &gen)
	if !strings.HasPrefix(gen.ID, aviso.PrefixTenant) || gen.Metadata["plan"] != "pro" || gen.CreatedAt.IsZero() {
		t.Fatalf("created %+v", gen)
	}
	var got aviso.Tenant
	e.call(t, "PATCH", "/v1/tenants/"+gen.ID, e.root, map[string]any{"name": "Renamed"}, 200, &got)
	if got.Name != "Renamed" || got.Metadata["plan"] != "pro" {
		t.Fatalf("patched %+v: name should change, metadata stay", got)
	}
	e.call(t, "GET", "/v1/tenants/"+gen.ID, e.root, nil, 200, &got)
	if got.Name != "Renamed" {
		t.Fatalf("get after patch %+v", got)
	}
	keyA := e.tenant(t, "acme")
	e.call(t, "GET", "/v1/tenants/acme", keyA, nil, 200, &got) // a tenant key reads its own tenant
	var list aviso.Page[*aviso.Tenant]
	e.call(t, "GET", "/v1/tenants", e.root, nil, 200, &list)
	if len(list.Data) != 2 || list.HasMore {
		t.Fatalf("list %+v", list)
	}
	e.call(t, "DELETE", "/v1/tenants/"+gen.ID, e.root, nil, 204, nil)
	e.call(t, "GET", "/v1/tenants/"+gen.ID, e.root, nil, 404, nil)

	e.eventType(t, "invoice.created", invoiceSchema)
	var et aviso.EventType
	e.call(t, "GET", "/v1/event-types/invoice.created", keyA, nil, 200, &et) // tenant keys read the catalog
	if et.Description == "" || len(et.Schema) == 0 {
		t.Fatalf("event type %+v", et)
	}
	var patched aviso.EventType
	e.call(t, "PATCH", "/v1/event-types/invoice.created", e.root, map[string]any{"schema": nil, "description": "changed"}, 200, &patched)
	if patched.Description != "changed" || len(patched.Schema) != 0 || len(patched.Example) == 0 {
		t.Fatalf("patched event type %+v", patched)
	}
	// The schema cache must follow the edit: negative totals are accepted now.
	e.call(t, "POST", "/v1/tenants/acme/events", keyA, map[string]any{"type": "invoice.created", "data": map[string]any{"total": -5}}, 202, nil)
	var types aviso.Page[*aviso.EventType]
	e.call(t, "GET", "/v1/event-types", keyA, nil, 200, &types)
	if len(types.Data) != 1 {
		t.Fatalf("catalog %+v", types)
	}
	e.call(t, "DELETE", "/v1/event-types/invoice.created", e.root, nil, 204, nil)
	e.call(t, "GET", "/v1/event-types/invoice.created", e.root, nil, 404, nil)
}

func TestPublishIdempotency(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", invoiceSchema)
	e.eventType(t, "invoice.voided", "")
	rc := newReceiver(t, 200)
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL, "verify": false}, 201, nil)
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL, "verify": false, "event_types": []string{"invoice.voided"}}, 201, nil)

	tests := []struct {
		name   string
		body   map[string]any
		header []string
		id     string
	}{
		{"id in the body", map[string]any{"id": "inv-1", "type": "invoice.created", "data": map[string]any{"total": 10}}, nil, "inv-1"},
		{"Idempotency-Key header", map[string]any{"type": "invoice.created", "data": map[string]any{"total": 10}}, []string{"Idempotency-Key", "inv-2"}, "inv-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var first, again aviso.Event
			e.call(t, "POST", "/v1/tenants/acme/events", key, tc.body, 202, &first, tc.header...)
			e.call(t, "POST", "/v1/tenants/acme/events", key, tc.body, 200, &again, tc.header...)
			if first.ID != tc.id || again.ID != tc.id || !again.CreatedAt.Equal(first.CreatedAt) {
				t.Fatalf("first %+v, again %+v, want id %s", first, again, tc.id)
			}
			var ds aviso.Page[*aviso.Delivery]
			e.call(t, "GET", "/v1/tenants/acme/events/"+tc.id+"/deliveries", key, nil, 200, &ds)
			// Only the endpoint subscribed to every type matches invoice.created.
			if len(ds.Data) != 1 || ds.Data[0].Status != aviso.StatusPending {
				t.Fatalf("deliveries %+v, want one pending", ds.Data)
			}
		})
	}
	t.Run("batch", func(t *testing.T) {
		var out struct {
			Data []struct {
				ID      string `json:"id"`
				Created bool   `json:"created"`
			} `json:"data"`
		}
		e.call(t, "POST", "/v1/tenants/acme/events/batch", key, map[string]any{"events": []any{
			map[string]any{"id": "inv-1", "type": "invoice.created", "data": map[string]any{"total": 10}},
			map[string]any{"id": "void-1", "type": "invoice.voided", "data": map[string]any{"total": 10}},
		}}, 202, &out)
		if len(out.Data) != 2 || out.Data[0].ID != "inv-1" || out.Data[0].Created || out.Data[1].ID != "void-1" || !out.Data[1].Created {
			t.Fatalf("batch answer %+v", out.Data)
		}
		var ds aviso.Page[*aviso.Delivery]
		e.call(t, "GET", "/v1/tenants/acme/events/void-1/deliveries", key, nil, 200, &ds)
		if len(ds.Data) != 2 {
			t.Fatalf("void-1 deliveries %d, want 2 (both endpoints subscribe)", len(ds.Data))
		}
	})
	var evs aviso.Page[*aviso.Event]
	e.call(t, "GET", "/v1/tenants/acme/events", key, nil, 200, &evs)
	if len(evs.Data) != 3 {
		t.Fatalf("%d events stored, want 3", len(evs.Data))
	}
}

func TestEventsPaginationAndDocuments(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", "")
	e.eventType(t, "invoice.paid", "")
	var want []string
	for i := range 7 {
		typ, ref := "invoice.created", "FAC-1"
		if i%2 == 1 {
			typ, ref = "invoice.paid", "FAC-2"
		}
		var ev aviso.Event
		e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": typ, "external_reference": ref,
			"data": map[string]any{"n": i}}, 202, &ev)
		want = append(want, ev.ID)
	}
	t.Run("cursor walk", func(t *testing.T) {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			var page aviso.Page[*aviso.Event]
			e.call(t, "GET", "/v1/tenants/acme/events?limit=3&after="+after, key, nil, 200, &page)
			for _, ev := range page.Data {
				got = append(got, ev.ID)
			}
			if !page.HasMore {
				break
			}
			after = page.NextCursor
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("walked %v\nwant    %v", got, want)
		}
	})
	t.Run("filters", func(t *testing.T) {
		var page aviso.Page[*aviso.Event]
		e.call(t, "GET", "/v1/tenants/acme/events?type=invoice.paid", key, nil, 200, &page)
		if len(page.Data) != 3 {
			t.Fatalf("type filter: %d events, want 3", len(page.Data))
		}
		e.call(t, "GET", "/v1/tenants/acme/events?external_reference=FAC-1", key, nil, 200, &page)
		if len(page.Data) != 4 {
			t.Fatalf("external_reference filter: %d events, want 4", len(page.Data))
		}
	})
	t.Run("document look-up", func(t *testing.T) {
		var doc struct {
			ExternalReference string         `json:"external_reference"`
			Latest            aviso.Event    `json:"latest"`
			Events            []*aviso.Event `json:"events"`
		}
		e.call(t, "GET", "/v1/tenants/acme/documents/FAC-2", key, nil, 200, &doc)
		// FAC-2 is events 1, 3, 5: newest first.
		if doc.ExternalReference != "FAC-2" || doc.Latest.ID != want[5] || len(doc.Events) != 3 ||
			doc.Events[0].ID != want[5] || doc.Events[1].ID != want[3] || doc.Events[2].ID != want[1] {
			t.Fatalf("document %+v", doc)
		}
		if string(doc.Latest.Data) != `{"n":5}` {
			t.Fatalf("latest data %s", doc.Latest.Data)
		}
	})
	var one aviso.Event
	e.call(t, "GET", "/v1/tenants/acme/events/"+want[0], key, nil, 200, &one)
	if one.ID != want[0] || one.Type != "invoice.created" || one.ExternalReference != "FAC-1" {
		t.Fatalf("event %+v", one)
	}
}

func TestHandshake(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", "")

	t.Run("2xx creates the endpoint", func(t *testing.T) {
		rc := newReceiver(t, 204)
		var ep aviso.Endpoint
		e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL + "/hook"}, 201, &ep)
		if ep.VerifiedAt == nil || ep.Format != aviso.FormatStandard || ep.TimeoutSeconds != 10 {
			t.Fatalf("endpoint %+v", ep)
		}
		got := rc.next(t)
		var sec struct {
			Secret string `json:"secret"`
		}
		e.call(t, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/secret", key, nil, 200, &sec)
		v := webhook.Verifier{Secrets: []string{sec.Secret}}
		if err := v.Verify(got.Header, got.Body); err != nil {
			t.Fatalf("the handshake is not a signed delivery: %v; headers %v", err, got.Header)
		}
		var ping struct{ Type string }
		if err := json.Unmarshal(got.Body, &ping); err != nil || ping.Type != webhook.PingType {
			t.Fatalf("handshake body %s", got.Body)
		}
	})
	t.Run("alegra handshake has an empty body", func(t *testing.T) {
		rc := newReceiver(t, 200)
		e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL, "format": "alegra"}, 201, nil)
		if got := rc.next(t); len(got.Body) != 0 {
			t.Fatalf("alegra handshake body %q, want empty", got.Body)
		}
	})
	t.Run("verify false skips it", func(t *testing.T) {
		rc := newReceiver(t, 500)
		var ep aviso.Endpoint
		e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL, "verify": false}, 201, &ep)
		if ep.VerifiedAt != nil {
			t.Fatalf("verified_at %v on an unverified endpoint", ep.VerifiedAt)
		}
		rc.none(t)
	})

	refused := []struct {
		name, url, says string
	}{
		{"500", newReceiver(t, 500).URL, "answered HTTP 500"},
		{"stall past the limit", staller(t), "did not answer within"},
		{"closed port", closedPort(t), "could not be reached"},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			var got apiError
			e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": tc.url}, 422, &got)
			if got.Error.Field != "url" || !strings.Contains(got.Error.Message, tc.says) {
				t.Fatalf("error %+v, want field url saying %q", got.Error, tc.says)
			}
			if after := e.snapshot(t); after != before {
				t.Fatal("a refused endpoint was stored")
			}
		})
	}

	t.Run("changing the URL verifies again", func(t *testing.T) {
		rc := newReceiver(t, 200)
		var ep aviso.Endpoint
		e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL}, 201, &ep)
		rc.next(t)
		before := e.snapshot(t)
		var got apiError
		e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, key, map[string]any{"url": closedPort(t), "description": "moved"}, 422, &got)
		if got.Error.Field != "url" {
			t.Fatalf("error %+v", got.Error)
		}
		if e.snapshot(t) != before {
			t.Fatal("a refused PATCH changed the endpoint")
		}
		other := newReceiver(t, 200)
		var moved aviso.Endpoint
		e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, key, map[string]any{"url": other.URL, "description": "moved"}, 200, &moved)
		other.next(t)
		if moved.URL != other.URL || moved.Description != "moved" || moved.VerifiedAt == nil {
			t.Fatalf("moved %+v", moved)
		}
		var unverified aviso.Endpoint
		e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, key, map[string]any{"url": rc.URL + "/x", "verify": false}, 200, &unverified)
		if unverified.VerifiedAt != nil || unverified.URL != rc.URL+"/x" {
			t.Fatalf("verify:false: %+v", unverified)
		}
		rc.none(t)
	})
}

func TestEndpointLifecycle(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", invoiceSchema)
	rc := newReceiver(t, 200)
	var ep aviso.Endpoint
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL, "verify": false,
		"event_types": []string{"invoice.created"}, "retry_schedule": []string{"5s", "1m"}, "headers": map[string]string{"X-Tenant": "acme"}}, 201, &ep)
	base := "/v1/tenants/acme/endpoints/" + ep.ID

	t.Run("disable and enable", func(t *testing.T) {
		var got aviso.Endpoint
		e.call(t, "PATCH", base, key, map[string]any{"disabled": true}, 200, &got)
		if !got.Disabled || got.DisabledReason != aviso.DisabledByUser || len(got.EventTypes) != 1 {
			t.Fatalf("disabled %+v", got)
		}
		e.call(t, "PATCH", base, key, map[string]any{"disabled": false}, 200, &got)
		if got.Disabled {
			t.Fatalf("re-enabled %+v", got)
		}
	})
	t.Run("rotate secret keeps two live", func(t *testing.T) {
		var old, rot, now struct {
			Secret  string         `json:"secret"`
			Secrets []aviso.Secret `json:"secrets"`
			Token   string         `json:"token"`
		}
		e.call(t, "GET", base+"/secret", key, nil, 200, &old)
		e.call(t, "POST", base+"/rotate-secret", key, nil, 200, &rot)
		e.call(t, "GET", base+"/secret", key, nil, 200, &now)
		if len(old.Secrets) != 1 || old.Token == "" {
			t.Fatalf("before rotation %+v", old)
		}
		for _, s := range []any{rot, now} {
			b, _ := json.Marshal(s)
			if !strings.Contains(string(b), old.Secret) {
				t.Fatalf("the old secret is gone after rotation: %s", b)
			}
		}
		if len(now.Secrets) != 2 || now.Secret == old.Secret || now.Secrets[0].Value != now.Secret ||
			now.Secrets[1].Value != old.Secret || now.Secrets[1].ExpiresAt == nil || now.Secrets[0].ExpiresAt != nil {
			t.Fatalf("after rotation %+v (old %s)", now, old.Secret)
		}
	})
	t.Run("send test", func(t *testing.T) {
		var at aviso.Attempt
		e.call(t, "POST", base+"/test", key, map[string]any{"data": map[string]any{"total": 3}}, 200, &at)
		got := rc.next(t)
		if at.ResponseStatus != 200 || got.Header.Get("X-Tenant") != "acme" || !strings.Contains(string(got.Body), `"total":3`) {
			t.Fatalf("attempt %+v, received %s", at, got.Body)
		}
		var d aviso.Delivery
		e.call(t, "GET", "/v1/tenants/acme/deliveries/"+at.DeliveryID, key, nil, 200, &d)
		if d.Status != aviso.StatusSucceeded || len(d.Attempts) != 1 || d.Attempts[0].ResponseStatus != 200 {
			t.Fatalf("test delivery %+v", d)
		}

		rc.setStatus(http.StatusInternalServerError)
		e.call(t, "POST", base+"/test", key, nil, 200, &at) // no body: the catalog example
		rc.next(t)
		e.call(t, "GET", "/v1/tenants/acme/deliveries/"+at.DeliveryID, key, nil, 200, &d)
		if at.ResponseStatus != 500 || d.Status != aviso.StatusPending || d.NextAttemptAt == nil || d.AttemptCount != 1 {
			t.Fatalf("failed test: attempt %+v delivery %+v", at, d)
		}
		var failed aviso.Page[*aviso.Delivery]
		e.call(t, "GET", base+"/deliveries?status=pending", key, nil, 200, &failed)
		if len(failed.Data) != 1 || failed.Data[0].ID != d.ID {
			t.Fatalf("pending deliveries %+v", failed.Data)
		}
		var retried aviso.Delivery
		e.call(t, "POST", "/v1/tenants/acme/deliveries/"+d.ID+"/retry", key, nil, 202, &retried)
		if retried.ID != d.ID || retried.Status != aviso.StatusPending {
			t.Fatalf("retried %+v", retried)
		}
		var replay map[string]int
		e.call(t, "POST", base+"/replay", key, map[string]any{"since": "2000-01-01T00:00:00Z", "status": "all"}, 202, &replay)
		if _, ok := replay["queued"]; !ok {
			t.Fatalf("replay answer %v", replay)
		}
		var bad apiError
		e.call(t, "POST", base+"/replay", key, map[string]any{"since": "yesterday"}, 422, &bad)
		if bad.Error.Field != "since" {
			t.Fatalf("replay error %+v", bad.Error)
		}
	})
	t.Run("list and delete", func(t *testing.T) {
		var list aviso.Page[*aviso.Endpoint]
		e.call(t, "GET", "/v1/tenants/acme/endpoints", key, nil, 200, &list)
		if len(list.Data) != 1 || list.Data[0].ID != ep.ID {
			t.Fatalf("list %+v", list.Data)
		}
		e.call(t, "DELETE", base, key, nil, 204, nil)
		e.call(t, "GET", base, key, nil, 404, nil)
	})
}
