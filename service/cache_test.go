package service_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// clock is a settable clock for Config.Now: time moves only when a test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cacheFixture is a tenant "acme" with a tenant key, the event types "a.created" and
// "b.created", and two services ("nodes") on one store sharing a clock that stands still unless
// moved, so a cached read never expires by itself.
type cacheFixture struct {
	ctx   context.Context
	clock *clock
	store aviso.Store
	svc   *service.Service // the node under test
	other *service.Service // another node sharing the store
	root  aviso.Principal
	key   string // acme's tenant key
}

func newCacheFixture(tb testing.TB, ttl time.Duration) *cacheFixture {
	tb.Helper()
	f := &cacheFixture{ctx: context.Background(), clock: newClock(), store: openStore(tb),
		root: aviso.Principal{KeyID: aviso.RootKeyID}}
	var err error
	for _, svc := range []**service.Service{&f.svc, &f.other} {
		*svc, err = service.New(service.Config{Store: f.store, Now: f.clock.Now, AllowPrivateNetworks: true, CacheTTL: ttl})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := f.svc.CreateTenant(f.ctx, f.root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
		tb.Fatal(err)
	}
	for _, name := range []string{"a.created", "b.created"} {
		if _, err := f.svc.CreateEventType(f.ctx, f.root, &aviso.EventType{Name: name, Description: name}); err != nil {
			tb.Fatal(err)
		}
	}
	if f.key, _, err = f.svc.CreateTenantKey(f.ctx, f.root, "acme"); err != nil {
		tb.Fatal(err)
	}
	return f
}

// endpoint creates an endpoint of acme through svc, subscribed to types.
func (f *cacheFixture) endpoint(tb testing.TB, svc *service.Service, types ...string) *aviso.Endpoint {
	tb.Helper()
	no := false
	ep, err := svc.CreateEndpoint(f.ctx, f.root, "acme", service.EndpointInput{URL: "http://127.0.0.1:1/hook",
		EventTypes: types, Verify: &no})
	if err != nil {
		tb.Fatal(err)
	}
	return ep
}

// publish publishes one event of type typ to acme through svc and returns the endpoints it was
// queued for; any error fails the test.
func (f *cacheFixture) publish(tb testing.TB, svc *service.Service, typ string) []string {
	tb.Helper()
	ids, err := f.tryPublish(tb, svc, typ, json.RawMessage(`{"total":1}`))
	if err != nil {
		tb.Fatalf("publish %s: %v", typ, err)
	}
	return ids
}

func (f *cacheFixture) tryPublish(tb testing.TB, svc *service.Service, typ string, data json.RawMessage) ([]string, error) {
	tb.Helper()
	res, err := svc.Publish(f.ctx, f.root, "acme", []service.PublishInput{{Type: typ, Data: data}})
	if err != nil {
		return nil, err
	}
	page, err := f.store.ListDeliveries(f.ctx, aviso.ListDeliveriesParams{TenantID: "acme", EventID: res[0].Event.ID})
	if err != nil {
		tb.Fatalf("list deliveries: %v", err)
	}
	ids := []string{}
	for _, d := range page.Data {
		ids = append(ids, d.EndpointID)
	}
	return ids, nil
}

// wantEndpoints fails unless got holds the endpoints want, in any order.
func wantEndpoints(tb testing.TB, what string, got []string, want ...string) {
	tb.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		tb.Fatalf("%s: deliveries to %v, want %v", what, got, want)
	}
}

