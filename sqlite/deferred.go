package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
)

// Deferred deliveries.
//
// Most deliveries are attempted within milliseconds of their publish, and most first attempts
// succeed. Writing such a delivery's row pending at the publish and updating it once attempted
// costs the single writer two writes of the row and its five index entries (two of them in the
// pending-only indexes the claims walk); writing it once, attempted, costs one. A publish
// therefore defers the rows of its new deliveries, as long as there is room: it writes the event
// row with the list of its deferred deliveries in its deferred column, and keeps the deliveries
// here, in memory, where ClaimDeliveries finds them beside the due rows. CompleteDeliveries then
// writes each deferred delivery's row for the first time, with its first outcome.
//
// The deliveries are durable from the publish's commit, like a row: the event row holds them.
// Every event below the mark (the deferred_mark table) has all its deferred deliveries written;
// bodies move the mark up as deliveries are written, and Open writes, as pending rows, the
// deferred deliveries from the mark on that have no row (a crash left them in memory only).
//
// Everything else sees only rows. A method that reads or changes deliveries by other means
// (listings, GetDelivery, retries, replays) first writes the deferred deliveries it may touch as
// rows: they are then exactly what they would have been without deferral. Deferral changes when
// rows are written, never what the store answers. Close writes them all, so that a stopped
// store's file holds every delivery.
//
// Disabling an endpoint (by hand, or after its failures) fails its pending deliveries. Its
// deferred ones are failed in memory (deferredSet.fail): they stop being claimable, and their
// rows are written, failed as of the disabling, by whatever writes deferred deliveries next (a
// read, the endpoint's re-enabling, Close, a claim that finds the set full, the age limit), or
// never if the endpoint or its tenant is deleted first. A dead endpoint is typically disabled
// with thousands of deliveries deferred; writing them all in the disabling's transaction held
// every other write back for a quarter of a second. Open fails those a crash left unwritten.
//
// Bounds: at most Options.DeferLimit deliveries are deferred at a time (a publish beyond it
// spills them, spill.go, within deferSpan publications, and writes rows beyond that), at most
// maxDeferPerEvent per event (a fan-out writes rows), and a delivery deferred more than
// deferSpan publications ago is written by the next claim, so that Open never has to read more
// than about that many events.

const (
	// defaultDeferLimit is Options.DeferLimit's default. Each deferred delivery holds about 270
	// bytes of live heap, which the garbage collector lets grow fivefold under aviso's GOGC=400:
	// 20,000 are about 5 MiB live, 26 MiB of memory. The set needs to hold only what the engine
	// is about to claim (about a second of deliveries at full speed): a burst beyond it spills
	// (spill.go), which costs the publish nothing more. At 50,000, the default until the spill
	// existed, the set took about 65 MiB, for no more throughput (BENCHMARKS.md, step 30).
	defaultDeferLimit = 20_000
	// maxDeferPerEvent is the most deliveries of one event that are deferred.
	maxDeferPerEvent = 16
	// deferSpan is how many events behind the newest a deferred delivery may fall before the
	// claims write it.
	deferSpan = 200_000
	// markEvery is how often, at most, a body moves the mark.
	markEvery = time.Second
)

// deferState is where a deferred delivery stands.
type deferState int

const (
	// deferTentative: published by a body whose transaction has not committed yet. Only the
	// mark counts it; nothing claims or writes it.
	deferTentative deferState = iota
	deferQueued               // claimable
	deferClaimed              // leased, being attempted
	// deferWriting: a body has written its row, not committed yet. Nothing claims it; the
	// body's method forgets it once committed, or queues it again if the commit failed.
	deferWriting
	// deferFailing: failed by the disabling of its endpoint (failedAt), its row not written
	// yet. Nothing claims it; the next write of deferred deliveries writes it failed.
	deferFailing
)

// deferredDelivery is a delivery whose row is not written yet.
type deferredDelivery struct {
	id, tenantID, eventID, endpointID, eventType string
	seq                                          int64 // the event's
	next, created, updated                       int64 // unix microseconds

	state    deferState
	failedAt int64  // unix microseconds: when disabling its endpoint failed it; 0 if it has not
	owner    string // of the lease, when claimed
	until    int64  // end of the lease, when claimed
	queued   int    // how many times it was queued: its place in a queue holds the count (see queue)
}

