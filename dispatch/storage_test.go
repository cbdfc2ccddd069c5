package dispatch_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// failingStore is a real store whose CompleteDeliveries fails with ESTORAGE while fail is set,
// as a store on a full disk does, without writing anything.
type failingStore struct {
	aviso.Store
	fail     atomic.Bool
	failures atomic.Int64
}

func (f *failingStore) CompleteDeliveries(ctx context.Context, cs []aviso.Completion) ([]string, error) {
	if f.fail.Load() {
		f.failures.Add(1)
		return nil, &aviso.Error{Code: aviso.ESTORAGE, Message: aviso.StorageMessage}
	}
	return f.Store.CompleteDeliveries(ctx, cs)
}

// withFailures wraps s, keeping its LeaseKeeper visible.
func withFailures(s aviso.Store) (aviso.Store, *failingStore) {
	f := &failingStore{Store: s}
	if k, ok := s.(aviso.LeaseKeeper); ok {
		return struct {
			*failingStore
			aviso.LeaseKeeper
		}{f, k}, f
	}
	return f, f
}

// testStorageFailure: while the store cannot record outcomes, a delivery already sent is not
// sent again — not even once its lease has run out on the clock — and nothing new is attempted;
// once writes succeed, the waiting outcomes are written and the rest delivered, each once.
func testStorageFailure(t *testing.T, b backend) {
	raw := b.open(t, b.newKey(t))
	ten := newTenant(t, raw)
	rc := newReceiver(t, nil)
	ep := newEndpoint(t, raw, ten.ID, rc.srv.URL, nil)
	s, f := withFailures(raw)
	f.fail.Store(true)
	var offset atomic.Int64
	var writeErrors atomic.Int64
	cfg := config(s)
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg.OnWrite = func(err error) {
		if aviso.ErrorCode(err) == aviso.ESTORAGE {
			writeErrors.Add(1)
		}
	}
	publish(t, raw, ten.ID, 5, time.Now(), ep)
	start(t, cfg)
	waitFor(t, "5 attempts whose outcomes fail to be written, several times", func() bool {
		return len(rc.requests()) == 5 && f.failures.Load() >= 3
	})
	// Past every lease, and new work published: still nothing is sent while writes fail.
	offset.Store(int64(3 * time.Minute))
	publish(t, raw, ten.ID, 3, time.Now(), ep)
	seen := f.failures.Load()
	waitFor(t, "three more failed writes", func() bool { return f.failures.Load() >= seen+3 })
	if n := len(rc.requests()); n != 5 {
		t.Fatalf("while the store could not write, the receiver got %d requests, want the first 5 only", n)
	}
	if n := countStatus(t, raw, ten.ID, ep.ID, aviso.StatusSucceeded); n != 0 {
		t.Fatalf("%d deliveries recorded succeeded while writes failed", n)
	}
	f.fail.Store(false)
	waitFor(t, "every delivery to succeed once writes succeed", func() bool {
		return countStatus(t, raw, ten.ID, ep.ID, aviso.StatusSucceeded) == 8
	})
	got := map[string]int{}
	for _, r := range rc.requests() {
		got[r.header.Get("webhook-id")]++
	}
	if len(got) != 8 || len(rc.requests()) != 8 {
		t.Errorf("receiver got %d requests for %d events, want 8 for 8: %v", len(rc.requests()), len(got), got)
	}
	if writeErrors.Load() < 6 {
		t.Errorf("OnWrite heard %d storage errors, want at least 6", writeErrors.Load())
	}
}
