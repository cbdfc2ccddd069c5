package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestEndpointFilter: a filter that does not compile is refused with 422 naming the field and
// the position; a stored filter decides at publish which events the endpoint gets; filter-test
// answers as a publish would.
func TestEndpointFilter(t *testing.T) {
	e := newEnv(t)
	key := e.root
	e.call(t, "POST", "/v1/tenants", key, map[string]any{"id": "acme", "name": "ACME"}, 201, nil)
	e.call(t, "POST", "/v1/event-types", key, map[string]any{"name": "invoice.created", "description": "An invoice."}, 201, nil)

	var bad struct{ Error aviso.Error }
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": "http://127.0.0.1:1/", "verify": false,
		"filter": "data.total >"}, 422, &bad)
	if bad.Error.Field != "filter" || !strings.Contains(bad.Error.Message, "line 1, column") {
		t.Fatalf("a filter that does not compile: %+v, want field filter and its position", bad.Error)
	}

	var ep aviso.Endpoint
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": "http://127.0.0.1:1/", "verify": false,
		"filter": `data.total > 1000 && external_reference startsWith "FAC-A"`}, 201, &ep)
	if ep.Filter == "" {
		t.Fatalf("the endpoint does not show its filter: %+v", ep)
	}
	publish := func(ref string, total int) int {
		t.Helper()
		var ev aviso.Event
		e.call(t, "POST", "/v1/tenants/acme/events", key, map[string]any{"type": "invoice.created",
			"external_reference": ref, "data": map[string]any{"id": ref, "total": total}}, 202, &ev)
		var page aviso.Page[*aviso.Delivery]
		e.call(t, "GET", "/v1/tenants/acme/events/"+ev.ID+"/deliveries", key, nil, 200, &page)
		return len(page.Data)
	}
	for _, tt := range []struct {
		ref   string
		total int
		want  int
	}{{"FAC-A-1", 5000, 1}, {"FAC-A-2", 10, 0}, {"FAC-B-1", 5000, 0}} {
		if got := publish(tt.ref, tt.total); got != tt.want {
			t.Errorf("event %s total %d: %d deliveries, want %d", tt.ref, tt.total, got, tt.want)
		}
	}

	var res struct {
		Match bool
		Error string
	}
	base := "/v1/tenants/acme/endpoints/" + ep.ID + "/filter-test"
	e.call(t, "POST", base, key, map[string]any{"type": "invoice.created", "external_reference": "FAC-A-9",
		"data": map[string]any{"total": 2000}}, http.StatusOK, &res)
	if !res.Match {
		t.Errorf("filter-test of a matching event: %+v", res)
	}
	e.call(t, "POST", base, key, map[string]any{"filter": `data.currency == "EUR"`, "type": "invoice.created",
		"data": map[string]any{"currency": "USD"}}, http.StatusOK, &res)
	if res.Match {
		t.Errorf("filter-test of another filter on a USD event: %+v", res)
	}
	e.call(t, "POST", base, key, map[string]any{"filter": "1 +"}, 422, &bad)

	// A PATCH changes the filter; "" removes it.
	e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, key, map[string]any{"filter": ""}, 200, &ep)
	if ep.Filter != "" || publish("FAC-B-2", 1) != 1 {
		t.Errorf("after removing the filter: filter %q; every event should be delivered", ep.Filter)
	}
}
