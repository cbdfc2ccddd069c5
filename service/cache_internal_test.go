package service

import (
	"context"
	"testing"
	"time"
)

// TestReadCacheDropsLoadRacingInvalidation: a value loaded while an invalidation happened may
// predate the write that caused it, so it is returned to its caller but not kept.
func TestReadCacheDropsLoadRacingInvalidation(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		invalidate func(c *readCache[string, int])
	}{
		{"forget the key", func(c *readCache[string, int]) { c.forget("k") }},
		{"forget another key", func(c *readCache[string, int]) { c.forget("other") }},
		{"forget all", func(c *readCache[string, int]) { c.forgetAll() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newReadCache[string, int](time.Hour, 10, func() time.Time { return now })
			started, release := make(chan struct{}), make(chan struct{})
			got := make(chan int, 1)
			go func() {
				v, _ := c.get(ctx, "k", func(context.Context) (int, error) {
					close(started)
					<-release
					return 1, nil // read before the write
				})
				got <- v
			}()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the load did not start")
			}
			tc.invalidate(c)
			close(release)
			select {
			case v := <-got:
				if v != 1 {
					t.Fatalf("the racing caller got %d, want what it loaded (1)", v)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the racing get did not return")
			}
			loads := 0
			v, err := c.get(ctx, "k", func(context.Context) (int, error) { loads++; return 2, nil })
			if err != nil || v != 2 || loads != 1 {
				t.Fatalf("next get = %d, %v after %d loads; want 2 from a fresh load", v, err, loads)
			}
			v, _ = c.get(ctx, "k", func(context.Context) (int, error) { loads++; return 3, nil })
			if v != 2 || loads != 1 {
				t.Fatalf("third get = %d after %d loads; want the kept 2 without loading", v, loads)
			}
		})
	}
}

// TestReadCacheBounds: values expire after the TTL, errors are not kept, and a full cache starts
// over rather than grow.
func TestReadCacheBounds(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newReadCache[int, int](time.Second, 3, func() time.Time { return now })
	loads := 0
	load := func(v int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { loads++; return v, nil }
	}
	tests := []struct {
		name      string
		advance   time.Duration
		key, load int
		want      int
		wantLoads int
	}{
		{"first read loads", 0, 1, 10, 10, 1},
		{"kept within the TTL", 999 * time.Millisecond, 1, 11, 10, 1},
		{"reloaded at the TTL", time.Millisecond, 1, 12, 12, 2},
		{"second key", 0, 2, 20, 20, 3},
		{"third key fills it", 0, 3, 30, 30, 4},
		{"fourth key starts over", 0, 4, 40, 40, 5},
		{"first key was dropped", 0, 1, 13, 13, 6},
		{"fourth key kept", 0, 4, 41, 40, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = now.Add(tc.advance)
			v, err := c.get(ctx, tc.key, load(tc.load))
			if err != nil || v != tc.want || loads != tc.wantLoads {
				t.Fatalf("get(%d) = %d, %v after %d loads; want %d after %d", tc.key, v, err, loads, tc.want, tc.wantLoads)
			}
		})
	}
	t.Run("errors are not kept", func(t *testing.T) {
		boom := context.Canceled
		if _, err := c.get(ctx, 9, func(context.Context) (int, error) { return 0, boom }); err != boom {
			t.Fatalf("err %v, want %v", err, boom)
		}
		v, err := c.get(ctx, 9, load(90))
		if err != nil || v != 90 {
			t.Fatalf("after an error: %d, %v; want a fresh load", v, err)
		}
	})
}