// delivery is d as the pending delivery it stands for.
func (d *deferredDelivery) delivery() *aviso.Delivery {
	next := fromMicros(d.next)
	return &aviso.Delivery{ID: d.id, TenantID: d.tenantID, EventID: d.eventID, EndpointID: d.endpointID,
		EventType: d.eventType, Status: aviso.StatusPending, NextAttemptAt: &next,
		CreatedAt: fromMicros(d.created), UpdatedAt: fromMicros(d.updated)}
}

// queue is one endpoint's queued deliveries in due order (next, id). Deliveries leave it lazily:
// a place whose delivery was claimed, written or forgotten since, or queued again elsewhere in
// the queue (its count moved on), is skipped and dropped when it reaches the head.
type queue struct {
	places []place
	head   int
}

type place struct {
	d     *deferredDelivery
	count int // d.queued when d took this place
}

// deferredSet holds a store's deferred deliveries. Safe for concurrent use.
type deferredSet struct {
	mu      sync.Mutex
	limit   int
	byID    map[string]*deferredDelivery
	queues  map[string]*queue // by endpoint
	claimed map[*deferredDelivery]bool
	failing int // how many are deferFailing
	// lastMark is when a body last wrote the mark, lastAge when a claim last looked for
	// deliveries deferred too long ago.
	lastMark, lastAge time.Time
	newest            int64 // the largest event seq published
	// spillFrom and spillTo are the spill (spill.go): the events [spillFrom, spillTo) hold
	// spilled deliveries, of spillEndpoints (or of fewer, once some are consumed), spilled by
	// the bodies spillParts.
	spillFrom, spillTo int64
	spillEndpoints     map[string]bool
	spillParts         []spillPart
}

func newDeferredSet(limit int) *deferredSet {
	return &deferredSet{limit: limit, byID: make(map[string]*deferredDelivery), queues: make(map[string]*queue),
		claimed: make(map[*deferredDelivery]bool)}
}

// room reports how many more deliveries may be deferred.
func (s *deferredSet) room() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit - len(s.byID)
}

// empty reports whether no delivery is deferred.
func (s *deferredSet) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID) == 0
}

// has reports whether id is deferred.
func (s *deferredSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byID[id]
	return ok
}

// addTentative records ds, deferred by a body that has not committed yet.
func (s *deferredSet) addTentative(ds []*deferredDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		d.state = deferTentative
		s.byID[d.id] = d
	}
}

// publish makes ds claimable: their body committed. Those written meanwhile are left out.
func (s *deferredSet) publish(ds []*deferredDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if s.byID[d.id] == d && d.state == deferTentative {
			s.enqueue(d)
		}
		s.newest = max(s.newest, d.seq)
	}
}

// discard forgets ds: their body failed, so their events were not stored.
func (s *deferredSet) discard(ds []*deferredDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if s.byID[d.id] == d && d.state == deferTentative {
			delete(s.byID, d.id)
		}
	}
}

// setState moves d to state, out of the claimed index unless claimed. The caller holds mu.
func (s *deferredSet) setState(d *deferredDelivery, state deferState) {
	if d.state == deferFailing {
		s.failing--
	}
	if state == deferFailing {
		s.failing++
	}
	d.state = state
	if state == deferClaimed {
		s.claimed[d] = true
	} else {
		delete(s.claimed, d)
		d.owner, d.until = "", 0
	}
}

