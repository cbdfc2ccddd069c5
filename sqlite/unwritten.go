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

// Unwritten deliveries: the event log is the queue of deliveries that have no row yet (see the
// package doc). A publish names its event's new deliveries that are due at once in the event
// row's deferred column instead of inserting rows; claims load a window of them into memory, in
// seq order, and CompleteDeliveries writes each one's row once, with its first outcome. The view
// unwritten_deliveries (migration 0012) is the log read as delivery rows. A retry or a disabling
// writes the rows of the unwritten deliveries it changes; Close writes them all. Claims are
// oldest due first over rows and window, and take the log in publication order, which is due
// order but for clocks.

const (
	// defaultWindow is Options.Window's default: about a second of deliveries at full speed,
	// and about 5 MiB of memory.
	defaultWindow = 20_000
	// maxPerEvent is the most deliveries an event names; a larger fan-out writes rows.
	maxPerEvent = 16
	// maxBacklog is how many events the log may run ahead of the window before publishes write
	// rows again: it bounds what a read of the unwritten deliveries scans.
	maxBacklog = 200_000
	// markEvery is how often, at most, a write moves the mark.
	markEvery = time.Second
)

// entry is an unwritten delivery in the window.
type entry struct {
	id, tenantID, eventID, endpointID, eventType string
	seq, next, created, updated                  int64 // the event's seq; times in unix microseconds
	owner                                        string
	until                                        int64 // the lease: leased while until > now
	gone                                         bool  // forgotten: left in order until trimmed
}

// delivery is e as the pending delivery it stands for.
func (e *entry) delivery() *aviso.Delivery {
	next := fromMicros(e.next)
	return &aviso.Delivery{ID: e.id, TenantID: e.tenantID, EventID: e.eventID, EndpointID: e.endpointID,
		EventType: e.eventType, Status: aviso.StatusPending, NextAttemptAt: &next,
		CreatedAt: fromMicros(e.created), UpdatedAt: fromMicros(e.updated)}
}

func dueBefore(a, b *entry) int {
	return cmp.Or(cmp.Compare(a.next, b.next), strings.Compare(a.id, b.id))
}

// window is the part of the log held in memory: every unwritten delivery of the events from
// the mark up to loadedTo. Safe for concurrent use.
type window struct {
	mu       sync.Mutex
	limit    int
	byID     map[string]*entry
	order    []*entry // by due time, then ID; forgotten entries are dropped lazily
	loadedTo int64    // the next event seq to load
	// lastListed is the newest event seq a publish named deliveries in: the log may hold some
	// beyond the window while loadedTo is not past it.
	lastListed int64
	lastMark   time.Time
	// leased is how many entries have been leased and not released (until != 0), whether or not
	// the lease has run out: the room they take is on its way back.
	leased int
	// ahead counts, by endpoint, the deliveries that publishes since Open named in the log
	// beyond the window; a log written before Open is unknown until loadedTo reaches opened.
	// It tells a claim that comes up short whether writing the window's idle entries would
	// bring claimable work in (writeIdle), or only more of the endpoints it leaves out.
	ahead  map[string]int
	opened int64
}

func newWindow(limit int, loadedTo, opened int64) *window {
	return &window{limit: limit, byID: make(map[string]*entry), loadedTo: loadedTo, ahead: make(map[string]int), opened: opened}
}

// room is how many more entries the window may hold: those leased, whose outcome is on its
// way, do not count.
func (w *window) room() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.limit - len(w.byID) + w.leased
}

// aheadFor reports whether the log beyond the window may hold deliveries of an endpoint not in
// exclude.
func (w *window) aheadFor(exclude map[string]bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loadedTo < w.opened {
		return true
	}
	for ep := range w.ahead {
		if !exclude[ep] {
			return true
		}
	}
	return false
}

// backlog is how many events the log runs ahead of the window, for a publish at seq.
func (w *window) backlog(seq int64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return seq - w.loadedTo
}

