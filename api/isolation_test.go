package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/web"
)

// isolationCases holds, for every route of the API with a tenant in it, the body that makes
// the request valid: the walk sends it with tenant B's key to tenant A's resources and expects
// 404 or 403 and nothing changed, then sends it with the root key to prove that it names real
// resources (2xx). A route of api.New's table without a case here fails the test.
var isolationCases = map[string]string{
	"GET /v1/tenants/{tenant}":                                     "",
	"PATCH /v1/tenants/{tenant}":                                   `{"name":"renamed"}`,
	"DELETE /v1/tenants/{tenant}":                                  "",
	"POST /v1/tenants/{tenant}/keys":                               "",
	"POST /v1/tenants/{tenant}/portal-link":                        `{"ttl":"1m"}`,
	"POST /v1/tenants/{tenant}/endpoints":                          `{"url":"{receiver}","verify":false}`,
	"GET /v1/tenants/{tenant}/endpoints":                           "",
	"GET /v1/tenants/{tenant}/endpoints/{endpoint}":                "",
	"PATCH /v1/tenants/{tenant}/endpoints/{endpoint}":              `{"description":"changed"}`,
	"DELETE /v1/tenants/{tenant}/endpoints/{endpoint}":             "",
	"POST /v1/tenants/{tenant}/endpoints/{endpoint}/rotate-secret": "",
	"GET /v1/tenants/{tenant}/endpoints/{endpoint}/secret":         "",
	"POST /v1/tenants/{tenant}/endpoints/{endpoint}/test":          "{}",
	"GET /v1/tenants/{tenant}/endpoints/{endpoint}/deliveries":     "",
	"POST /v1/tenants/{tenant}/endpoints/{endpoint}/replay":        `{"since":"2000-01-01T00:00:00Z","status":"all"}`,
	"POST /v1/tenants/{tenant}/endpoints/{endpoint}/filter-test":   `{"filter":"type == \"invoice.created\"","type":"invoice.created","data":{}}`,
	"POST /v1/tenants/{tenant}/events":                             `{"type":"invoice.created","data":{"n":2}}`,
	"POST /v1/tenants/{tenant}/events/batch":                       `{"events":[{"type":"invoice.created","data":{"n":3}}]}`,
	"GET /v1/tenants/{tenant}/events":                              "",
	"GET /v1/tenants/{tenant}/events/{event}":                      "",
	"GET /v1/tenants/{tenant}/events/{event}/deliveries":           "",
	"GET /v1/tenants/{tenant}/deliveries/{delivery}":               "",
	"POST /v1/tenants/{tenant}/deliveries/{delivery}/retry":        "",
	"GET /v1/tenants/{tenant}/events/stream":                       "", // a stream: the control reads only its status
	"GET /v1/tenants/{tenant}/deliveries":                          "",
	"GET /v1/tenants/{tenant}/documents/{ref...}":                  "",
}

// globalCases are the routes with no tenant in them, with a valid body and what a tenant key
// gets.
var globalCases = map[string]struct {
	body   string
	status int
}{
	"POST /v1/tenants":              {`{"id":"c","name":"C"}`, http.StatusForbidden},
	"GET /v1/tenants":               {"", http.StatusForbidden},
	"GET /healthz":                  {"", http.StatusOK},
	"GET /readyz":                   {"", http.StatusOK},
	"GET /v1/key":                   {"", http.StatusOK}, // the caller's own key
	"GET /v1/openapi.json":          {"", http.StatusOK}, // the public API document
	"POST /v1/event-types":          {`{"name":"x.y"}`, http.StatusForbidden},
	"GET /v1/event-types":           {"", http.StatusOK}, // the shared catalog
	"GET /v1/event-types/{name}":    {"", http.StatusOK},
	"PATCH /v1/event-types/{name}":  {`{"description":"changed"}`, http.StatusForbidden},
	"DELETE /v1/event-types/{name}": {"", http.StatusForbidden},
	"GET /v1/outbox":                {"", http.StatusForbidden},
	"GET /v1/outbox/rejected":       {"", http.StatusForbidden},

	// The operational tenant's endpoints and deliveries: root only.
	"POST /v1/operational-endpoints":                          {`{"url":"https://8.8.8.8/","verify":false}`, http.StatusForbidden},
	"GET /v1/operational-endpoints":                           {"", http.StatusForbidden},
	"GET /v1/operational-endpoints/{endpoint}":                {"", http.StatusForbidden},
	"PATCH /v1/operational-endpoints/{endpoint}":              {`{"description":"changed"}`, http.StatusForbidden},
	"DELETE /v1/operational-endpoints/{endpoint}":             {"", http.StatusForbidden},
	"POST /v1/operational-endpoints/{endpoint}/rotate-secret": {"", http.StatusForbidden},
	"GET /v1/operational-endpoints/{endpoint}/secret":         {"", http.StatusForbidden},
	"POST /v1/operational-endpoints/{endpoint}/test":          {"{}", http.StatusForbidden},
	"GET /v1/operational-endpoints/{endpoint}/deliveries":     {"", http.StatusForbidden},
	"POST /v1/operational-endpoints/{endpoint}/replay":        {`{"since":"2000-01-01T00:00:00Z"}`, http.StatusForbidden},
	"GET /v1/operational-deliveries/{delivery}":               {"", http.StatusForbidden},
	"POST /v1/operational-deliveries/{delivery}/retry":        {"", http.StatusForbidden},
}

// TestIsolationWalk walks the API's route table (issue 19): for every route with a tenant in
// it, tenant B's key gets 404 or 403 on tenant A's resources — named under A, and named under
// B — and changes nothing, on both stores.
func TestIsolationWalk(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			testIsolationWalk(t, st.open(t))
		})
	}
}