// enqueue queues d in its endpoint's queue, in due order, or, if disabling its endpoint failed
// it, sets it failing. The caller holds mu.
func (s *deferredSet) enqueue(d *deferredDelivery) {
	if d.failedAt != 0 {
		s.setState(d, deferFailing)
		return
	}
	s.setState(d, deferQueued)
	d.queued++
	q := s.queues[d.endpointID]
	if q == nil {
		q = &queue{}
		s.queues[d.endpointID] = q
	}
	p := place{d, d.queued}
	live := q.places[q.head:]
	switch {
	case len(live) == 0 || !dueBefore(d, live[len(live)-1].d):
		q.places = append(q.places, p) // a publish: they come in due order
	case dueBefore(d, live[0].d):
		// Given back (released, or its lease expired): usually before all the rest. Room is
		// made at the front, so that a batch given back in reverse due order costs O(1) each.
		if q.head == 0 {
			room := 16 + len(live)/4
			grown := make([]place, room+len(live), room+len(live)+cap(q.places)-len(q.places))
			copy(grown[room:], live)
			q.places, q.head = grown, room
		}
		q.head--
		q.places[q.head] = p
	default:
		i, _ := slices.BinarySearchFunc(live, d, func(p place, d *deferredDelivery) int {
			if dueBefore(p.d, d) {
				return -1
			}
			return 1
		})
		q.places = slices.Insert(q.places, q.head+i, p)
	}
}

func dueBefore(a, b *deferredDelivery) bool {
	return cmp.Or(cmp.Compare(a.next, b.next), strings.Compare(a.id, b.id)) < 0
}

// live reports whether p still holds its delivery. The caller holds mu.
func (s *deferredSet) live(p place) bool {
	return p.d.state == deferQueued && p.count == p.d.queued && s.byID[p.d.id] == p.d
}

// trim drops the places at q's head that no longer hold their delivery, and the queue if
// nothing is left. The caller holds mu.
func (s *deferredSet) trim(endpointID string, q *queue) {
	for q.head < len(q.places) && !s.live(q.places[q.head]) {
		q.places[q.head] = place{}
		q.head++
	}
	switch {
	case q.head == len(q.places):
		delete(s.queues, endpointID)
	case q.head > len(q.places)/2 && q.head > 64:
		q.places = append(q.places[:0], q.places[q.head:]...)
		q.head = 0
	}
}

// due returns up to limit queued deliveries due at now of the endpoints not in exclude, oldest
// due first, without claiming them.
func (s *deferredSet) due(now int64, exclude map[string]bool, limit int) []*deferredDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*deferredDelivery
	for ep, q := range s.queues {
		s.trim(ep, q)
		if exclude[ep] {
			continue
		}
		taken := 0
		for _, p := range q.places[q.head:] {
			if taken == limit || p.d.next > now {
				break
			}
			if s.live(p) {
				out = append(out, p.d)
				taken++
			}
		}
	}
	slices.SortFunc(out, func(a, b *deferredDelivery) int {
		return cmp.Or(cmp.Compare(a.next, b.next), strings.Compare(a.id, b.id))
	})
	return out[:min(len(out), limit)]
}

// claim leases those of ds that are still queued to owner until until, and returns them.
func (s *deferredSet) claim(ds []*deferredDelivery, owner string, until int64) map[*deferredDelivery]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	taken := make(map[*deferredDelivery]bool, len(ds))
	for _, d := range ds {
		if s.byID[d.id] == d && d.state == deferQueued {
			s.setState(d, deferClaimed)
			d.owner, d.until = owner, until
			taken[d] = true
		}
	}
	return taken
}

// writing notes that a body is writing the rows of ds (see deferWriting).
func (s *deferredSet) writing(ds []*deferredDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if s.byID[d.id] == d {
			s.setState(d, deferWriting)
		}
	}
}

// unwritten queues ds again: the body that wrote their rows did not commit.
func (s *deferredSet) unwritten(ds []*deferredDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if s.byID[d.id] == d && d.state == deferWriting {
			s.enqueue(d)
		}
	}
}

// expire queues again the claimed deliveries whose lease ended before now.
func (s *deferredSet) expire(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := range s.claimed {
		if d.until <= now {
			s.enqueue(d)
		}
	}
}

// release queues again the deliveries of ids that owner has claimed, and returns how many.
func (s *deferredSet) release(owner string, ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	// In reverse: ids come in due order, and each goes back to the front of its queue.
	for _, id := range slices.Backward(ids) {
		if d, ok := s.byID[id]; ok && d.state == deferClaimed && d.owner == owner {
			s.enqueue(d)
			n++
		}
	}
	return n
}

// lookup returns the deferred deliveries among ids, tentative ones included.
func (s *deferredSet) lookup(ids []string) map[string]*deferredDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string]*deferredDelivery
	for _, id := range ids {
		if d, ok := s.byID[id]; ok {
			if out == nil {
				out = make(map[string]*deferredDelivery)
			}
			out[id] = d
		}
	}
	return out
}