// listed records that a publish named deliveries to endpoints in event seq. It is called in the
// publish's transaction, so a load cannot see the event before it is counted.
func (w *window) listed(seq int64, endpoints []*aviso.Delivery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastListed = max(w.lastListed, seq)
	for _, d := range endpoints {
		w.ahead[d.EndpointID]++
	}
}

// add records es, loaded from the events below to, and moves loadedTo there. They are merged
// into order: a load's deliveries share a few milliseconds, and their IDs are random within one.
func (w *window) add(es []*entry, to int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	es = slices.DeleteFunc(es, func(e *entry) bool { return w.byID[e.id] != nil })
	slices.SortFunc(es, dueBefore)
	for _, e := range es {
		w.byID[e.id] = e
		if e.seq >= w.opened {
			if w.ahead[e.endpointID] <= 1 {
				delete(w.ahead, e.endpointID)
			} else {
				w.ahead[e.endpointID]--
			}
		}
	}
	if n := len(w.order); n == 0 || len(es) == 0 || dueBefore(w.order[n-1], es[0]) < 0 {
		w.order = append(w.order, es...) // the usual case: later than all the window holds
	} else {
		merged := make([]*entry, 0, len(w.order)+len(es))
		i, j := 0, 0
		for i < len(w.order) && j < len(es) {
			if dueBefore(w.order[i], es[j]) < 0 {
				merged, i = append(merged, w.order[i]), i+1
			} else {
				merged, j = append(merged, es[j]), j+1
			}
		}
		w.order = append(append(merged, w.order[i:]...), es[j:]...)
	}
	w.loadedTo = max(w.loadedTo, to)
	if w.loadedTo > w.lastListed {
		clear(w.ahead) // caught up: what a rolled-back publish counted goes too
	}
}

// forget drops the entries for which match holds: they have a row now, or need none.
func (w *window) forget(match func(*entry) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, e := range w.byID {
		if match(e) {
			w.drop(id, e)
		}
	}
	w.trim()
}

// forgetIDs drops the entries of ids.
func (w *window) forgetIDs(ids []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if e, ok := w.byID[id]; ok {
			w.drop(id, e)
		}
	}
	w.trim()
}

// drop forgets e. The caller holds mu.
func (w *window) drop(id string, e *entry) {
	e.gone = true
	delete(w.byID, id)
	if e.until != 0 {
		w.leased--
	}
}

// trim drops forgotten entries from order once they are a good part of it. The caller holds mu.
func (w *window) trim() {
	if len(w.order) > 64 && len(w.byID) < len(w.order)/2 {
		w.order = slices.DeleteFunc(w.order, func(e *entry) bool { return e.gone })
	}
}

// get returns the entries among ids.
func (w *window) get(ids []string) map[string]*entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]*entry)
	for _, id := range ids {
		if e, ok := w.byID[id]; ok {
			out[id] = e
		}
	}
	return out
}

// has reports whether id is in the window.
func (w *window) has(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.byID[id]
	return ok
}

// due returns up to limit entries due at now, not leased, of the endpoints not in exclude, in
// due order, without leasing them.
func (w *window) due(now int64, exclude map[string]bool, limit int) []*entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*entry
	for _, e := range w.order {
		if len(out) == limit || e.next > now {
			break
		}
		if !e.gone && e.until <= now && !exclude[e.endpointID] {
			out = append(out, e)
		}
	}
	return out
}

// lease leases those of es still in the window and not leased at now to owner until until,
// and returns them.
func (w *window) lease(es []*entry, owner string, now, until int64) map[*entry]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	taken := make(map[*entry]bool, len(es))
	for _, e := range es {
		if !e.gone && e.until <= now {
			if e.until == 0 {
				w.leased++
			}
			e.owner, e.until = owner, until
			taken[e] = true
		}
	}
	return taken
}

