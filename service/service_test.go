package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/catalog"
	"github.com/aviso-dev/aviso/service"
)

func newService(tb testing.TB, now func() time.Time) (*service.Service, aviso.Store) {
	tb.Helper()
	store := openStore(tb)
	svc, err := service.New(service.Config{Store: store, Now: now, AllowPrivateNetworks: true})
	if err != nil {
		tb.Fatal(err)
	}
	return svc, store
}

func TestNewRequiresStore(t *testing.T) {
	if _, err := service.New(service.Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t, nil)
	root := aviso.Principal{KeyID: aviso.RootKeyID}

	gen, err := svc.EnsureRootKey(ctx, "")
	if err != nil || !strings.HasPrefix(gen, service.KeyPrefix) {
		t.Fatalf("generated root key %q, %v", gen, err)
	}
	again, err := svc.EnsureRootKey(ctx, "")
	if err != nil || again != "" {
		t.Fatalf("second EnsureRootKey generated %q, %v; the existing key must be kept", again, err)
	}
	if p, err := svc.Authenticate(ctx, gen); err != nil || !p.IsRoot() {
		t.Fatalf("generated key: %+v, %v", p, err)
	}
	if _, err := svc.EnsureRootKey(ctx, "configured-root-key"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, gen); aviso.ErrorCode(err) != aviso.EUNAUTHORIZED {
		t.Fatalf("the replaced root key still works: %v", err)
	}
	if p, err := svc.Authenticate(ctx, "configured-root-key"); err != nil || !p.IsRoot() {
		t.Fatalf("configured key: %+v, %v", p, err)
	}

	if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: "globex", Name: "Globex"}); err != nil {
		t.Fatal(err)
	}
	key, k, err := svc.CreateTenantKey(ctx, root, "acme")
	if err != nil || k.Hash != service.HashKey(key) || !strings.HasPrefix(key, k.Prefix) {
		t.Fatalf("tenant key %q %+v: %v", key, k, err)
	}
	p, err := svc.Authenticate(ctx, key)
	if err != nil || p.TenantID != "acme" || p.IsRoot() {
		t.Fatalf("tenant key principal %+v, %v", p, err)
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"own tenant key", func() error { _, _, err := svc.CreateTenantKey(ctx, p, "acme"); return err }, ""},
		{"other tenant's key", func() error { _, _, err := svc.CreateTenantKey(ctx, p, "globex"); return err }, aviso.ENOTFOUND},
		{"empty key", func() error { _, err := svc.Authenticate(ctx, ""); return err }, aviso.EUNAUTHORIZED},
		{"tenant CRUD", func() error { _, err := svc.CreateTenant(ctx, p, service.TenantInput{Name: "x"}); return err }, aviso.EFORBIDDEN},
		{"catalog write", func() error { return svc.DeleteEventType(ctx, p, "x.y") }, aviso.EFORBIDDEN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := aviso.ErrorCode(tc.call()); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}
}

func TestSeedCatalogKeepsEdits(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t, nil)
	root := aviso.Principal{KeyID: aviso.RootKeyID}
	types := catalog.EventTypes()
	if len(types) < 2 {
		t.Fatalf("catalog has %d types", len(types))
	}
	if err := svc.SeedCatalog(ctx, types[:1]); err != nil {
		t.Fatal(err)
	}
	edited := "edited by the operator"
	if _, err := svc.UpdateEventType(ctx, root, types[0].Name, service.EventTypePatch{Description: &edited}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SeedCatalog(ctx, types); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetEventType(ctx, root, types[0].Name)
	if err != nil || got.Description != edited {
		t.Fatalf("seeding overwrote an edit: %+v, %v", got, err)
	}
	page, err := svc.ListEventTypes(ctx, root, aviso.ListParams{Limit: aviso.MaxLimit})
	if err != nil || len(page.Data) != len(types) {
		t.Fatalf("catalog holds %d types, want %d (%v)", len(page.Data), len(types), err)
	}
}