// writable returns the deferred deliveries a body may write as rows (not tentative ones) for
// which keep holds (all of them if keep is nil), in ID order.
func (s *deferredSet) writable(keep func(*deferredDelivery) bool) []*deferredDelivery {
	out := s.matching(func(d *deferredDelivery) bool { return d.state != deferTentative && (keep == nil || keep(d)) })
	slices.SortFunc(out, func(a, b *deferredDelivery) int { return strings.Compare(a.id, b.id) })
	return out
}

// forget drops ds: their rows are committed, or they need none (their event or endpoint is gone).
func (s *deferredSet) forget(ds []*deferredDelivery) {
	if len(ds) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if s.byID[d.id] == d {
			s.setState(d, deferWriting) // out of the claimed index; its place in a queue is dead
			delete(s.byID, d.id)
		}
	}
}

// fail records that disabling their endpoint at at failed ds: those queued stop being claimable
// and wait, failing, for the next write of deferred deliveries; the others follow when they
// would be queued again (one claimed keeps its lease: its attempt's outcome is written as it
// would be on a row the disabling failed). Failing them costs no write now: the rows are written
// with the next flush (a read of deliveries), the endpoint's re-enabling, Close, a claim that
// finds the set full, or the age limit, and not at all if the endpoint or its tenant is deleted
// first.
func (s *deferredSet) fail(ds []*deferredDelivery, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if s.byID[d.id] != d || d.failedAt != 0 {
			continue
		}
		d.failedAt = at
		if d.state == deferQueued {
			s.setState(d, deferFailing)
		}
	}
}

// fullOfFailing reports whether the set is full and some of it is failing: writing those frees
// room for new deliveries.
func (s *deferredSet) fullOfFailing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failing > 0 && len(s.byID) >= s.limit
}

// matching returns the deferred deliveries for which match holds, whatever their state. A body
// that deletes their event or endpoint takes them, and its method forgets them once committed: no
// row is owed. One claimed meanwhile then completes as a deleted delivery does; one tentative
// (published earlier in the same group) is never queued.
func (s *deferredSet) matching(match func(*deferredDelivery) bool) []*deferredDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*deferredDelivery
	for _, d := range s.byID {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

// nextDue returns the earliest due time of a queued delivery.
func (s *deferredSet) nextDue() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next int64
	found := false
	for ep, q := range s.queues {
		s.trim(ep, q)
		if q.head < len(q.places) {
			if at := q.places[q.head].d.next; !found || at < next {
				next, found = at, true
			}
		}
	}
	return next, found
}

// oldest returns the smallest event seq of a deferred delivery not in except, and with spill,
// of a spilled one (spill.go).
func (s *deferredSet) oldest(except []*deferredDelivery, spill bool) (int64, bool) {
	skip := make(map[*deferredDelivery]bool, len(except))
	for _, d := range except {
		skip[d] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var seq int64
	found := false
	for _, d := range s.byID {
		if !skip[d] && (!found || d.seq < seq) {
			seq, found = d.seq, true
		}
	}
	if spill && s.spillFrom < s.spillTo && (!found || s.spillFrom < seq) {
		seq, found = s.spillFrom, true
	}
	return seq, found
}

// newestSeq returns the largest event seq published with a deferred delivery.
func (s *deferredSet) newestSeq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newest
}

// once reports whether a second (markEvery) has passed since *last, and if so sets *last to
// now: how bodies pace moving the mark (lastMark) and claims looking for deliveries deferred too
// long ago (lastAge).
func (s *deferredSet) once(last *time.Time, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(*last) < markEvery {
		return false
	}
	*last = now
	return true
}

// encodeDeferred is the deferred column of an event whose deliveries ds are deferred.
func encodeDeferred(ds []*deferredDelivery) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.id)
		b.WriteByte(' ')
		b.WriteString(d.endpointID)
		for _, t := range []int64{d.next, d.created, d.updated} {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatInt(t, 10))
		}
	}
	return b.String()
}