// release ends owner's leases of ids and returns how many it held.
func (w *window) release(owner string, ids []string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, id := range ids {
		if e, ok := w.byID[id]; ok && e.owner == owner && e.until > 0 {
			e.owner, e.until = "", 0
			w.leased--
			n++
		}
	}
	return n
}

// idle returns the entries not leased at now.
func (w *window) idle(now int64) []*entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*entry
	for _, e := range w.order {
		if !e.gone && e.until <= now {
			out = append(out, e)
		}
	}
	return out
}

// nextDue returns the earliest due time of an entry, leased or not (the claim that finds it
// leased finds nothing).
func (w *window) nextDue() (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.order {
		if !e.gone {
			return e.next, true
		}
	}
	return 0, false
}

// backlogged reports whether the log may hold unwritten deliveries beyond the window, and
// where they start.
func (w *window) backlogged() (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.loadedTo, w.loadedTo <= w.lastListed
}

// encodeDeferred is an event's deferred column naming ds: a JSON array of
// [id, endpoint_id, next_attempt_at, created_at, updated_at] (times in unix microseconds).
func encodeDeferred(ds []*aviso.Delivery) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`["` + d.ID + `","` + d.EndpointID + `",`)
		b.WriteString(strconv.FormatInt(micros(*d.NextAttemptAt), 10) + ",")
		b.WriteString(strconv.FormatInt(micros(d.CreatedAt), 10) + ",")
		b.WriteString(strconv.FormatInt(micros(d.UpdatedAt), 10) + "]")
	}
	b.WriteByte(']')
	return b.String()
}

// logFrom is the log read as deliveries without a row, as the view unwritten_deliveries reads
// it but from any seq: a statement that bounds e.seq itself reads only the log from there (with
// the view's own bound at the mark, SQLite would read it all from the mark).
const logFrom = ` FROM events e, json_each(e.deferred) j WHERE e.deferred IS NOT NULL
	AND EXISTS (SELECT 1 FROM endpoints p WHERE p.id = j.value ->> 1 AND p.tenant_id = e.tenant_id)
	AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = j.value ->> 0)`

// loadSQL reads the unwritten deliveries of the events from ?1 on, in seq order.
const loadSQL = `SELECT e.seq, j.value ->> 0, e.tenant_id, e.id, j.value ->> 1, e.type, CAST(j.value ->> 2 AS INTEGER),
	CAST(j.value ->> 3 AS INTEGER), CAST(j.value ->> 4 AS INTEGER)` + logFrom + ` AND e.seq >= ?1 ORDER BY e.seq`

