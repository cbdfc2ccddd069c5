package service_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// BenchmarkPublish publishes one event at a time to a tenant with one subscribed endpoint on a
// real SQLite file, with the read cache (the default) and without it (every publish reads the
// tenant, the event type and the endpoints from the store). Each iteration is one commit.
func BenchmarkPublish(b *testing.B) {
	data := json.RawMessage(`{"invoice":{"id":"FE-000123","total":"1190000.00","currency":"COP"}}`)
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{
		{"cached", 0},
		{"uncached", -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			store := openStore(b)
			svc, err := service.New(service.Config{Store: store, AllowPrivateNetworks: true, CacheTTL: bc.ttl})
			if err != nil {
				b.Fatal(err)
			}
			root := aviso.Principal{KeyID: aviso.RootKeyID}
			if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
				b.Fatal(err)
			}
			if _, err := svc.CreateEventType(ctx, root, &aviso.EventType{Name: "invoice.created", Description: "x"}); err != nil {
				b.Fatal(err)
			}
			no := false
			if _, err := svc.CreateEndpoint(ctx, root, "acme", service.EndpointInput{URL: "http://127.0.0.1:1/hook",
				EventTypes: []string{"invoice.created"}, Verify: &no}); err != nil {
				b.Fatal(err)
			}
			key, _, err := svc.CreateTenantKey(ctx, root, "acme")
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				p, err := svc.Authenticate(ctx, key)
				if err != nil {
					b.Fatal(err)
				}
				i++
				res, err := svc.Publish(ctx, p, "acme", []service.PublishInput{{ID: "evt-" + strconv.Itoa(i),
					Type: "invoice.created", Data: data}})
				if err != nil || !res[0].Created {
					b.Fatalf("publish: %+v, %v", res, err)
				}
			}
		})
	}
}
