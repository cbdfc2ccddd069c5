package api_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestEndpointOrdering: ordering is "" or "external_reference" (422 naming the field
// otherwise, on create and on update), shown on the endpoint, and changed by a PATCH.
func TestEndpointOrdering(t *testing.T) {
	e := newEnv(t)
	key := e.root
	e.call(t, "POST", "/v1/tenants", key, map[string]any{"id": "acme", "name": "ACME"}, 201, nil)
	var bad struct{ Error aviso.Error }
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": "http://127.0.0.1:1/", "verify": false,
		"ordering": "event_type"}, 422, &bad)
	if bad.Error.Field != "ordering" {
		t.Fatalf("an unknown ordering: %+v, want field ordering", bad.Error)
	}
	var ep aviso.Endpoint
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": "http://127.0.0.1:1/", "verify": false,
		"ordering": "external_reference"}, 201, &ep)
	if ep.Ordering != aviso.OrderingExternalReference {
		t.Fatalf("created with ordering: shows %q", ep.Ordering)
	}
	e.call(t, "GET", "/v1/tenants/acme/endpoints/"+ep.ID, key, nil, 200, &ep)
	if ep.Ordering != aviso.OrderingExternalReference {
		t.Fatalf("read back: ordering %q", ep.Ordering)
	}
	bad.Error = aviso.Error{}
	e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, key, map[string]any{"ordering": "sequence"}, 422, &bad)
	if bad.Error.Field != "ordering" {
		t.Fatalf("an update to an unknown ordering: %+v, want field ordering", bad.Error)
	}
	e.call(t, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, key, map[string]any{"ordering": ""}, 200, &ep)
	if ep.Ordering != aviso.OrderingNone {
		t.Fatalf("after a PATCH to \"\": ordering %q", ep.Ordering)
	}
}
