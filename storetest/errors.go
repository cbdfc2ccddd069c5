package storetest

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testErrorMessages decides the code and the message of each error a store answers for a
// missing or taken resource: both stores give the same ones, "<noun> not found" and "<noun>
// already exists", so a caller (and the API, which passes some through) sees the same answer
// whichever store is behind it.
func testErrorMessages(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep := NewEndpoint(t, s, ten.ID)
	if err := s.CreateEventType(ctx, &aviso.EventType{Name: "errors.taken", CreatedAt: Base(), UpdatedAt: Base()}); err != nil {
		t.Fatalf("create event type: %v", err)
	}
	second := func(_ any, err error) error { return err }
	tests := []struct {
		name string
		err  error
		code string
		msg  string
	}{
		{"get tenant", second(s.GetTenant(ctx, "nobody")), aviso.ENOTFOUND, "tenant not found"},
		{"create tenant taken", s.CreateTenant(ctx, &aviso.Tenant{ID: ten.ID, Name: "x", CreatedAt: Base(), UpdatedAt: Base()}),
			aviso.ECONFLICT, "tenant already exists"},
		{"update tenant", s.UpdateTenant(ctx, &aviso.Tenant{ID: "nobody", Name: "x", UpdatedAt: Base()}), aviso.ENOTFOUND, "tenant not found"},
		{"delete tenant", s.DeleteTenant(ctx, "nobody"), aviso.ENOTFOUND, "tenant not found"},
		{"get api key", second(s.GetAPIKey(ctx, "key_nobody")), aviso.ENOTFOUND, "api key not found"},
		{"save api key unknown tenant", s.SaveAPIKey(ctx, &aviso.APIKey{ID: "key_x", TenantID: "nobody", Hash: "h", CreatedAt: Base()}),
			aviso.ENOTFOUND, "tenant not found"},
		{"get event type", second(s.GetEventType(ctx, "no.such")), aviso.ENOTFOUND, "event type not found"},
		{"create event type taken", s.CreateEventType(ctx, &aviso.EventType{Name: "errors.taken", CreatedAt: Base(), UpdatedAt: Base()}),
			aviso.ECONFLICT, "event type already exists"},
		{"delete event type", s.DeleteEventType(ctx, "no.such"), aviso.ENOTFOUND, "event type not found"},
		{"get endpoint", second(s.GetEndpoint(ctx, ten.ID, "ep_nobody")), aviso.ENOTFOUND, "endpoint not found"},
		{"create endpoint unknown tenant", s.CreateEndpoint(ctx, &aviso.Endpoint{ID: "ep_orphan", TenantID: "nobody",
			URL: "https://example.com/x", Format: aviso.FormatStandard, CreatedAt: Base(), UpdatedAt: Base()}),
			aviso.ENOTFOUND, "tenant not found"},
		{"create endpoint taken", s.CreateEndpoint(ctx, &aviso.Endpoint{ID: ep.ID, TenantID: ten.ID,
			URL: "https://example.com/x", Format: aviso.FormatStandard, CreatedAt: Base(), UpdatedAt: Base()}),
			aviso.ECONFLICT, "endpoint already exists"},
		{"delete endpoint", s.DeleteEndpoint(ctx, ten.ID, "ep_nobody"), aviso.ENOTFOUND, "endpoint not found"},
		{"set endpoint disabled", second(s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID,
			ID: "ep_nobody", Disabled: true, Reason: aviso.DisabledByUser, Now: Base()})), aviso.ENOTFOUND, "endpoint not found"},
		{"get event", second(s.GetEvent(ctx, ten.ID, "evt_nobody")), aviso.ENOTFOUND, "event not found"},
		{"get delivery", second(s.GetDelivery(ctx, ten.ID, "del_nobody")), aviso.ENOTFOUND, "delivery not found"},
		{"retry delivery", second(s.RetryDelivery(ctx, ten.ID, "del_nobody", Base().Add(time.Minute))), aviso.ENOTFOUND, "delivery not found"},
		{"replay deliveries", second(s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: ten.ID, EndpointID: "ep_nobody",
			Since: Base(), Now: Base()})), aviso.ENOTFOUND, "endpoint not found"},
		{"insert events unknown tenant", second(s.InsertEvents(ctx, []aviso.NewEvent{NewEvent("nobody", "invoice.created", Base())})),
			aviso.ENOTFOUND, "tenant not found"},
	}
	for _, tc := range tests {
		if code, msg := aviso.ErrorCode(tc.err), aviso.ErrorMessage(tc.err); code != tc.code || msg != tc.msg {
			t.Errorf("%s: %q %q (%v), want %q %q", tc.name, code, msg, tc.err, tc.code, tc.msg)
		}
	}
}