func testIsolationWalk(t *testing.T, store aviso.Store) {
	ctx := context.Background()
	var routes []string
	e := newEnvOn(t, store, func(svc *service.Service) api.PortalLinker {
		h, err := web.New(web.Config{Service: svc, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		return h
	})
	for _, r := range api.Routes() {
		routes = append(routes, r.Method+" "+r.Path)
	}
	if len(routes) < len(isolationCases) {
		t.Fatalf("the route table lists %d routes", len(routes))
	}

	keyA, keyB := e.tenant(t, "a"), e.tenant(t, "b")
	e.eventType(t, "invoice.created", "")
	rcA, rcB := newReceiver(t, 200), newReceiver(t, 200)
	type resources struct{ endpoint, event, delivery, ref string }
	seed := func(tenant, key string, rc *receiver) resources {
		var ep aviso.Endpoint
		e.call(t, "POST", "/v1/tenants/"+tenant+"/endpoints", key, map[string]any{"url": rc.URL, "verify": false}, 201, &ep)
		var ev aviso.Event
		e.call(t, "POST", "/v1/tenants/"+tenant+"/events", key, map[string]any{"type": "invoice.created",
			"data": map[string]any{"n": 1}, "external_reference": "DOC-" + tenant}, 202, &ev)
		var ds struct {
			Data []aviso.Delivery `json:"data"`
		}
		e.call(t, "GET", "/v1/tenants/"+tenant+"/events/"+ev.ID+"/deliveries", key, nil, 200, &ds)
		if len(ds.Data) != 1 {
			t.Fatalf("tenant %s: %d deliveries", tenant, len(ds.Data))
		}
		return resources{ep.ID, ev.ID, ds.Data[0].ID, "DOC-" + tenant}
	}
	resA := seed("a", keyA, rcA)
	seed("b", keyB, rcB)
	fill := func(pattern, tenant string, r resources) (method, path, body string) {
		method, path, _ = strings.Cut(pattern, " ")
		path = strings.NewReplacer("{tenant}", tenant, "{endpoint}", r.endpoint, "{event}", r.event,
			"{delivery}", r.delivery, "{ref...}", r.ref, "{name}", "invoice.created").Replace(path)
		body = strings.ReplaceAll(isolationCases[pattern], "{receiver}", rcA.URL)
		return method, path, body
	}
	secrets := func() string {
		ep, err := store.GetEndpoint(ctx, "a", resA.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ep.Secrets)
		return string(b)
	}
	send := func(method, path, key, body string) (int, []byte) {
		if strings.HasSuffix(path, "/stream") { // the status only: a stream does not end
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, b
			}
			return res.StatusCode, nil
		}
		var b any
		if body != "" {
			b = body
		}
		return e.do(t, method, path, key, b)
	}

	var tenantRoutes []string
	for _, pattern := range routes {
		if !strings.Contains(pattern, "{tenant}") {
			gc, ok := globalCases[pattern]
			if !ok {
				t.Errorf("route %q has no case in globalCases: say what a tenant key gets", pattern)
				continue
			}
			method, path, _ := fill(pattern, "a", resA)
			if status, b := send(method, path, keyB, gc.body); status != gc.status {
				t.Errorf("%s with a tenant key: %d %s, want %d", pattern, status, b, gc.status)
			}
			continue
		}
		if _, ok := isolationCases[pattern]; !ok {
			t.Errorf("route %q has no case in isolationCases: every route with a tenant in it must prove isolation", pattern)
			continue
		}
		tenantRoutes = append(tenantRoutes, pattern)
	}
	for pattern := range isolationCases {
		if !slices.Contains(routes, pattern) {
			t.Errorf("isolationCases names %q, which is not a route", pattern)
		}
	}

	before, beforeSecrets := e.snapshot(t), secrets()
	for _, pattern := range tenantRoutes {
		t.Run(pattern, func(t *testing.T) {
			// A's resources named under A, then under B (an ID of A's in B's own paths).
			for _, tenant := range []string{"a", "b"} {
				if tenant == "b" && strings.Count(pattern, "{") == 1 {
					continue // only {tenant}: under B it is B's own
				}
				method, path, body := fill(pattern, tenant, resA)
				status, b := send(method, path, keyB, body)
				if status != http.StatusNotFound && status != http.StatusForbidden {
					t.Fatalf("%s %s with B's key: %d %s, want 404 or 403", method, path, status, b)
				}
				for _, secret := range []string{"whsec_", `"key"`, `"url"`} {
					if strings.Contains(string(b), secret) {
						t.Fatalf("%s %s: the answer holds %s: %s", method, path, secret, b)
					}
				}
			}
			if after := e.snapshot(t); after != before {
				t.Fatalf("B's requests changed the store:\nbefore %s\nafter  %s", before, after)
			}
			if secrets() != beforeSecrets {
				t.Fatal("B's requests changed A's secrets")
			}
			rcA.none(t)
		})
	}

	// The same requests with the root key succeed: the walk named real resources. Deletions last.
	slices.SortStableFunc(tenantRoutes, func(x, y string) int {
		rank := func(p string) int {
			switch {
			case p == "DELETE /v1/tenants/{tenant}":
				return 2
			case strings.HasPrefix(p, "DELETE "):
				return 1
			}
			return 0
		}
		return rank(x) - rank(y)
	})
	for _, pattern := range tenantRoutes {
		method, path, body := fill(pattern, "a", resA)
		if status, b := send(method, path, e.root, body); status < 200 || status > 299 {
			t.Errorf("control: %s %s with the root key: %d %s, want 2xx", method, path, status, b)
		}
	}
}
