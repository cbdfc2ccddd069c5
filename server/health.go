package server

import (
	"context"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
)

// storeHealth is what a node knows of its store's writes, for /readyz. A write that fails with
// storage_unavailable (a publish, through the service's store, which storeHealth wraps; or a
// completion of the engine, through dispatch.Config.OnWrite) makes the node not ready, and the
// next write that succeeds makes it ready again. While it is not ready, Ping — what /readyz
// calls — tries a write of its own, at most once per probeEvery, so that readiness comes back
// without a restart even when no traffic reaches the node (a load balancer stops sending it
// publishes while /readyz fails): it saves a reserved API key row, probeKeyID, whose hash is
// no hex digest, so no key presented can ever match it.
type storeHealth struct {
	aviso.Store
	now func() time.Time

	mu       sync.Mutex
	err      error // the last write's storage error; nil once a write succeeded
	probedAt time.Time
}

const (
	probeEvery = time.Second
	probeKeyID = "aviso_write_probe"
)

// observe records a write's outcome: a storage error, or a success. Other errors (a conflict,
// an unknown tenant) say nothing about the storage.
func (h *storeHealth) observe(err error) {
	code := aviso.ErrorCode(err)
	if code != "" && code != aviso.ESTORAGE {
		return
	}
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

// InsertEvents is the store's, observed.
func (h *storeHealth) InsertEvents(ctx context.Context, events []aviso.NewEvent) ([]aviso.InsertedEvent, error) {
	res, err := h.Store.InsertEvents(ctx, events)
	h.observe(err)
	return res, err
}

// Ping checks that the store answers and, when the last write failed for want of storage, that
// it can write again (the probe).
func (h *storeHealth) Ping(ctx context.Context) error {
	if err := h.Store.Ping(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	err, now := h.err, h.now()
	probe := err != nil && now.Sub(h.probedAt) >= probeEvery
	if probe {
		h.probedAt = now
	}
	h.mu.Unlock()
	if !probe {
		return err
	}
	err = h.Store.SaveAPIKey(ctx, &aviso.APIKey{ID: probeKeyID, Hash: "write probe: matches no key", CreatedAt: now.UTC()})
	h.observe(err)
	if aviso.ErrorCode(err) == aviso.ESTORAGE || err == nil {
		return err
	}
	return h.current()
}

func (h *storeHealth) current() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}