// decodeDeferred reads an event's deferred column; the event's own fields fill in the rest.
func decodeDeferred(text string, seq int64, tenantID, eventID, eventType string) ([]*deferredDelivery, error) {
	var out []*deferredDelivery
	for line := range strings.SplitSeq(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			return nil, fmt.Errorf("event %s: deferred delivery %q: want 5 fields", eventID, line)
		}
		d := &deferredDelivery{id: f[0], endpointID: f[1], seq: seq, tenantID: tenantID, eventID: eventID, eventType: eventType}
		for i, dst := range []*int64{&d.next, &d.created, &d.updated} {
			t, err := strconv.ParseInt(f[2+i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("event %s: deferred delivery %q: %w", eventID, line, err)
			}
			*dst = t
		}
		out = append(out, d)
	}
	return out, nil
}

// The statements that write deferred deliveries.
var (
	// writeDeferredRows writes deferred deliveries as rows, pending or failed, those of an event or
	// an endpoint that is gone left out, and those written already left as they are.
	writeDeferredRows = bulkStatement{
		head: `WITH v (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, next_at, error, created_at,
			updated_at) AS (VALUES `,
		row: `(?,?,?,?,?,?,?,?,?,?,?)`,
		tail: `) INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
			round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
		SELECT v.id, v.tenant_id, v.event_seq, v.event_id, v.endpoint_id, v.event_type, v.status, 0, 0, v.next_at, 0, v.error,
			v.created_at, v.updated_at FROM v
		WHERE EXISTS (SELECT 1 FROM events e WHERE e.seq = v.event_seq AND e.id = v.event_id)
			AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = v.endpoint_id)
		ON CONFLICT (id) DO NOTHING`,
	}
	// insertAttempted writes the rows of deferred deliveries with the outcome of their first
	// attempt, or, for one that a body of the same group wrote pending already, records the
	// outcome on it. A delivery whose event is gone is left out (the caller counts the rows); one
	// whose endpoint is gone fails the statement (its foreign key).
	insertAttempted = bulkStatement{
		head: `WITH v (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, next_at, response_status, error,
			created_at, at) AS (VALUES `,
		row: `(?,?,?,?,?,?,?,?,?,?,?,?)`,
		tail: `) INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
			round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
		SELECT v.id, v.tenant_id, v.event_seq, v.event_id, v.endpoint_id, v.event_type, v.status, 1, 1, v.next_at,
			v.response_status, v.error, v.created_at, v.at FROM v
		WHERE EXISTS (SELECT 1 FROM events e WHERE e.seq = v.event_seq AND e.id = v.event_id)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempt_count = attempt_count + 1,
			round_attempts = round_attempts + 1, next_attempt_at = excluded.next_attempt_at,
			last_response_status = excluded.last_response_status, last_error = excluded.last_error,
			lease_owner = NULL, lease_until = NULL, updated_at = excluded.updated_at`,
	}
)

// writeDeferred writes ds as pending rows in tx (see writeDeferredRows), or, those that the
// disabling of their endpoint failed, as failed deliveries (as failPending leaves the rows it
// fails). It returns how many rows it wrote. The caller forgets ds once tx has committed.
func (s *Store) writeDeferred(ctx context.Context, tx *sql.Tx, ds []*deferredDelivery) (int64, error) {
	n, err := s.execCount(ctx, tx, writeDeferredRows, len(ds), func(dst []any, i int) []any {
		d := ds[i]
		if d.failedAt != 0 {
			return append(dst, d.id, d.tenantID, d.seq, d.eventID, d.endpointID, d.eventType,
				string(aviso.StatusFailed), nil, disabledError, d.created, d.failedAt)
		}
		return append(dst, d.id, d.tenantID, d.seq, d.eventID, d.endpointID, d.eventType,
			string(aviso.StatusPending), d.next, "", d.created, d.updated)
	})
	if err != nil {
		return 0, fmt.Errorf("write deferred deliveries: %w", err)
	}
	return n, nil
}

