package api_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestRateLimitField: an endpoint's rate_limit is set at creation, changed and removed (null or
// 0) by PATCH, and refused with a 422 naming the field when it is not a whole number of
// deliveries per second within the bounds.
func TestRateLimitField(t *testing.T) {
	e := newEnv(t)
	key := e.tenant(t, "acme")
	rc := newReceiver(t, 200)
	var ep aviso.Endpoint
	e.call(t, "POST", "/v1/tenants/acme/endpoints", key, map[string]any{"url": rc.URL, "verify": false, "rate_limit": 100}, 201, &ep)
	if ep.RateLimit != 100 {
		t.Fatalf("created with rate_limit %d, want 100", ep.RateLimit)
	}
	path := "/v1/tenants/acme/endpoints/" + ep.ID
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"changed", map[string]any{"rate_limit": 5}, 5},
		{"left alone", map[string]any{"description": "x"}, 5},
		{"removed with null", map[string]any{"rate_limit": nil}, 0},
		{"set again", map[string]any{"rate_limit": 7}, 7},
		{"removed with 0", map[string]any{"rate_limit": 0}, 0},
	} {
		var got aviso.Endpoint
		e.call(t, "PATCH", path, key, tc.body, 200, &got)
		if got.RateLimit != tc.want {
			t.Errorf("%s: rate_limit %d, want %d", tc.name, got.RateLimit, tc.want)
		}
	}
	for _, bad := range []any{"fast", -3, 20000, 1.5} {
		var got apiError
		e.call(t, "PATCH", path, key, map[string]any{"rate_limit": bad}, 422, &got)
		if got.Error.Code != aviso.EINVALID || got.Error.Field != "rate_limit" {
			t.Errorf("rate_limit %v: error %+v, want invalid rate_limit", bad, got.Error)
		}
	}
}