// TestCacheOwnWritesSeenAtOnce: with a clock that never moves, a cached read never expires, so
// only invalidation can make a publish or authentication right after a write through the same
// service see it.
func TestCacheOwnWritesSeenAtOnce(t *testing.T) {
	tests := []struct {
		name string
		// change runs after the caches were filled and returns a check of the next publish.
		change func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T)
	}{
		{"create endpoint", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			ep2 := f.endpoint(t, f.svc, "a.created")
			return func(t *testing.T) {
				wantEndpoints(t, "after creating an endpoint", f.publish(t, f.svc, "a.created"), ep.ID, ep2.ID)
			}
		}},
		{"update endpoint types", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			types := []string{"b.created"}
			if _, err := f.svc.UpdateEndpoint(f.ctx, f.root, "acme", ep.ID, service.EndpointPatch{EventTypes: &types}); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				wantEndpoints(t, "after unsubscribing", f.publish(t, f.svc, "a.created"))
				wantEndpoints(t, "after subscribing", f.publish(t, f.svc, "b.created"), ep.ID)
			}
		}},
		{"disable endpoint", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			yes := true
			if _, err := f.svc.UpdateEndpoint(f.ctx, f.root, "acme", ep.ID, service.EndpointPatch{Disabled: &yes}); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				wantEndpoints(t, "after disabling", f.publish(t, f.svc, "a.created"))
			}
		}},
		{"rotate secret", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			if _, err := f.svc.RotateSecret(f.ctx, f.root, "acme", ep.ID); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				wantEndpoints(t, "after rotating", f.publish(t, f.svc, "a.created"), ep.ID)
			}
		}},
		{"delete endpoint", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			if err := f.svc.DeleteEndpoint(f.ctx, f.root, "acme", ep.ID); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				wantEndpoints(t, "after deleting", f.publish(t, f.svc, "a.created"))
			}
		}},
		{"create event type", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			if _, err := f.svc.CreateEventType(f.ctx, f.root, &aviso.EventType{Name: "c.created", Description: "c"}); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) { f.publish(t, f.svc, "c.created") }
		}},
		{"update event type schema", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			schema := json.RawMessage(`{"type":"object","required":["total"]}`)
			if _, err := f.svc.UpdateEventType(f.ctx, f.root, "a.created", service.EventTypePatch{Schema: schema}); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				_, err := f.tryPublish(t, f.svc, "a.created", json.RawMessage(`{"id":1}`))
				if aviso.ErrorCode(err) != aviso.EINVALID {
					t.Fatalf("data without total after the schema was tightened: %v, want EINVALID", err)
				}
			}
		}},
		{"delete event type", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			if err := f.svc.DeleteEventType(f.ctx, f.root, "a.created"); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				_, err := f.tryPublish(t, f.svc, "a.created", json.RawMessage(`{"total":1}`))
				if aviso.ErrorCode(err) != aviso.EINVALID || aviso.ErrorField(err) != "type" {
					t.Fatalf("publish of a deleted type: %v, want EINVALID on type", err)
				}
			}
		}},
		{"delete tenant", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			if err := f.svc.DeleteTenant(f.ctx, f.root, "acme"); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if _, err := f.svc.Authenticate(f.ctx, f.key); aviso.ErrorCode(err) != aviso.EUNAUTHORIZED {
					t.Fatalf("the deleted tenant's key: %v, want EUNAUTHORIZED", err)
				}
				_, err := f.tryPublish(t, f.svc, "a.created", json.RawMessage(`{"total":1}`))
				if aviso.ErrorCode(err) != aviso.ENOTFOUND {
					t.Fatalf("publish to the deleted tenant: %v, want ENOTFOUND", err)
				}
			}
		}},
		{"replace root key", func(t *testing.T, f *cacheFixture, ep *aviso.Endpoint) func(t *testing.T) {
			if _, err := f.svc.EnsureRootKey(f.ctx, "second-root-key"); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if _, err := f.svc.Authenticate(f.ctx, "first-root-key"); aviso.ErrorCode(err) != aviso.EUNAUTHORIZED {
					t.Fatalf("the replaced root key: %v, want EUNAUTHORIZED", err)
				}
				if p, err := f.svc.Authenticate(f.ctx, "second-root-key"); err != nil || !p.IsRoot() {
					t.Fatalf("the new root key: %+v, %v", p, err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, time.Hour)
			if _, err := f.svc.EnsureRootKey(f.ctx, "first-root-key"); err != nil {
				t.Fatal(err)
			}
			ep := f.endpoint(t, f.svc, "a.created")
			// Fill every cache.
			for _, k := range []string{"first-root-key", f.key} {
				if _, err := f.svc.Authenticate(f.ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			wantEndpoints(t, "before the change", f.publish(t, f.svc, "a.created"), ep.ID)
			wantEndpoints(t, "before the change", f.publish(t, f.svc, "b.created"))
			check := tc.change(t, f, ep)
			check(t)
		})
	}
}

// TestCacheOtherNodeStaleness: a change made through another service sharing the store is seen
// once CacheTTL has passed since the read was cached — not before, which shows the cache is in
// use, and not later, which is the documented bound.
func TestCacheOtherNodeStaleness(t *testing.T) {
	const ttl = time.Second
	tests := []struct {
		name   string
		change func(t *testing.T, f *cacheFixture)
		// seen reports whether the node under test sees the change.
		seen func(t *testing.T, f *cacheFixture) bool
	}{
		{"new endpoint", func(t *testing.T, f *cacheFixture) { f.endpoint(t, f.other, "a.created") },
			func(t *testing.T, f *cacheFixture) bool { return len(f.publish(t, f.svc, "a.created")) == 1 }},
		{"deleted event type", func(t *testing.T, f *cacheFixture) {
			if err := f.other.DeleteEventType(f.ctx, f.root, "a.created"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, f *cacheFixture) bool {
			_, err := f.tryPublish(t, f.svc, "a.created", json.RawMessage(`{"total":1}`))
			return aviso.ErrorCode(err) == aviso.EINVALID
		}},
		{"deleted tenant's key", func(t *testing.T, f *cacheFixture) {
			if err := f.other.DeleteTenant(f.ctx, f.root, "acme"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, f *cacheFixture) bool {
			_, err := f.svc.Authenticate(f.ctx, f.key)
			return aviso.ErrorCode(err) == aviso.EUNAUTHORIZED
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, ttl)
			if _, err := f.svc.Authenticate(f.ctx, f.key); err != nil {
				t.Fatal(err)
			}
			wantEndpoints(t, "before the change", f.publish(t, f.svc, "a.created"))
			tc.change(t, f)
			f.clock.Add(ttl - time.Millisecond)
			if tc.seen(t, f) {
				t.Fatalf("seen %v after the read was cached: the cache was not used", ttl-time.Millisecond)
			}
			f.clock.Add(time.Millisecond)
			if !tc.seen(t, f) {
				t.Fatalf("not seen %v after the read was cached", ttl)
			}
		})
	}
}

// TestCacheDisabled: with a negative CacheTTL every request reads the store.
func TestCacheDisabled(t *testing.T) {
	f := newCacheFixture(t, -1)
	wantEndpoints(t, "no endpoint yet", f.publish(t, f.svc, "a.created"))
	ep := f.endpoint(t, f.other, "a.created")
	wantEndpoints(t, "the other node's endpoint", f.publish(t, f.svc, "a.created"), ep.ID)
}

// TestPublishToTenantDeletedElsewhere: a tenant another node deleted is refused with ENOTFOUND
// by the store even while this node still holds it in its cache.
func TestPublishToTenantDeletedElsewhere(t *testing.T) {
	f := newCacheFixture(t, time.Hour)
	f.publish(t, f.svc, "a.created")
	if err := f.other.DeleteTenant(f.ctx, f.root, "acme"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second answer comes from the store again: the first forgot the tenant
		if _, err := f.tryPublish(t, f.svc, "a.created", json.RawMessage(`{"total":1}`)); aviso.ErrorCode(err) != aviso.ENOTFOUND {
			t.Fatalf("publish to a tenant deleted elsewhere: %v, want ENOTFOUND", err)
		}
	}
}
