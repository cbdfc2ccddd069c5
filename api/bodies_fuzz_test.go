package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/service"
)

// FuzzBodies sends any body to every route of the API that reads one (POST and PATCH, from
// api.Routes), on the real stack over SQLite: the answer is never a 5xx, always JSON, and an
// error names a code and a message. The service has no sender and allows private networks,
// so nothing fuzzed leaves the process: no handshake, no test send, no DNS lookup.
func FuzzBodies(f *testing.F) {
	ctx := context.Background()
	store := openStore(f)
	svc, err := service.New(service.Config{Store: store, AllowPrivateNetworks: true, MaxPayloadBytes: maxPayload})
	if err != nil {
		f.Fatal(err)
	}
	root, err := svc.EnsureRootKey(ctx, "")
	if err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Service: svc}))
	defer srv.Close()
	e := &env{srv: srv, store: store, svc: svc, root: root}
	key := e.tenant(f, "acme")
	e.eventType(f, "invoice.created", "")
	var ep aviso.Endpoint
	e.call(f, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": "http://127.0.0.1:1/", "verify": false}, 201, &ep)
	var ev aviso.Event
	e.call(f, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.created", "data": map[string]any{}}, 202, &ev)
	var ds struct {
		Data []aviso.Delivery `json:"data"`
	}
	e.call(f, "GET", "/v1/tenants/acme/events/"+ev.ID+"/deliveries", key, nil, 200, &ds)

	var routes []string
	for _, r := range api.Routes() {
		if r.Method == "POST" || r.Method == "PATCH" {
			path := strings.NewReplacer("{tenant}", "acme", "{endpoint}", ep.ID, "{event}", ev.ID,
				"{delivery}", ds.Data[0].ID, "{name}", "invoice.created").Replace(r.Path)
			routes = append(routes, r.Method+" "+path)
		}
	}
	for _, body := range isolationCases {
		f.Add(uint8(0), strings.ReplaceAll(body, "{receiver}", "http://127.0.0.1:1/"))
	}
	for _, c := range globalCases {
		f.Add(uint8(1), c.body)
	}
	for _, s := range []string{`{"data":{"x":"\u0000"}}`, "{\"name\":\"\xff\"}", `{"ttl":"-1s"}`, `{"events":[{}]}`,
		`{"headers":{"X":"\u0001"}}`, `{"url":"http://[::1%25lo]/"}`, `{"retry_schedule":["0s"]}`, `[]`, `null`, ``} {
		f.Add(uint8(2), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		for i := range 3 {
			method, path, _ := strings.Cut(routes[(int(which)+i*7)%len(routes)], " ")
			for _, k := range []string{root, key} {
				req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+k)
				res, err := srv.Client().Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				var out struct {
					Error *struct {
						Code    string `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				derr := json.NewDecoder(res.Body).Decode(&out)
				res.Body.Close()
				if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("%s %s %q: %d", method, path, body, res.StatusCode)
				}
				if derr != nil {
					t.Fatalf("%s %s %q: %d, the answer is not JSON: %v", method, path, body, res.StatusCode, derr)
				}
				if res.StatusCode >= 400 && (out.Error == nil || out.Error.Code == "" || out.Error.Message == "") {
					t.Fatalf("%s %s %q: %d without an error code and message", method, path, body, res.StatusCode)
				}
				if res.StatusCode == http.StatusServiceUnavailable && out.Error.Code == aviso.EINTERNAL {
					t.Fatalf("%s %s %q: 503 internal", method, path, body)
				}
			}
		}
	})
}
