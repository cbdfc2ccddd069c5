package sqlite

import "sync"

// Delivery leases live in memory, not in the file. An SQLite store belongs to one process, so a
// lease only has to keep this process's own claimers from taking a delivery twice, and a lease
// that a crash forgets is what a restart should release anyway. Claims then read on the reader
// pool and ReleaseDeliveries writes nothing: the writer only writes what must be durable.
//
// The one subtlety is the snapshot. A claim reads a snapshot taken when its read transaction
// starts, so a completion that commits meanwhile is not in it and the delivery still looks
// pending. Ending a lease therefore leaves a mark stamped with the commit count once the
// completion's commit had finished (committer.commits), and a claim skips a marked delivery
// unless the count it read before starting was already at least the stamp. Claims run one at a
// time (claimMu), so each drops the marks that every later claim is sure to see.

// lease is one delivery's lease.
type lease struct {
	owner string
	until int64 // unix microseconds
}

// leaseTable is the store's leases and recently ended leases.
type leaseTable struct {
	mu    sync.Mutex
	held  map[string]lease  // delivery ID → its lease
	ended map[string]uint64 // delivery ID → the commit count from which snapshots see its completion
}

func newLeaseTable() *leaseTable {
	return &leaseTable{held: make(map[string]lease), ended: make(map[string]uint64)}
}

// startClaim forgets the leases expired at now and the ends that a snapshot started after
// seen commits includes. The caller holds claimMu.
func (l *leaseTable) startClaim(seen uint64, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, at := range l.ended {
		if at <= seen {
			delete(l.ended, id)
		}
	}
	for id, h := range l.held {
		if h.until <= now {
			delete(l.held, id)
		}
	}
}

// size is how many deliveries a claim's walk may have to step over: those leased and those
// whose lease ended after its snapshot.
func (l *leaseTable) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held) + len(l.ended)
}

// claimable reports whether a claim at now may lease id: it holds no lease valid at now, and no
// lease of it ended after the claim's snapshot (startClaim dropped the ends the snapshot sees).
func (l *leaseTable) claimable(id string, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.ended[id]; ok {
		return false
	}
	h, ok := l.held[id]
	return !ok || h.until <= now
}

// take leases ids to owner until until.
func (l *leaseTable) take(ids []string, owner string, until int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.held[id] = lease{owner: owner, until: until}
	}
}

// end records that the leases of ids ended with a commit after which commits reached count.
func (l *leaseTable) end(ids []string, count uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.held, id)
		l.ended[id] = count
	}
}

// drop forgets the leases of ids whatever their owner: their deliveries were queued again.
func (l *leaseTable) drop(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.held, id)
	}
}

// release gives up owner's leases of ids and returns how many it held.
func (l *leaseTable) release(owner string, ids []string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, id := range ids {
		if h, ok := l.held[id]; ok && h.owner == owner {
			delete(l.held, id)
			n++
		}
	}
	return n
}