// load reads into the window, from the log at loadedTo, as many whole events' unwritten
// deliveries as it has room for. The caller holds claimMu, so loads run one at a time.
func (s *Store) load(ctx context.Context) error {
	room := s.window.room()
	if room <= 0 && s.window.limit > 0 {
		return nil // without a window, each load still moves past the log (one event at a time)
	}
	s.window.mu.Lock()
	from := s.window.loadedTo
	s.window.mu.Unlock()
	var es []*entry
	to := from
	err := s.read(ctx, "load unwritten deliveries", func(tx *sql.Tx) error {
		var newest int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&newest); err != nil {
			return err
		}
		if newest < from {
			return nil
		}
		to = newest + 1
		st := s.rstmt(ctx, tx, loadSQL)
		rows, err := st.QueryContext(ctx, from)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e := &entry{}
			if err := rows.Scan(&e.seq, &e.id, &e.tenantID, &e.eventID, &e.endpointID, &e.eventType,
				&e.next, &e.created, &e.updated); err != nil {
				return err
			}
			if len(es) > 0 && len(es) >= room && e.seq != es[len(es)-1].seq {
				to = e.seq // whole events only
				break
			}
			es = append(es, e)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	s.window.add(es, to)
	return nil
}

// writeUnwritten writes as rows the unwritten deliveries that cond (a condition on the view
// unwritten_deliveries u) selects: pending as published, or, with failedAt, failed as disabling
// their endpoint leaves them. It returns how many it wrote.
func writeUnwritten(ctx context.Context, tx *sql.Tx, failedAt *time.Time, cond string, args ...any) (int64, error) {
	status, next, lastError, updated := `'pending'`, `u.next_attempt_at`, `''`, `u.updated_at`
	if failedAt != nil {
		status, next, lastError, updated = `'failed'`, `NULL`, `'`+disabledError+`'`, strconv.FormatInt(micros(*failedAt), 10)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type,
			status, attempt_count, round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
		SELECT u.id, u.tenant_id, u.event_seq, u.event_id, u.endpoint_id, u.event_type, `+status+`, 0, 0, `+next+`, 0,
			`+lastError+`, u.created_at, `+updated+` FROM unwritten_deliveries u WHERE `+cond, args...)
	if err != nil {
		return 0, fmt.Errorf("write unwritten deliveries: %w", err)
	}
	return res.RowsAffected()
}

// insertIdle writes window entries as the pending rows they stand for, but those whose event or
// endpoint is gone or that have a row already (a retry or a disabling wrote it).
var insertIdle = bulkStatement{
	head: `WITH v (id, tenant_id, event_seq, event_id, endpoint_id, event_type, next_at, created_at, updated_at) AS (VALUES `,
	row:  `(?,?,?,?,?,?,?,?,?)`,
	tail: `) INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
			round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
		SELECT v.id, v.tenant_id, v.event_seq, v.event_id, v.endpoint_id, v.event_type, 'pending', 0, 0, v.next_at, 0, '',
			v.created_at, v.updated_at FROM v
		WHERE EXISTS (SELECT 1 FROM events e WHERE e.seq = v.event_seq AND e.id = v.event_id)
			AND EXISTS (SELECT 1 FROM endpoints p WHERE p.id = v.endpoint_id AND p.tenant_id = v.tenant_id)
		ON CONFLICT (id) DO NOTHING`,
}

// writeIdle writes the window's entries that no claim holds as pending rows, and forgets them:
// what a claim does when the window is full and gives it less than it asked for (deliveries of
// endpoints it left out, or not due yet, hold the room the log's next deliveries need). The
// caller holds claimMu, so no claim leases them meanwhile.
func (s *Store) writeIdle(ctx context.Context, now int64) error {
	es := s.window.idle(now)
	if len(es) == 0 {
		return nil
	}
	err := s.write(ctx, "write idle unwritten deliveries", func(ctx context.Context, tx *sql.Tx) error {
		return s.exec(ctx, tx, insertIdle, len(es), func(dst []any, i int) []any {
			e := es[i]
			return append(dst, e.id, e.tenantID, e.seq, e.eventID, e.endpointID, e.eventType, e.next, e.created, e.updated)
		})
	})
	if err != nil {
		return err
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	s.window.forgetIDs(ids)
	return nil
}

// moveMark sets the mark as high as the window allows, if a second has passed since a write
// last did (always, with force). written are entries this write has given rows: the mark may
// pass them, since they commit together.
func (s *Store) moveMark(ctx context.Context, tx *sql.Tx, force bool, written map[string]*entry) error {
	w := s.window
	w.mu.Lock()
	if !force && time.Since(w.lastMark) < markEvery {
		w.mu.Unlock()
		return nil
	}
	w.lastMark = time.Now()
	m := w.loadedTo
	for id, e := range w.byID {
		if written[id] != e {
			m = min(m, e.seq)
		}
	}
	w.mu.Unlock()
	if _, err := tx.ExecContext(ctx, `UPDATE deferred_mark SET seq = max(seq, ?)`, m); err != nil {
		return fmt.Errorf("move the mark: %w", err)
	}
	return nil
}

// Unfinished returns how many deliveries of the SQLite store read through tx have no row yet
// (they are named by their event's row, see the package doc). A store closed cleanly has none;
// a tool that reads the tables directly, as storecopy does, must refuse a store that has some.
func Unfinished(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM unwritten_deliveries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unwritten deliveries: %w", err)
	}
	return n, nil
}
