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
// it out once its outcome is written. The renewer renews their leases.
//
// A claim of a delivery already held is not attempted again: its outcome waits to be written,
// and its lease ran out meanwhile (an SQLite store, whose leases are not renewed, in an outage
// longer than a lease). Nor is one whose outcome was written after the claim began: the claim's
// snapshot may predate that write. written keeps, per delivery written, the count of writes
// then; a claim notes the count as it starts (mark) and admits only what was written before.
type held struct {
	mu      sync.Mutex
	ids     map[string]struct{}
	written map[string]uint64 // delivery → writes, once its outcome is written
	writes  uint64            // completion batches written
}

func newHeld() *held { return &held{ids: make(map[string]struct{}), written: make(map[string]uint64)} }

// mark returns the count of writes so far, for a claim about to start.
func (h *held) mark() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writes
}

// admission is what admit decides about a claim.
type admission int

const (
	admitted    admission = iota // held now: attempt it
	alreadyHeld                  // its outcome waits to be written: leave it
	stale                        // written after the claim started: give the lease back
)

// admit holds id, claimed by a claim that started at mark since, if it is not held already and
// was not written after the claim started.
func (h *held) admit(id string, since uint64) admission {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ids[id]; ok {
		return alreadyHeld
	}
	if w, ok := h.written[id]; ok && w > since {
		return stale
	}
	h.ids[id] = struct{}{}
	return admitted
}

// forget drops the writes a claim marked at since already sees.
func (h *held) forget(since uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, w := range h.written {
		if w <= since {
			delete(h.written, id)
		}
	}
}

// remove drops ids given back unattempted.
func (h *held) remove(ids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		delete(h.ids, id)
	}
}

// wrote drops the deliveries of a batch whose outcomes are written.
func (h *held) wrote(batch []aviso.Completion) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes++
	for _, c := range batch {
		delete(h.ids, c.Attempt.DeliveryID)
		h.written[c.Attempt.DeliveryID] = h.writes
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