// newCatalogTenant returns a service with the seeded catalog and a tenant "acme", and the root
// principal.
func newCatalogTenant(t *testing.T) (*service.Service, aviso.Principal) {
	t.Helper()
	svc, _ := newService(t, nil)
	root := aviso.Principal{KeyID: aviso.RootKeyID}
	if err := svc.SeedCatalog(t.Context(), catalog.EventTypes()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTenant(t.Context(), root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	return svc, root
}

// TestPublishValidatesSeededSchemas publishes every catalog example: the examples must satisfy
// their own schemas, and a type's schema must reject a non-object.
func TestPublishValidatesSeededSchemas(t *testing.T) {
	ctx := context.Background()
	svc, root := newCatalogTenant(t)
	for _, et := range catalog.EventTypes() {
		t.Run(et.Name, func(t *testing.T) {
			res, err := svc.Publish(ctx, root, "acme", []service.PublishInput{{Type: et.Name, Data: et.Example}})
			if err != nil || len(res) != 1 || !res[0].Created {
				t.Fatalf("publishing the catalog example: %+v, %v", res, err)
			}
			if len(et.Schema) == 0 {
				return
			}
			_, err = svc.Publish(ctx, root, "acme", []service.PublishInput{{Type: et.Name, Data: json.RawMessage(`[]`)}})
			if aviso.ErrorCode(err) != aviso.EINVALID || !strings.HasPrefix(aviso.ErrorField(err), "/data") {
				t.Fatalf("an array passed the schema: %v", err)
			}
		})
	}
}

// TestPublishStoresDataCompacted publishes data laid out with whitespace: it is stored (and so
// delivered) without the whitespace between tokens, strings untouched.
func TestPublishStoresDataCompacted(t *testing.T) {
	ctx := context.Background()
	svc, root := newCatalogTenant(t)
	var ex map[string]any
	if err := json.Unmarshal(catalog.EventTypes()[0].Example, &ex); err != nil {
		t.Fatal(err)
	}
	ex["nota"] = "dos  espacios <b>"
	encode := func(indent string) []byte {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", indent)
		if err := enc.Encode(ex); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	spaced, compact := encode("  "), bytes.TrimSuffix(encode(""), []byte("\n"))
	res, err := svc.Publish(ctx, root, "acme", []service.PublishInput{{Type: catalog.EventTypes()[0].Name, Data: spaced}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := svc.GetEvent(ctx, root, "acme", res[0].Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Data) != string(compact) {
		t.Fatalf("stored data %s, want %s", ev.Data, compact)
	}
}

func TestRotateSecretDropsExpired(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	svc, _ := newService(t, clock)
	root := aviso.Principal{KeyID: aviso.RootKeyID}
	if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	no := false
	ep, err := svc.CreateEndpoint(ctx, root, "acme", service.EndpointInput{URL: "http://127.0.0.1:1/hook", Verify: &no})
	if err != nil {
		t.Fatal(err)
	}
	first := ep.Secrets[0].Value
	info, err := svc.RotateSecret(ctx, root, "acme", ep.ID)
	if err != nil || len(info.Secrets) != 2 || info.Secrets[1].Value != first ||
		!info.Secrets[1].ExpiresAt.Equal(now.Add(service.DefaultSecretOverlap)) {
		t.Fatalf("first rotation %+v, %v", info, err)
	}
	now = now.Add(service.DefaultSecretOverlap + time.Second)
	info, err = svc.RotateSecret(ctx, root, "acme", ep.ID)
	if err != nil || len(info.Secrets) != 2 {
		t.Fatalf("second rotation %+v, %v", info, err)
	}
	for _, s := range info.Secrets {
		if s.Value == first {
			t.Fatal("an expired secret survived the rotation")
		}
	}
}

func TestCreateEndpointSSRF(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	svc, err := service.New(service.Config{Store: store}) // private networks refused (the default)
	if err != nil {
		t.Fatal(err)
	}
	root := aviso.Principal{KeyID: aviso.RootKeyID}
	if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	no := false
	for _, u := range []string{"http://127.0.0.1:1/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/"} {
		t.Run(u, func(t *testing.T) {
			_, err := svc.CreateEndpoint(ctx, root, "acme", service.EndpointInput{URL: u, Verify: &no})
			if aviso.ErrorCode(err) != aviso.EINVALID || aviso.ErrorField(err) != "url" {
				t.Fatalf("CreateEndpoint(%s) = %v, want EINVALID on url", u, err)
			}
		})
	}
	page, err := svc.ListEndpoints(ctx, root, "acme", aviso.ListParams{})
	if err != nil || len(page.Data) != 0 {
		t.Fatalf("refused endpoints were stored: %+v, %v", page, err)
	}
}
