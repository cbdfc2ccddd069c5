package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Spilled deliveries.
//
// When the deferred set (deferred.go) is full, a publish does not write its deliveries as rows:
// it spills them. A spilled delivery is held only by its event's deferred column, which the
// publish writes anyway; nothing about it is in memory. The spill is the range of event seqs
// [spillFrom, spillTo): while it is not empty every deferrable publish spills, so that every
// deferred column in the range is a spilled delivery and the range is consumed in publication
// order. A delivery row costs its publish about as much again as the event row (six b-trees), so
// a burst larger than the set no longer pays for rows it would mostly complete moments later.
//
// The spill is consumed from its start, a whole event at a time, in one of two ways:
//   - loaded (loadSpill): when the set has room again, a claim reads the next events' deferred
//     columns in a write body and defers their deliveries in memory, as their publish would
//     have. Nothing is written.
//   - written (unspill): as the publish would have written them, pending rows. Before anything
//     that must see every delivery as a row (flush, Close, an endpoint's re-enabling), and when
//     a claim comes up short while the set is too full to load (an endpoint that never answers
//     holding it; its neighbours' deliveries must not wait in the spill).
//
// Either way a delivery of an endpoint gone is dropped, and one of an endpoint disabled since its
// publish is failed as of the endpoint's last change (the disabling), as Open's recovery does.
// One spillMu orders the two, and each moves spillFrom only once its body has committed, so a
// delivery is never both loaded and written.
//
// Durability is the deferred set's: the mark stays at or below spillFrom (deferredSet.oldest),
// and Open writes the deliveries of the deferred columns from the mark on that have no row. The
// spill is bounded by deferSpan publications, as deferred deliveries are; a publish beyond it
// writes rows.

// spillLoadMin is the least room in the set for which a claim loads spilled deliveries (or half
// the set's limit, if less): loading costs a write, worth it for a batch, not for a few.
const spillLoadMin = 512

// loadMin is the least room for which a claim loads spilled deliveries.
func (s *deferredSet) loadMin() int {
	return max(1, min(spillLoadMin, s.limit/2))
}

// deferChunk is Store.deferChunk's value, how many deferred or spilled deliveries one write
// loads or writes (about 100 ms of the writer to write them): a full set or a large spill is
// written or consumed a chunk per write, so that publishes go on meanwhile and what a write holds
// in memory at once stays small.
const deferChunk = 8192

// spilling reports whether the spill is not empty, and its start.
func (s *deferredSet) spilling() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spillFrom, s.spillFrom < s.spillTo
}

// spillRange returns the spill, [from, to), and whether it is not empty.
func (s *deferredSet) spillRange() (from, to int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spillFrom, s.spillTo, s.spillFrom < s.spillTo
}

// spillPart is what one body spilled: the deliveries of events up to last, the earliest of them
// due at next.
type spillPart struct{ last, next int64 }

// addSpill records that a body spilled the deliveries of the events first…last to endpoints,
// the earliest of them due at next. A body that fails leaves a gap in the range: harmless, it
// holds no event.
func (s *deferredSet) addSpill(first, last, next int64, endpoints map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spillFrom >= s.spillTo {
		s.spillFrom, s.spillEndpoints, s.spillParts = first, make(map[string]bool), nil
	}
	s.spillTo = max(s.spillTo, last+1)
	s.newest = max(s.newest, last)
	for ep := range endpoints {
		s.spillEndpoints[ep] = true
	}
	s.spillParts = append(s.spillParts, spillPart{last, next})
}

// consumeSpill moves the spill's start to from: the events before it were loaded or written, by
// a body that has committed.
func (s *deferredSet) consumeSpill(from int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spillFrom = max(s.spillFrom, from)
	if s.spillFrom >= s.spillTo {
		s.spillEndpoints, s.spillParts = nil, nil
		return
	}
	i := 0
	for i < len(s.spillParts) && s.spillParts[i].last < s.spillFrom {
		i++
	}
	s.spillParts = s.spillParts[i:]
}

// spillDueLocked is spillDue; the caller holds mu.
func (s *deferredSet) spillDueLocked() (int64, bool) {
	if s.spillFrom >= s.spillTo || len(s.spillParts) == 0 {
		return 0, false
	}
	next := s.spillParts[0].next
	for _, p := range s.spillParts[1:] {
		next = min(next, p.next)
	}
	return next, true
}

// spillDue returns when the earliest spilled delivery is due at the earliest, if the spill is
// not empty.
func (s *deferredSet) spillDue() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spillDueLocked()
}

// spillAhead reports whether a claim that excluded the endpoints exclude should have seen the
// spill: some of it may be of an endpoint not excluded, and due before latest, the latest due of
// what the claim took, or the claim came up short.
func (s *deferredSet) spillAhead(exclude []string, short bool, latest int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, ok := s.spillDueLocked()
	if !ok || (!short && latest <= next) {
		return false
	}
	n := len(s.spillEndpoints)
	for _, ep := range exclude {
		if s.spillEndpoints[ep] {
			n--
		}
	}
	return n > 0
}

