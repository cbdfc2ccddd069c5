package dispatch

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
)

// held is the set of deliveries this node holds: claimed and not yet given back, nor written
// with their outcome (queued, in flight, or in a completion batch waiting to be written). The
// loop adds a claim when it queues it and takes it out when it gives it back; the completer takes
// it out once its outcome is written. The renewer renews their leases; and a claim of a
// delivery already held (an SQLite lease that ran out while its outcome could not be written)
// is not attempted again.
type held struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func newHeld() *held { return &held{ids: make(map[string]struct{})} }

// add holds id and reports whether it was not held already.
func (h *held) add(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ids[id]; ok {
		return false
	}
	h.ids[id] = struct{}{}
	return true
}

// remove drops ids.
func (h *held) remove(ids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		delete(h.ids, id)
	}
}

// list returns the IDs held, sorted.
func (h *held) list() []string {
	h.mu.Lock()
	ids := make([]string, 0, len(h.ids))
	for id := range h.ids {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// renewEvery is how often the leases of a LeaseKeeper store are renewed: three times a lease, so
// one failed renewal leaves two more before the lease runs out.
func (d *Dispatcher) renewEvery() time.Duration { return d.cfg.Lease / 3 }

// renew renews the leases of what h holds every renewEvery until stop is closed. Run stops it
// once every completion is written, so leases are kept through a shutdown's drain too.
func (d *Dispatcher) renew(ctx context.Context, keeper aviso.LeaseKeeper, h *held, stop <-chan struct{}) {
	t := time.NewTicker(d.renewEvery())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ids := h.list()
		if len(ids) == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.renewEvery())
		err := keeper.RenewLeases(rctx, d.cfg.NodeID, ids, d.now().Add(d.cfg.Lease))
		cancel()
		if err != nil {
			d.log.WarnContext(ctx, "renew leases: they run out unless a later renewal succeeds", "count", len(ids), "error", err)
		}
	}
}

// resume gives back the leases this node ID held before Run started, on a LeaseKeeper store: a
// node restarted after a crash finds its in-flight deliveries claimable at once instead of
// waiting for their leases to run out.
func (d *Dispatcher) resume(ctx context.Context, keeper aviso.LeaseKeeper) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := keeper.ReleaseOwned(rctx, d.cfg.NodeID)
	switch {
	case err != nil:
		d.log.ErrorContext(ctx, "give back the leases held before this start: they run out instead", "node_id", d.cfg.NodeID, "error", err)
	case n > 0:
		d.log.InfoContext(ctx, "resuming the deliveries this node held when it stopped", "node_id", d.cfg.NodeID, "count", n)
	}
}
