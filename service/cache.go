package service

import (
	"context"
	"sync"
	"time"
)

// Read caching. Publishing reads the same few rows on every request: the API key, the tenant,
// the event type and the tenant's enabled endpoints. The service keeps what it read for a short
// time (Config.CacheTTL, one second by default) so that a busy publisher does not pay four store
// reads per request.
//
// Freshness: every write this service makes to those rows invalidates the cached copy after the
// store has committed it, and a read that was under way while an invalidation happened is not
// kept, so a change made through this node is seen by the next request that starts after it
// returned. Only changes made by another node sharing the store (PostgreSQL), or by the delivery
// engine disabling a failing endpoint, may take up to CacheTTL to be seen.
//
// Only what was found is kept: a missing key, tenant or event type is read again every time, so
// creating one needs no invalidation. Cached values are shared between requests: whoever gets
// one must not modify it.

// readCache keeps values read from the store for ttl, up to size of them.
type readCache[K comparable, V any] struct {
	ttl  time.Duration // ≤ 0: nothing is kept
	size int           // when full, everything is dropped (the cache refills in a few requests)
	now  func() time.Time

	mu  sync.Mutex
	gen uint64 // incremented by every invalidation
	m   map[K]cached[V]
}

type cached[V any] struct {
	v       V
	expires time.Time
}

func newReadCache[K comparable, V any](ttl time.Duration, size int, now func() time.Time) *readCache[K, V] {
	return &readCache[K, V]{ttl: ttl, size: size, now: now, m: make(map[K]cached[V])}
}

// get returns the value kept for k, loading it with load when there is none or it expired.
// Errors are not kept.
func (c *readCache[K, V]) get(ctx context.Context, k K, load func(ctx context.Context) (V, error)) (V, error) {
	if c.ttl <= 0 {
		return load(ctx)
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[k]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.v, nil
	}
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		// An invalidation happened while loading: what was read may predate it.
		return v, nil
	}
	if len(c.m) >= c.size {
		clear(c.m)
	}
	c.m[k] = cached[V]{v: v, expires: now.Add(c.ttl)}
	return v, nil
}

// forget drops k; call it after a write to what k names has been committed (or has failed).
func (c *readCache[K, V]) forget(k K) {
	c.mu.Lock()
	c.gen++
	delete(c.m, k)
	c.mu.Unlock()
}

// forgetAll drops everything.
func (c *readCache[K, V]) forgetAll() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}