// consumeSomeSpill loads spilled deliveries if the set has room for them, else writes the spill
// as rows; it reports whether the spill shrank.
func (s *Store) consumeSomeSpill(ctx context.Context) (bool, error) {
	from, ok := s.deferred.spilling()
	if !ok {
		return false, nil
	}
	var err error
	if s.deferred.room() >= s.deferred.loadMin() {
		err = s.loadSpill(ctx)
	} else {
		err = s.unspill(ctx)
	}
	after, ok := s.deferred.spilling()
	return !ok || after > from, err
}

// readSpill reads, in tx, the spilled deliveries of the events from seq from up to to, whole
// events, at most limit deliveries (at least one event's). Those of an endpoint gone are left
// out, those of an endpoint disabled are failed as of its last change. next is the seq the
// spill starts from once they are consumed.
func (s *Store) readSpill(ctx context.Context, tx *sql.Tx, from, to int64, limit int) (ds []*deferredDelivery, next int64, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, tenant_id, id, type, deferred FROM events
		WHERE seq >= ? AND seq < ? AND deferred IS NOT NULL ORDER BY seq`, from, to)
	if err != nil {
		return nil, 0, fmt.Errorf("read spilled deliveries: %w", err)
	}
	next = to
	for rows.Next() {
		var seq int64
		var tenant, id, typ, text string
		if err := rows.Scan(&seq, &tenant, &id, &typ, &text); err != nil {
			rows.Close()
			return nil, 0, err
		}
		got, err := decodeDeferred(text, seq, tenant, id, typ)
		if err != nil {
			rows.Close()
			return nil, 0, err
		}
		if len(ds) > 0 && len(ds)+len(got) > limit {
			next = seq
			break
		}
		ds = append(ds, got...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read spilled deliveries: %w", err)
	}

	// Their endpoints: gone, or disabled since the publish.
	seen := make(map[string]bool)
	var ids []string
	for _, d := range ds {
		if !seen[d.endpointID] {
			seen[d.endpointID] = true
			ids = append(ids, d.endpointID)
		}
	}
	type endpoint struct {
		tenant   string
		disabled bool
		updated  int64
	}
	eps := make(map[string]endpoint, len(ids))
	if len(ids) > 0 {
		rows, err := tx.QueryContext(ctx, `SELECT id, tenant_id, disabled, updated_at FROM endpoints
			WHERE id IN (SELECT value FROM json_each(?))`, idList(ids))
		if err != nil {
			return nil, 0, fmt.Errorf("read spilled deliveries' endpoints: %w", err)
		}
		for rows.Next() {
			var id string
			var e endpoint
			if err := rows.Scan(&id, &e.tenant, &e.disabled, &e.updated); err != nil {
				rows.Close()
				return nil, 0, err
			}
			eps[id] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, fmt.Errorf("read spilled deliveries' endpoints: %w", err)
		}
	}
	kept := ds[:0]
	for _, d := range ds {
		e, ok := eps[d.endpointID]
		if !ok || e.tenant != d.tenantID {
			continue
		}
		if e.disabled {
			d.failedAt = e.updated
		}
		kept = append(kept, d)
	}
	return kept, next, nil
}

// loadSpill defers in memory the spilled deliveries that the set has room for, at most a chunk,
// if it has room for spillLoadMin of them (or the whole spill): what their publish would have
// done.
func (s *Store) loadSpill(ctx context.Context) error {
	s.spillMu.Lock()
	defer s.spillMu.Unlock()
	from, _, ok := s.deferred.spillRange()
	if !ok || s.deferred.room() < s.deferred.loadMin() {
		return nil
	}
	var loaded []*deferredDelivery
	var next int64
	err := s.write(ctx, "load spilled deliveries", func(ctx context.Context, tx *sql.Tx) (err error) {
		loaded = nil
		_, to, _ := s.deferred.spillRange() // with what bodies before this one spilled
		loaded, next, err = s.readSpill(ctx, tx, from, to, max(1, min(s.deferred.room(), s.deferChunk)))
		if err != nil {
			return err
		}
		s.deferred.addTentative(loaded)
		return nil
	})
	if err != nil {
		s.deferred.discard(loaded)
		return err
	}
	s.deferred.publish(loaded)
	s.deferred.consumeSpill(next)
	return nil
}

// unspill writes the spilled deliveries as rows, a chunk per write, up to the end the spill had
// when it was called.
func (s *Store) unspill(ctx context.Context) error {
	s.spillMu.Lock()
	defer s.spillMu.Unlock()
	_, until, ok := s.deferred.spillRange()
	if !ok {
		return nil
	}
	for {
		from, ok := s.deferred.spilling()
		if !ok || from >= until {
			return nil
		}
		var next int64
		err := s.write(ctx, "write spilled deliveries", func(ctx context.Context, tx *sql.Tx) error {
			ds, n, err := s.readSpill(ctx, tx, from, until, s.deferChunk)
			if err != nil {
				return err
			}
			next = n
			_, err = s.writeDeferred(ctx, tx, ds)
			return err
		})
		if err != nil {
			return err
		}
		s.deferred.consumeSpill(next)
	}
}
