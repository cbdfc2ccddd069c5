package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func testTenants(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := &aviso.Tenant{ID: "acme", Name: "ACME S.A.S.", Metadata: map[string]string{"nit": "900123456-7", "plan": "pro"},
		CreatedAt: Base(), UpdatedAt: Base()}
	if err := s.CreateTenant(ctx, ten); err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	got, err := s.GetTenant(ctx, "acme")
	if err != nil {
		t.Fatalf("get tenant: %v", err)
	}
	checkTenant(t, got, ten)

	t.Run("conflict", func(t *testing.T) {
		dup := *ten
		dup.Name = "other"
		wantCode(t, "create a taken ID", s.CreateTenant(ctx, &dup), aviso.ECONFLICT)
		got, err := s.GetTenant(ctx, "acme")
		if err != nil || got.Name != ten.Name {
			t.Errorf("after a conflict the tenant is %+v, %v; want it unchanged", got, err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, err := s.GetTenant(ctx, "nobody")
		wantCode(t, "get", err, aviso.ENOTFOUND)
		wantCode(t, "update", s.UpdateTenant(ctx, &aviso.Tenant{ID: "nobody", Name: "x", UpdatedAt: Base()}), aviso.ENOTFOUND)
		wantCode(t, "delete", s.DeleteTenant(ctx, "nobody"), aviso.ENOTFOUND)
	})
	t.Run("nil metadata", func(t *testing.T) {
		n := &aviso.Tenant{ID: "bare", Name: "Bare", CreatedAt: Base(), UpdatedAt: Base()}
		if err := s.CreateTenant(ctx, n); err != nil {
			t.Fatalf("create: %v", err)
		}
		got, err := s.GetTenant(ctx, "bare")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		checkTenant(t, got, n)
	})
	t.Run("update", func(t *testing.T) {
		later := Base().Add(time.Hour)
		up := &aviso.Tenant{ID: "acme", Name: "ACME Colombia", Metadata: map[string]string{"plan": "enterprise"},
			CreatedAt: later, UpdatedAt: later}
		if err := s.UpdateTenant(ctx, up); err != nil {
			t.Fatalf("update: %v", err)
		}
		got, err := s.GetTenant(ctx, "acme")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		want := *up
		want.CreatedAt = ten.CreatedAt // kept
		checkTenant(t, got, &want)
	})
	t.Run("list", func(t *testing.T) {
		ids := []string{"acme", "bare"}
		for i := range 9 {
			id := fmt.Sprintf("t%02d", 9-i) // created out of order
			ids = append(ids, id)
			if err := s.CreateTenant(ctx, &aviso.Tenant{ID: id, Name: id, CreatedAt: Base(), UpdatedAt: Base()}); err != nil {
				t.Fatalf("create %s: %v", id, err)
			}
		}
		slices.Sort(ids)
		for _, size := range []int{1, 4, 11, 50} {
			t.Run(fmt.Sprintf("limit %d", size), func(t *testing.T) {
				all := walk(t, size, func(after string, limit int) (*aviso.Page[*aviso.Tenant], error) {
					return s.ListTenants(ctx, aviso.ListParams{After: after, Limit: limit})
				})
				var got []string
				for _, x := range all {
					got = append(got, x.ID)
				}
				if !slices.Equal(got, ids) {
					t.Errorf("listed %v, want %v", got, ids)
				}
			})
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := s.DeleteTenant(ctx, "bare"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err := s.GetTenant(ctx, "bare")
		wantCode(t, "get after delete", err, aviso.ENOTFOUND)
		wantCode(t, "delete twice", s.DeleteTenant(ctx, "bare"), aviso.ENOTFOUND)
	})
}

func testAPIKeys(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	root := &aviso.APIKey{ID: aviso.RootKeyID, Hash: strings.Repeat("a", 64), Prefix: "av_root", CreatedAt: Base()}
	scoped := &aviso.APIKey{ID: "key_1", TenantID: ten.ID, Hash: strings.Repeat("b", 64), Prefix: "av_1234", CreatedAt: Base()}
	for _, k := range []*aviso.APIKey{root, scoped} {
		if err := s.SaveAPIKey(ctx, k); err != nil {
			t.Fatalf("save key %s: %v", k.ID, err)
		}
	}
	check := func(t *testing.T, got *aviso.APIKey, err error, want *aviso.APIKey) {
		t.Helper()
		if err != nil {
			t.Fatalf("get key %s: %v", want.ID, err)
		}
		checkUTC(t, "key CreatedAt", got.CreatedAt)
		g, w := *got, *want
		g.CreatedAt, w.CreatedAt = ms(g.CreatedAt), ms(w.CreatedAt)
		if g != w {
			t.Errorf("key:\n got %+v\nwant %+v", g, w)
		}
	}
	for _, k := range []*aviso.APIKey{root, scoped} {
		t.Run("get "+k.ID, func(t *testing.T) {
			got, err := s.GetAPIKey(ctx, k.ID)
			check(t, got, err, k)
			got, err = s.GetAPIKeyByHash(ctx, k.Hash)
			check(t, got, err, k)
		})
	}
	t.Run("replace", func(t *testing.T) {
		rotated := &aviso.APIKey{ID: aviso.RootKeyID, Hash: strings.Repeat("c", 64), Prefix: "av_new", CreatedAt: Base().Add(time.Hour)}
		if err := s.SaveAPIKey(ctx, rotated); err != nil {
			t.Fatalf("replace: %v", err)
		}
		got, err := s.GetAPIKey(ctx, aviso.RootKeyID)
		check(t, got, err, rotated)
		_, err = s.GetAPIKeyByHash(ctx, root.Hash)
		wantCode(t, "old hash", err, aviso.ENOTFOUND)
	})
	t.Run("not found", func(t *testing.T) {
		_, err := s.GetAPIKey(ctx, "key_none")
		wantCode(t, "get", err, aviso.ENOTFOUND)
		_, err = s.GetAPIKeyByHash(ctx, strings.Repeat("f", 64))
		wantCode(t, "get by hash", err, aviso.ENOTFOUND)
		err = s.SaveAPIKey(ctx, &aviso.APIKey{ID: "key_2", TenantID: "nobody", Hash: strings.Repeat("d", 64), CreatedAt: Base()})
		wantCode(t, "save for an unknown tenant", err, aviso.ENOTFOUND)
	})
}

func testEventTypes(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	full := &aviso.EventType{
		Name:         "invoice.created",
		Description:  "An invoice was issued",
		Descriptions: map[string]string{"es": "Se emitió una factura", "en": "An invoice was issued"},
		Schema:       json.RawMessage(`{"type":"object","required":["number"],"properties":{"number":{"type":"string"}}}`),
		Example:      json.RawMessage(`{"number":"FV-1"}`),
		CreatedAt:    Base(),
		UpdatedAt:    Base(),
	}
	bare := &aviso.EventType{Name: "payment.received", CreatedAt: Base(), UpdatedAt: Base()}
	for _, et := range []*aviso.EventType{full, bare} {
		if err := s.CreateEventType(ctx, et); err != nil {
			t.Fatalf("create %s: %v", et.Name, err)
		}
		got, err := s.GetEventType(ctx, et.Name)
		if err != nil {
			t.Fatalf("get %s: %v", et.Name, err)
		}
		checkEventType(t, got, et)
	}
	wantCode(t, "create a taken name", s.CreateEventType(ctx, &aviso.EventType{Name: full.Name, CreatedAt: Base(), UpdatedAt: Base()}), aviso.ECONFLICT)
	_, err := s.GetEventType(ctx, "nothing.here")
	wantCode(t, "get", err, aviso.ENOTFOUND)
	wantCode(t, "update", s.UpdateEventType(ctx, &aviso.EventType{Name: "nothing.here", UpdatedAt: Base()}), aviso.ENOTFOUND)
	wantCode(t, "delete", s.DeleteEventType(ctx, "nothing.here"), aviso.ENOTFOUND)

	t.Run("update", func(t *testing.T) {
		later := Base().Add(time.Minute)
		up := &aviso.EventType{Name: full.Name, Description: "Issued", Descriptions: map[string]string{"es": "Emitida"},
			Schema: json.RawMessage(`{"type":"object"}`), CreatedAt: later, UpdatedAt: later}
		if err := s.UpdateEventType(ctx, up); err != nil {
			t.Fatalf("update: %v", err)
		}
		got, err := s.GetEventType(ctx, full.Name)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		want := *up
		want.CreatedAt = full.CreatedAt
		checkEventType(t, got, &want)
	})
	t.Run("list", func(t *testing.T) {
		names := []string{full.Name, bare.Name}
		for _, n := range []string{"credit_note.created", "invoice.voided", "a.first", "z.last", "invoice.paid"} {
			names = append(names, n)
			if err := s.CreateEventType(ctx, &aviso.EventType{Name: n, CreatedAt: Base(), UpdatedAt: Base()}); err != nil {
				t.Fatalf("create %s: %v", n, err)
			}
		}
		slices.Sort(names)
		all := walk(t, 3, func(after string, limit int) (*aviso.Page[*aviso.EventType], error) {
			return s.ListEventTypes(ctx, aviso.ListParams{After: after, Limit: limit})
		})
		var got []string
		for _, et := range all {
			got = append(got, et.Name)
		}
		if !slices.Equal(got, names) {
			t.Errorf("listed %v, want %v", got, names)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := s.DeleteEventType(ctx, bare.Name); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err := s.GetEventType(ctx, bare.Name)
		wantCode(t, "get after delete", err, aviso.ENOTFOUND)
	})
}

// fullEndpoint returns an endpoint with every field set.
func fullEndpoint(tenantID, id string) *aviso.Endpoint {
	verified := Base().Add(2 * time.Second)
	expires := Base().Add(24 * time.Hour)
	return &aviso.Endpoint{
		ID:             id,
		TenantID:       tenantID,
		URL:            "https://erp.example.co/webhooks/aviso?x=1",
		Description:    "ERP — facturación",
		EventTypes:     []string{"invoice.created", "invoice.voided"},
		Format:         aviso.FormatTusFacturas,
		Headers:        map[string]string{"X-Api-Key": "k1", "X-Env": "prod"},
		TimeoutSeconds: 15,
		RetrySchedule:  []aviso.Duration{aviso.Duration(5 * time.Second), aviso.Duration(90 * time.Minute)},
		Metadata:       map[string]string{"owner": "ops"},
		Secrets:        []aviso.Secret{{Value: "whsec_new"}, {Value: "whsec_old", ExpiresAt: &expires}},
		Token:          "tf-token-123",
		VerifiedAt:     &verified,
		CreatedAt:      Base(),
		UpdatedAt:      Base(),
		// Secret values reach the store sealed; to the store they are strings like any other.
		Signing: aviso.SigningEd25519,
		Auth: &aviso.Auth{Type: aviso.AuthOAuth2, TokenURL: "https://auth.example.co/token", ClientID: "aviso",
			ClientSecret: "enc:v1:opaque", Scope: "webhooks", Audience: "erp", CAPEM: "-----BEGIN CERTIFICATE-----"},
		SecretHeaders:   map[string]string{"X-Signature-Key": "enc:v1:sealed"},
		SendTraceparent: true,
	}
}

func testEndpoints(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	full := fullEndpoint(ten.ID, "ep_full")
	bare := &aviso.Endpoint{ID: "ep_bare", TenantID: ten.ID, URL: "https://example.com", Format: aviso.FormatStandard,
		TimeoutSeconds: 10, CreatedAt: Base(), UpdatedAt: Base()}
	for _, e := range []*aviso.Endpoint{full, bare} {
		if err := s.CreateEndpoint(ctx, e); err != nil {
			t.Fatalf("create %s: %v", e.ID, err)
		}
		checkEndpoint(t, mustGetEndpoint(t, s, ten.ID, e.ID), e)
	}
	t.Run("errors", func(t *testing.T) {
		wantCode(t, "create a taken ID", s.CreateEndpoint(ctx, fullEndpoint(ten.ID, full.ID)), aviso.ECONFLICT)
		wantCode(t, "create for an unknown tenant", s.CreateEndpoint(ctx, fullEndpoint("nobody", "ep_x")), aviso.ENOTFOUND)
		_, err := s.GetEndpoint(ctx, ten.ID, "ep_none")
		wantCode(t, "get", err, aviso.ENOTFOUND)
		wantCode(t, "update", s.UpdateEndpoint(ctx, fullEndpoint(ten.ID, "ep_none")), aviso.ENOTFOUND)
		wantCode(t, "delete", s.DeleteEndpoint(ctx, ten.ID, "ep_none"), aviso.ENOTFOUND)
		_, err = s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: "ep_none", Disabled: true, Reason: aviso.DisabledByUser, Now: Base()})
		wantCode(t, "disable", err, aviso.ENOTFOUND)
	})
	t.Run("update", func(t *testing.T) {
		// Disable first: UpdateEndpoint must not touch Disabled, DisabledReason, ConsecutiveFailures.
		if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: bare.ID,
			Disabled: true, Reason: aviso.DisabledByUser, Now: Base()}); err != nil {
			t.Fatalf("disable: %v", err)
		}
		later := Base().Add(time.Hour)
		up := fullEndpoint(ten.ID, bare.ID)
		up.URL = "https://new.example.com/h"
		up.Format = aviso.FormatAlegra
		up.EventTypes = []string{"payment.received"}
		up.VerifiedAt = nil
		up.CreatedAt, up.UpdatedAt = later, later
		up.Disabled, up.DisabledReason, up.ConsecutiveFailures = false, "", 7
		if err := s.UpdateEndpoint(ctx, up); err != nil {
			t.Fatalf("update: %v", err)
		}
		want := *up
		want.CreatedAt = bare.CreatedAt
		want.Disabled, want.DisabledReason, want.ConsecutiveFailures = true, aviso.DisabledByUser, 0
		checkEndpoint(t, mustGetEndpoint(t, s, ten.ID, bare.ID), &want)
	})
	t.Run("list", func(t *testing.T) {
		ids := []string{full.ID, bare.ID}
		enabled := []string{full.ID}
		for i := range 7 {
			e := fullEndpoint(ten.ID, fmt.Sprintf("ep_%02d", 7-i))
			if err := s.CreateEndpoint(ctx, e); err != nil {
				t.Fatalf("create: %v", err)
			}
			ids = append(ids, e.ID)
			if i%3 == 0 {
				if _, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: e.ID,
					Disabled: true, Reason: aviso.DisabledByUser, Now: Base()}); err != nil {
					t.Fatalf("disable: %v", err)
				}
			} else {
				enabled = append(enabled, e.ID)
			}
		}
		// Another tenant's endpoints are never listed.
		NewEndpoint(t, s, NewTenant(t, s).ID)
		slices.Sort(ids)
		slices.Sort(enabled)
		for _, tc := range []struct {
			name    string
			enabled bool
			want    []string
		}{{"all", false, ids}, {"enabled", true, enabled}} {
			t.Run(tc.name, func(t *testing.T) {
				all := walk(t, 2, func(after string, limit int) (*aviso.Page[*aviso.Endpoint], error) {
					return s.ListEndpoints(ctx, aviso.ListEndpointsParams{ListParams: aviso.ListParams{After: after, Limit: limit},
						TenantID: ten.ID, Enabled: tc.enabled})
				})
				var got []string
				for _, e := range all {
					got = append(got, e.ID)
					if e.ID == full.ID {
						checkEndpoint(t, e, full) // lists return whole endpoints
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("listed %v, want %v", got, tc.want)
				}
			})
		}
	})
}