// moveMark sets the mark (see above) as high as it can go, if a second has passed since a body
// last did (always, with force). Bodies call it after recording the deliveries they defer
// (tentative), so that it counts them; written are those whose rows the body wrote, which the
// mark may pass: they commit together.
func (s *Store) moveMark(ctx context.Context, tx *sql.Tx, force bool, written []*deferredDelivery) error {
	if !force && !s.deferred.once(&s.deferred.lastMark, time.Now()) {
		return nil
	}
	seq, ok := s.deferred.oldest(written, true)
	var err error
	if ok {
		_, err = tx.ExecContext(ctx, `UPDATE deferred_mark SET seq = ?`, seq)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE deferred_mark SET seq = (SELECT coalesce(max(seq), 0) + 1 FROM events)`)
	}
	if err != nil {
		return fmt.Errorf("move the deferred mark: %w", err)
	}
	return nil
}

// writeAllDeferred writes every deferred delivery, or those keep selects, as rows (see
// writeDeferred), a chunk (Store.deferChunk) per write, oldest publications first: a full set
// is seconds of the writer, which publishes would otherwise wait behind. keep must select a set
// that new publishes do not keep growing (flush bounds it by seq). With force it runs, and moves
// the mark, even if none is deferred.
func (s *Store) writeAllDeferred(ctx context.Context, op string, keep func(*deferredDelivery) bool, force bool) error {
	if !force && s.deferred.empty() {
		return nil
	}
	for {
		var ds []*deferredDelivery
		more := false
		err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
			ds = s.deferred.writable(keep)
			if more = len(ds) > s.deferChunk; more {
				ds = oldestChunk(ds, s.deferChunk)
			}
			if _, err := s.writeDeferred(ctx, tx, ds); err != nil {
				return err
			}
			return s.moveMark(ctx, tx, force, ds)
		})
		if err != nil {
			return err
		}
		s.deferred.forget(ds)
		if !more {
			return nil
		}
	}
}

// oldestChunk returns the n deliveries of ds (in ID order) of the oldest events, in ID order.
func oldestChunk(ds []*deferredDelivery, n int) []*deferredDelivery {
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b *deferredDelivery) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), strings.Compare(a.id, b.id))
	})
	ds = ds[:n]
	slices.SortFunc(ds, func(a, b *deferredDelivery) int { return strings.Compare(a.id, b.id) })
	return ds
}

// flush writes every deferred delivery as a row, the spilled ones (spill.go) first: what a method
// that reads deliveries does first, so that it reads them all. Those of events published once it
// has begun are left deferred: the read need not see them, and a stream of publishes could
// otherwise keep it writing.
func (s *Store) flush(ctx context.Context) error {
	if err := s.unspill(ctx); err != nil {
		return err
	}
	newest := s.deferred.newestSeq()
	return s.writeAllDeferred(ctx, "write deferred deliveries", func(d *deferredDelivery) bool { return d.seq <= newest }, false)
}

// recoverDeferred writes, as pending rows (failed, for an endpoint disabled since), the deferred
// deliveries of the events from the mark on that have none (a crash kept them from being
// written), and moves the mark past them. Open runs
// it before anything else uses the store.
func (s *Store) recoverDeferred(ctx context.Context) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT seq, tenant_id, id, type, deferred FROM events
		WHERE seq >= (SELECT seq FROM deferred_mark) AND deferred IS NOT NULL ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	var ds []*deferredDelivery
	for rows.Next() {
		var seq int64
		var tenant, id, typ, text string
		if err := rows.Scan(&seq, &tenant, &id, &typ, &text); err != nil {
			rows.Close()
			return 0, err
		}
		got, err := decodeDeferred(text, seq, tenant, id, typ)
		if err != nil {
			rows.Close()
			return 0, err
		}
		ds = append(ds, got...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n, err := s.writeDeferred(ctx, tx, ds)
	if err != nil {
		return 0, err
	}
	// Those of an endpoint disabled since were failed by the disabling, in memory only (see
	// fail): they are failed as of the endpoint's last change, which the disabling was.
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.id
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'failed', last_error = ?, next_attempt_at = NULL,
			lease_owner = NULL, lease_until = NULL,
			updated_at = (SELECT e.updated_at FROM endpoints e WHERE e.id = deliveries.endpoint_id)
		WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'
			AND endpoint_id IN (SELECT id FROM endpoints WHERE disabled = 1)`, disabledError, idList(ids)); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deferred_mark SET seq = (SELECT coalesce(max(seq), 0) + 1 FROM events)`); err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}
