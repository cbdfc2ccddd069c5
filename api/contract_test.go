package api_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/web"
)

// TestInputContract runs every case of the input contract (issue 19) on both stores: the same
// answer — status, code, field — on SQLite and PostgreSQL, and nothing stored by a refusal.
func TestInputContract(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			testInputContract(t, st.open(t))
		})
	}
}

func testInputContract(t *testing.T, store aviso.Store) {
	e := newEnvOn(t, store, func(svc *service.Service) api.PortalLinker {
		h, err := web.New(web.Config{Service: svc, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		return h
	})
	key := e.tenant(t, "acme")
	e.eventType(t, "invoice.created", "")
	rc := newReceiver(t, 200)
	var ep aviso.Endpoint
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL, "verify": false}, 201, &ep)
	var ev aviso.Event
	e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.created",
		"data": map[string]any{"n": 1}, "external_reference": "FAC-1"}, 202, &ev)

	epURL := "/v1/tenants/acme/endpoints"
	big := strings.Repeat("a", aviso.MaxHeaderValueLen+1)
	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		code, field  string
	}{
		// Text that is not UTF-8.
		{"event data not UTF-8", "POST", "/v1/tenants/acme/events", "{\"type\":\"invoice.created\",\"data\":{\"n\":\"\xff\xfe\"}}", 400, aviso.EINVALIDJSON, ""},
		{"tenant name not UTF-8", "POST", "/v1/tenants", "{\"id\":\"b\",\"name\":\"\xc3\"}", 400, aviso.EINVALIDJSON, ""},
		{"lone surrogate in data", "POST", "/v1/tenants/acme/events", `{"type":"invoice.created","data":{"n":"\udfff"}}`, 400, aviso.EINVALIDJSON, ""},
		{"cursor not UTF-8", "GET", "/v1/tenants/acme/events?after=%ff%fe", "", 400, aviso.EINVALIDTEXT, "after"},
		{"document not UTF-8", "GET", "/v1/tenants/acme/documents/%ff", "", 400, aviso.EINVALIDTEXT, "path"},
		{"document NUL", "GET", "/v1/tenants/acme/documents/%00", "", 400, aviso.EINVALIDTEXT, "path"},
		{"malformed query", "GET", "/v1/tenants/acme/events?after=%zz", "", 400, aviso.EINVALIDTEXT, ""},

		// \u0000 in a stored string.
		{"NUL in a tenant name", "POST", "/v1/tenants", `{"id":"b","name":"x\u0000"}`, 422, aviso.EINVALID, "name"},
		{"NUL in tenant metadata", "PATCH", "/v1/tenants/acme", `{"metadata":{"plan":"\u0000"}}`, 422, aviso.EINVALID, "/metadata/plan"},
		{"NUL in event data", "POST", "/v1/tenants/acme/events", `{"type":"invoice.created","data":{"customer":{"name":"\u0000"}}}`, 422, aviso.EINVALID, "/data/customer/name"},
		{"NUL in a batch", "POST", "/v1/tenants/acme/events/batch", `{"events":[{"type":"invoice.created","data":{}},{"type":"invoice.created","data":["\u0000"]}]}`, 422, aviso.EINVALID, "/events/1/data/0"},
		{"NUL in an external reference", "POST", "/v1/tenants/acme/events", `{"type":"invoice.created","data":{},"external_reference":"F\u0000"}`, 422, aviso.EINVALID, "external_reference"},
		{"NUL in an endpoint description", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"description":"\u0000"}`, 422, aviso.EINVALID, "description"},
		{"NUL in a header value", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"headers":{"X-A":"\u0000"}}`, 422, aviso.EINVALID, "/headers/X-A"},
		{"NUL in an event type", "POST", "/v1/event-types", `{"name":"a.b","description":"\u0000"}`, 422, aviso.EINVALID, "description"},
		{"NUL in a schema", "POST", "/v1/event-types", `{"name":"a.b","schema":{"title":"\u0000"}}`, 422, aviso.EINVALID, "/schema/title"},

		// Cursors.
		{"garbage cursor: tenants", "GET", "/v1/tenants?after=zzz", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: event types", "GET", "/v1/event-types?after=zzz", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: endpoints", "GET", epURL + "?after=zzz", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: events", "GET", "/v1/tenants/acme/events?after=zzz", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: numeric", "GET", "/v1/tenants/acme/events?after=12", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: an ID", "GET", "/v1/tenants/acme/events?after=" + ev.ID, "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: endpoint deliveries", "GET", epURL + "/" + ep.ID + "/deliveries?after=zzz", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: event deliveries", "GET", "/v1/tenants/acme/events/" + ev.ID + "/deliveries?after=zzz", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"garbage cursor: document", "GET", "/v1/tenants/acme/documents/FAC-1?after=zzz", "", 422, aviso.EINVALIDCURSOR, "after"},
		{"another list's cursor", "GET", "/v1/tenants?after=" + aviso.EndpointsCursor.Encode("x"), "", 422, aviso.EINVALIDCURSOR, "after"},
		{"a made-up cursor the store refuses", "GET", "/v1/tenants/acme/documents/FAC-1?after=" + aviso.DocumentCursor.Encode("x\x01"), "", 422, aviso.EINVALIDCURSOR, "after"},

		// Limits.
		{"limit above the maximum", "GET", "/v1/tenants/acme/events?limit=100000", "", 422, aviso.EINVALID, "limit"},
		{"limit 501", "GET", "/v1/tenants?limit=501", "", 422, aviso.EINVALID, "limit"},
		{"limit 0", "GET", "/v1/event-types?limit=0", "", 422, aviso.EINVALID, "limit"},

		// Custom headers.
		{"header value over 8 KiB", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"headers":{"X-A":"` + big + `"}}`, 422, aviso.EINVALID, "/headers/X-A"},
		{"control character in a header", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"headers":{"X-A":"a\u0001b"}}`, 422, aviso.EINVALID, "/headers/X-A"},
		{"CR LF in a header", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"headers":{"X-A":"a\r\nX-B: c"}}`, 422, aviso.EINVALID, "/headers/X-A"},
		{"DEL in a header", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"headers":{"X-A":"\u007f"}}`, 422, aviso.EINVALID, "/headers/X-A"},
		{"non-ASCII in a header", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"headers":{"X-A":"señal"}}`, 422, aviso.EINVALID, "/headers/X-A"},
		{"header change", "PATCH", epURL + "/" + ep.ID, `{"headers":{"X-A":"\u0007"}}`, 422, aviso.EINVALID, "/headers/X-A"},

		// URLs.
		{"port 0", "POST", epURL, `{"url":"https://8.8.8.8:0/","verify":false}`, 422, aviso.EINVALID, "url"},
		{"port 99999", "POST", epURL, `{"url":"https://8.8.8.8:99999/","verify":false}`, 422, aviso.EINVALID, "url"},
		{"port 65536", "PATCH", epURL + "/" + ep.ID, `{"url":"https://8.8.8.8:65536/","verify":false}`, 422, aviso.EINVALID, "url"},
		{"decimal IPv4 host", "POST", epURL, `{"url":"http://2130706433/","verify":false}`, 422, aviso.EINVALID, "url"},
		{"hex IPv4 host", "POST", epURL, `{"url":"http://0x7f.1/","verify":false}`, 422, aviso.EINVALID, "url"},
		{"short IPv4 host", "POST", epURL, `{"url":"http://127.1/","verify":false}`, 422, aviso.EINVALID, "url"},

		// Durations.
		{"negative portal ttl", "POST", "/v1/tenants/acme/portal-link", `{"ttl":"-5m"}`, 422, aviso.EINVALID, "ttl"},
		{"zero portal ttl", "POST", "/v1/tenants/acme/portal-link", `{"ttl":"0s"}`, 422, aviso.EINVALID, "ttl"},
		{"zero retry wait", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"retry_schedule":["0s"]}`, 422, aviso.EINVALID, "retry_schedule"},
		{"negative retry wait", "POST", epURL, `{"url":"https://8.8.8.8/","verify":false,"retry_schedule":["-1m"]}`, 422, aviso.EINVALID, "retry_schedule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot(t)
			k := key
			if strings.HasPrefix(tt.path, "/v1/tenants?") || tt.path == "/v1/tenants" || strings.HasPrefix(tt.path, "/v1/event-types") ||
				tt.method == "PATCH" && tt.path == "/v1/tenants/acme" {
				k = e.root
			}
			var body any
			if tt.body != "" {
				body = tt.body
			}
			status, b := e.do(t, tt.method, tt.path, k, body)
			var ae apiError
			if err := json.Unmarshal(b, &ae); err != nil {
				t.Fatalf("status %d, body %q is not JSON: %v", status, b, err)
			}
			if status != tt.status || ae.Error.Code != tt.code || (tt.field != "" && ae.Error.Field != tt.field) || ae.Error.Message == "" {
				t.Fatalf("%s %s: %d %+v, want %d %s field %q", tt.method, tt.path, status, ae.Error, tt.status, tt.code, tt.field)
			}
			if after := e.snapshot(t); after != before {
				t.Fatalf("a refused request changed the store:\nbefore %s\nafter  %s", before, after)
			}
		})
	}

	// What the contract accepts, on both stores, comes back as it was sent.
	t.Run("accepted", func(t *testing.T) {
		var okEp aviso.Endpoint
		e.call(t, "POST", epURL, key, map[string]any{"url": "https://8.8.8.8:65535/x?a=1", "verify": false,
			"headers": map[string]string{"X-Max": strings.Repeat("b", aviso.MaxHeaderValueLen), "X-Tab": "a\tb ~"}}, 201, &okEp)
		if okEp.Headers["X-Tab"] != "a\tb ~" || len(okEp.Headers["X-Max"]) != aviso.MaxHeaderValueLen {
			t.Fatalf("headers %v", okEp.Headers)
		}
		data := `{"name":"Peña ✓ \ud83d\ude00","escaped":"\\u0000","ctl":"\u0001"}`
		var got aviso.Event
		e.call(t, "POST", "/v1/tenants/acme/events", key, `{"type":"invoice.created","data":`+data+`}`, 202, &got)
		e.call(t, "GET", "/v1/tenants/acme/events/"+got.ID, key, nil, 200, &got)
		var want, have any
		_ = json.Unmarshal([]byte(data), &want)
		if err := json.Unmarshal(got.Data, &have); err != nil || !jsonEqual(want, have) {
			t.Fatalf("data came back as %s (%v)", got.Data, err)
		}
		e.call(t, "POST", "/v1/tenants/acme/portal-link", e.root, `{"ttl":"1m"}`, 201, nil)
		e.call(t, "POST", "/v1/tenants/acme/portal-link", e.root, nil, 201, nil)
	})

	// A cursor handed out pages on, on every list.
	t.Run("cursors page", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.created", "data": map[string]any{},
				"external_reference": "FAC-1"}, 202, nil)
		}
		for _, path := range []string{"/v1/tenants/acme/events", "/v1/tenants/acme/documents/FAC-1", "/v1/tenants",
			"/v1/tenants/acme/events/" + ev.ID + "/deliveries"} {
			seen := 0
			after := ""
			for range 10 {
				var page struct {
					Data       []json.RawMessage `json:"data"`
					Events     []json.RawMessage `json:"events"`
					NextCursor string            `json:"next_cursor"`
					HasMore    bool              `json:"has_more"`
				}
				e.call(t, "GET", path+"?limit=1&after="+url.QueryEscape(after), e.root, nil, 200, &page)
				seen += len(page.Data) + len(page.Events)
				if !page.HasMore {
					break
				}
				after = page.NextCursor
			}
			if seen == 0 {
				t.Errorf("%s: nothing listed", path)
			}
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