func testEndpointScoping(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	a, b := NewTenant(t, s), NewTenant(t, s)
	epB := NewEndpoint(t, s, b.ID)
	_, dsB := Publish(t, s, b.ID, Base(), epB)
	evB, _ := s.GetEvent(ctx, b.ID, dsB[0].EventID)
	if evB == nil {
		t.Fatalf("tenant B's event is missing")
	}
	_, err := s.GetEndpoint(ctx, a.ID, epB.ID)
	wantCode(t, "get B's endpoint via A", err, aviso.ENOTFOUND)
	up := fullEndpoint(a.ID, epB.ID)
	wantCode(t, "update B's endpoint via A", s.UpdateEndpoint(ctx, up), aviso.ENOTFOUND)
	_, err = s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: a.ID, ID: epB.ID, Disabled: true, Reason: aviso.DisabledByUser, Now: Base()})
	wantCode(t, "disable B's endpoint via A", err, aviso.ENOTFOUND)
	wantCode(t, "delete B's endpoint via A", s.DeleteEndpoint(ctx, a.ID, epB.ID), aviso.ENOTFOUND)
	_, err = s.GetEvent(ctx, a.ID, evB.ID)
	wantCode(t, "get B's event via A", err, aviso.ENOTFOUND)
	_, err = s.GetDelivery(ctx, a.ID, dsB[0].ID)
	wantCode(t, "get B's delivery via A", err, aviso.ENOTFOUND)
	_, err = s.RetryDelivery(ctx, a.ID, dsB[0].ID, Base())
	wantCode(t, "retry B's delivery via A", err, aviso.ENOTFOUND)
	_, err = s.ReplayDeliveries(ctx, aviso.ReplayParams{TenantID: a.ID, EndpointID: epB.ID, Now: Base()})
	wantCode(t, "replay B's endpoint via A", err, aviso.ENOTFOUND)

	// B's endpoint is untouched by all that.
	got := mustGetEndpoint(t, s, b.ID, epB.ID)
	checkEndpoint(t, got, epB)
	if p, err := s.ListEvents(ctx, aviso.ListEventsParams{TenantID: a.ID}); err != nil || len(p.Data) != 0 {
		t.Errorf("A's events: %v, %v; want none", p, err)
	}
	if p, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: a.ID}); err != nil || len(p.Data) != 0 {
		t.Errorf("A's deliveries: %v, %v; want none", p, err)
	}
	if p, err := s.ListEndpoints(ctx, aviso.ListEndpointsParams{TenantID: a.ID}); err != nil || len(p.Data) != 0 {
		t.Errorf("A's endpoints: %v, %v; want none", p, err)
	}
}

func testSetEndpointDisabled(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep, other := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	_, d1 := Publish(t, s, ten.ID, Base(), ep, other)
	_, d2 := Publish(t, s, ten.ID, Base().Add(time.Second), ep)
	// d1[0] succeeds first, so it must stay succeeded.
	Claim(t, s, "node-a", Base().Add(time.Second), 10)
	Complete(t, s, Completion(d1[0], "node-a", Base().Add(2*time.Second), 200, false),
		Completion(d2[0], "node-a", Base().Add(2*time.Second), 500, false),
		Completion(d1[1], "node-a", Base().Add(2*time.Second), 500, false))
	if got := mustGetEndpoint(t, s, ten.ID, ep.ID).ConsecutiveFailures; got != 1 {
		t.Fatalf("ConsecutiveFailures %d, want 1", got)
	}

	now := Base().Add(time.Hour)
	got, err := s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID, Disabled: true, Reason: aviso.DisabledByUser, Now: now})
	if err != nil {
		t.Fatalf("disable: %v", err)
	}
	if !got.Disabled || got.DisabledReason != aviso.DisabledByUser || got.ID != ep.ID {
		t.Errorf("disable returned %+v, want the endpoint disabled with reason %q", got, aviso.DisabledByUser)
	}
	checkEndpoint(t, mustGetEndpoint(t, s, ten.ID, ep.ID), got)

	if d := mustGetDelivery(t, s, ten.ID, d2[0].ID); d.Status != aviso.StatusFailed || d.LastError != "endpoint disabled" || d.NextAttemptAt != nil {
		t.Errorf("pending delivery after disabling: status %q, LastError %q, NextAttemptAt %v; want failed, %q, nil",
			d.Status, d.LastError, d.NextAttemptAt, "endpoint disabled")
	}
	if d := mustGetDelivery(t, s, ten.ID, d1[0].ID); d.Status != aviso.StatusSucceeded {
		t.Errorf("succeeded delivery after disabling: status %q, want succeeded", d.Status)
	}
	if d := mustGetDelivery(t, s, ten.ID, d1[1].ID); d.Status != aviso.StatusPending {
		t.Errorf("another endpoint's delivery after disabling: status %q, want pending", d.Status)
	}
	if cs := Claim(t, s, "node-b", now.Add(time.Hour), 10); len(cs) != 1 || cs[0].Delivery.ID != d1[1].ID {
		t.Errorf("claim after disabling: %d claims, want only the other endpoint's delivery", len(cs))
	}

	got, err = s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID, Disabled: false, Now: now})
	if err != nil {
		t.Fatalf("enable: %v", err)
	}
	if got.Disabled || got.DisabledReason != "" || got.ConsecutiveFailures != 0 {
		t.Errorf("enable returned Disabled %v, reason %q, ConsecutiveFailures %d; want false, \"\", 0",
			got.Disabled, got.DisabledReason, got.ConsecutiveFailures)
	}
	checkEndpoint(t, mustGetEndpoint(t, s, ten.ID, ep.ID), got)
	if d := mustGetDelivery(t, s, ten.ID, d2[0].ID); d.Status != aviso.StatusFailed {
		t.Errorf("enabling queued a delivery again (status %q): only a replay does", d.Status)
	}
}
