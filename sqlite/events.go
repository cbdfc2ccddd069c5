package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
)

const eventCols = `seq, id, tenant_id, type, data, external_reference, created_at, request_id, traceparent`

// seqEvent is an event with its seq (publication order).
type seqEvent struct {
	seq int64
	e   *aviso.Event
}

func scanSeqEvent(sc scanner) (seqEvent, error) {
	var e aviso.Event
	var seq int64
	err := sc.Scan(append([]any{&seq}, eventDest(&e)...)...)
	return seqEvent{seq, &e}, err
}

// eventDest is the scan destinations of eventCols but seq, into e.
func eventDest(e *aviso.Event) []any {
	return []any{&e.ID, &e.TenantID, &e.Type, (*rawCol)(&e.Data), &e.ExternalReference, (*timeCol)(&e.CreatedAt),
		&e.RequestID, &e.TraceParent}
}

func scanEvent(sc scanner) (*aviso.Event, error) {
	e, err := scanSeqEvent(sc)
	return e.e, err
}

// The statements of InsertEvents.
var (
	// insertEventRows inserts events, skipping those whose (tenant_id, id) exists, and returns
	// the seqs of those it stored. Their seqs are the store's (see Store.nextSeq).
	insertEventRows = bulkStatement{
		head: `INSERT INTO events (seq, tenant_id, id, type, data, external_reference, created_at, request_id, traceparent) VALUES `,
		row:  `(?,?,?,?,?,?,?,?,?)`,
		tail: ` ON CONFLICT (tenant_id, id) DO NOTHING RETURNING seq`,
	}
	// insertDeliveryRows inserts deliveries as new (see aviso.NewEvent): pending, never attempted,
	// those whose endpoint exists, is the tenant's and is enabled, with their ordering key (the
	// event's reference, on an ordered endpoint). It returns the IDs of those it inserted. Only
	// what varies is bound: binding is a good part of a row's cost.
	//
	// A keyed delivery created behind a pending one of its endpoint and key (stored, or earlier in
	// the call: behind) is held: due aviso.OrderingHold after its due time, or when the latest
	// earlier one is if that is later (see aviso.Store.ClaimDeliveries; orderingPull brings it
	// forward once the one before it finishes).
	insertDeliveryRows = bulkStatement{
		head: `WITH v (id, tenant_id, event_seq, event_id, endpoint_id, event_type, next_at, created_at, updated_at, reference,
			behind) AS (VALUES `,
		row: `(?,?,?,?,?,?,?,?,?,?,?)`,
		tail: `) INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
			round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at, ordering_key)
		SELECT v.id, v.tenant_id, v.event_seq, v.event_id, v.endpoint_id, v.event_type, 'pending', 0, 0,
			CASE WHEN p.ordering = '' OR v.reference = '' THEN v.next_at
				WHEN v.behind THEN v.next_at + ` + holdMicros + `
				ELSE coalesce((SELECT max(v.next_at + ` + holdMicros + `, h.next_attempt_at) FROM deliveries h INDEXED BY deliveries_ordering
					WHERE h.endpoint_id = v.endpoint_id AND h.ordering_key = v.reference AND h.ordering_key <> ''
						AND h.status = 'pending' AND h.event_seq < v.event_seq ORDER BY h.event_seq DESC LIMIT 1), v.next_at) END,
			0, '', v.created_at, v.updated_at, CASE WHEN p.ordering <> '' THEN v.reference ELSE '' END
		FROM v JOIN endpoints p ON p.id = v.endpoint_id AND p.tenant_id = v.tenant_id AND p.disabled = 0
		RETURNING id`,
	}
	holdMicros = strconv.FormatInt(aviso.OrderingHold.Microseconds(), 10)
)

// InsertEvents stores events and their deliveries in one transaction; see aviso.Store. Events go
// in multi-row INSERT … ON CONFLICT DO NOTHING RETURNING statements (the rows not returned
// existed already), and the deliveries go in multi-row INSERTs that check their endpoints.
//
// Concurrent calls may share one body (see mergeInserts in groupcommit.go).
func (s *Store) InsertEvents(ctx context.Context, events []aviso.NewEvent) ([]aviso.InsertedEvent, error) {
	ins := &insertReq{events: events}
	req := &writeReq{ctx: ctx, op: "insert events", insert: ins, done: make(chan error, 1)}
	req.fn = func(ctx context.Context, tx *sql.Tx) (err error) {
		ins.out, ins.queued, err = s.insertEvents(ctx, tx, events)
		return err
	}
	if err := s.submit(req); err != nil {
		return nil, err
	}
	if ins.queued {
		s.wake()
	}
	s.signalPublished(ins.out)
	return ins.out, nil
}

// insertReq is an InsertEvents call: its events, and once run, what was stored and whether a
// delivery was queued.
type insertReq struct {
	events []aviso.NewEvent
	out    []aviso.InsertedEvent
	queued bool
}

// insertEvents is the body of InsertEvents: it returns the events in order, stored or found,
// and whether it queued a delivery.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, events []aviso.NewEvent) ([]aviso.InsertedEvent, bool, error) {
	out := make([]aviso.InsertedEvent, 0, len(events))
	// The events take the seqs from s.nextSeq on, in order; the seqs of those that exist
	// already are skipped: a gap, never a reuse.
	first := s.nextSeq
	s.nextSeq += int64(len(events))
	created, err := s.queryIDs(ctx, tx, insertEventRows, len(events), func(dst []any, i int) []any {
		ev := events[i].Event
		return append(dst, first+int64(i), ev.TenantID, ev.ID, ev.Type, string(ev.Data), ev.ExternalReference,
			micros(ev.CreatedAt), ev.RequestID, ev.TraceParent)
	})
	if err != nil {
		return nil, false, fmt.Errorf("insert events: %w", err)
	}
	type newDelivery struct {
		d                  *aviso.Delivery
		seq                int64
		eventID, reference string
		behind             bool // an earlier event of the call has a delivery of its endpoint and reference
	}
	var ds []newDelivery
	keyed := map[[2]string]bool{}
	for i, ne := range events {
		ev, seq := ne.Event, first+int64(i)
		if !created[strconv.FormatInt(seq, 10)] {
			// It existed before, or earlier in this batch.
			stored, err := scanEvent(tx.QueryRowContext(ctx, getEventSQL, ev.TenantID, ev.ID))
			if err != nil {
				return nil, false, fmt.Errorf("event %s: %w", ev.ID, err)
			}
			out = append(out, aviso.InsertedEvent{Event: stored})
			continue
		}
		for _, d := range ne.Deliveries {
			k := [2]string{d.EndpointID, ev.ExternalReference}
			ds = append(ds, newDelivery{d, seq, ev.ID, ev.ExternalReference, keyed[k]})
			keyed[k] = ev.ExternalReference != ""
		}
		stored := *ev
		stored.CreatedAt = fromMicros(micros(ev.CreatedAt))
		out = append(out, aviso.InsertedEvent{Event: &stored, Created: true})
	}
	// In ID order, every index the rows go into takes them in its own order (IDs are
	// time-ordered, but random within a millisecond, and a batch shares one): appended at the
	// end of each b-tree rather than scattered over its last pages, which splits them half full.
	slices.SortFunc(ds, func(a, b newDelivery) int { return strings.Compare(a.d.ID, b.d.ID) })
	queued, err := s.queryIDs(ctx, tx, insertDeliveryRows, len(ds), func(dst []any, i int) []any {
		d := ds[i].d
		return append(dst, d.ID, d.TenantID, ds[i].seq, ds[i].eventID, d.EndpointID, d.EventType,
			microsPtr(d.NextAttemptAt), micros(d.CreatedAt), micros(d.UpdatedAt), ds[i].reference, ds[i].behind)
	})
	if err != nil {
		return nil, false, fmt.Errorf("insert deliveries: %w", err)
	}
	return out, len(queued) > 0, nil
}

const getEventSQL = `SELECT ` + eventCols + ` FROM events WHERE tenant_id = ? AND id = ?`

// GetEvent returns one event of a tenant. ENOTFOUND.
func (s *Store) GetEvent(ctx context.Context, tenantID, id string) (*aviso.Event, error) {
	return get(ctx, s, "get event", scanEvent, getEventSQL, tenantID, id)
}

// ListEvents lists a tenant's events in publication order; see aviso.Store. The cursor is the
// last event's seq.
func (s *Store) ListEvents(ctx context.Context, p aviso.ListEventsParams) (*aviso.Page[*aviso.Event], error) {
	stmt, args, err := listEventsSQL(p)
	if err != nil {
		return nil, err
	}
	pg, err := list(ctx, s, "list events", p.Size(), scanSeqEvent, func(e seqEvent) string { return strconv.FormatInt(e.seq, 10) },
		stmt, args...)
	if err != nil {
		return nil, err
	}
	out := &aviso.Page[*aviso.Event]{Data: make([]*aviso.Event, len(pg.Data)), NextCursor: pg.NextCursor, HasMore: pg.HasMore}
	for i, e := range pg.Data {
		out.Data[i] = e.e
	}
	return out, nil
}

// listEventsSQL is ListEvents' statement and its arguments. Every filter's page is read in
// order from an index (TestListPlans checks the plans).
func listEventsSQL(p aviso.ListEventsParams) (string, []any, error) {
	q := &query{}
	q.where("tenant_id = ?", p.TenantID)
	if p.Type != "" {
		q.where("type = ?", p.Type)
	}
	from := " FROM events"
	if p.ExternalReference != "" {
		// The partial index's own condition, spelled out: SQLite uses a partial index only for a
		// query whose terms include it.
		from = " FROM events INDEXED BY events_tenant_reference"
		q.where("external_reference = ? AND external_reference <> ''", p.ExternalReference)
	}
	if len(p.IDs) > 0 {
		// Looked up one by one in the UNIQUE (tenant_id, id) index and sorted: a page at most.
		from = " FROM events INDEXED BY sqlite_autoindex_events_1"
		ids := make([]any, len(p.IDs))
		for i, id := range p.IDs {
			ids[i] = id
		}
		q.where("id IN (?"+strings.Repeat(", ?", len(p.IDs)-1)+")", ids...)
	}
	if p.After != "" {
		seq, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil {
			return "", nil, aviso.Invalid("after", "is not a cursor from a previous page")
		}
		if p.Desc {
			q.where("seq < ?", seq)
		} else {
			q.where("seq > ?", seq)
		}
	}
	order := "seq"
	if p.Desc {
		order = "seq DESC"
	}
	return `SELECT ` + eventCols + from + q.sql() + ` ORDER BY ` + order + ` LIMIT ?`, append(q.args, p.Size()+1), nil
}

// query collects the conditions of a WHERE clause.
type query struct {
	conds []string
	args  []any
}

func (q *query) where(cond string, args ...any) {
	q.conds = append(q.conds, cond)
	q.args = append(q.args, args...)
}

func (q *query) sql() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

const deliveryCols = `d.id, d.tenant_id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempt_count, d.round_attempts,
	d.next_attempt_at, d.last_response_status, d.last_error, d.created_at, d.updated_at`

// deliveryReturning is deliveryCols for a RETURNING clause, which takes no table qualifiers.
const deliveryReturning = `id, tenant_id, event_id, endpoint_id, event_type, status, attempt_count, round_attempts,
	next_attempt_at, last_response_status, last_error, created_at, updated_at`

func scanDelivery(sc scanner, extra ...any) (*aviso.Delivery, error) {
	var d aviso.Delivery
	err := sc.Scan(append([]any{&d.ID, &d.TenantID, &d.EventID, &d.EndpointID, &d.EventType, (*string)(&d.Status),
		&d.AttemptCount, &d.RoundAttempts, optTimeCol{&d.NextAttemptAt}, &d.LastResponseStatus, &d.LastError,
		(*timeCol)(&d.CreatedAt), (*timeCol)(&d.UpdatedAt)}, extra...)...)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func scanDeliveryRow(sc scanner) (*aviso.Delivery, error) { return scanDelivery(sc) }

const attemptCols = `id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers, response_status,
	response_body, duration_ms, error`

func scanAttempt(sc scanner) (aviso.Attempt, error) {
	var a aviso.Attempt
	err := sc.Scan(&a.ID, &a.DeliveryID, &a.TenantID, &a.EndpointID, &a.EventID, (*timeCol)(&a.At), &a.URL,
		(*mapCol)(&a.RequestHeaders), &a.ResponseStatus, &a.ResponseBody, &a.DurationMS, &a.Error)
	return a, err
}

// GetDelivery returns one delivery with its attempts, oldest first. ENOTFOUND.
func (s *Store) GetDelivery(ctx context.Context, tenantID, id string) (*aviso.Delivery, error) {
	var d *aviso.Delivery
	err := s.read(ctx, "get delivery", func(tx *sql.Tx) (err error) {
		d, err = scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries d
			WHERE d.tenant_id = ? AND d.id = ?`, tenantID, id))
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+attemptCols+` FROM attempts WHERE delivery_id = ? ORDER BY at, id`, id)
		if err != nil {
			return err
		}
		d.Attempts, err = collect(rows, scanAttempt)
		return err
	})
	return d, err
}

// ListDeliveries lists a tenant's deliveries by ID; see aviso.Store. The cursor is the last ID.
func (s *Store) ListDeliveries(ctx context.Context, p aviso.ListDeliveriesParams) (*aviso.Page[*aviso.Delivery], error) {
	stmt, args := listDeliveriesSQL(p)
	return list(ctx, s, "list deliveries", p.Size(), scanDeliveryRow, func(d *aviso.Delivery) string { return d.ID },
		stmt, args...)
}

// listDeliveriesSQL is ListDeliveries' statement and its arguments (TestListPlans checks the
// plans).
func listDeliveriesSQL(p aviso.ListDeliveriesParams) (string, []any) {
	q := &query{}
	q.where("d.tenant_id = ?", p.TenantID)
	if p.EventID != "" {
		q.where("d.event_seq = (SELECT seq FROM events WHERE tenant_id = ? AND id = ?)", p.TenantID, p.EventID)
	}
	if p.EndpointID != "" {
		q.where("d.endpoint_id = ?", p.EndpointID)
	}
	switch p.Status {
	case "":
	case aviso.StatusFailed:
		q.where("d.status = 'failed'") // a literal, as the partial index's own condition
	default:
		q.where("d.status = ?", string(p.Status))
	}
	if p.EventType != "" {
		q.where("d.event_type = ?", p.EventType)
	}
	if p.ExternalReference != "" {
		q.where("d.event_seq IN (SELECT seq FROM events WHERE tenant_id = ? AND external_reference = ? AND external_reference <> '')",
			p.TenantID, p.ExternalReference)
	}
	// IDs are minted at creation (see aviso.Store.InsertEvents), so a time window is also an ID
	// range, which every index used here is ordered by.
	if !p.Since.IsZero() {
		q.where("d.created_at >= ? AND d.id >= ?", micros(p.Since), aviso.IDFloor(aviso.PrefixDelivery, p.Since))
	}
	if !p.Until.IsZero() {
		q.where("d.created_at < ? AND d.id < ?", micros(p.Until), aviso.IDCeiling(aviso.PrefixDelivery, p.Until))
	}
	order := "1"
	switch {
	case p.Desc && p.After != "":
		q.where("d.id < ?", p.After)
	case p.After != "":
		q.where("d.id > ?", p.After)
	}
	if p.Desc {
		order = "1 DESC"
	}
	// Without the planner's statistics SQLite would page every listing through deliveries_tenant
	// (it gives the ID order), walking the whole tenant's deliveries to find one event's, one
	// endpoint's or the failed ones. These filters name the index that holds just those.
	from := " FROM deliveries d"
	switch {
	case p.EventID != "":
		from = " FROM deliveries d INDEXED BY deliveries_event"
	case p.Status == aviso.StatusFailed:
		from = " FROM deliveries d INDEXED BY deliveries_failed"
	case p.EndpointID != "":
		from = " FROM deliveries d INDEXED BY deliveries_endpoint"
	}
	return `SELECT ` + deliveryCols + from + q.sql() + ` ORDER BY ` + order + ` LIMIT ?`, append(q.args, p.Size()+1)
}

// requeue is the SET clause that queues a delivery for an attempt at ?1 with a fresh round.
const requeue = `status = 'pending', next_attempt_at = ?1, round_attempts = 0, updated_at = ?1`

// RetryDelivery queues a delivery for an attempt now. ENOTFOUND.
func (s *Store) RetryDelivery(ctx context.Context, tenantID, id string, now time.Time) (*aviso.Delivery, error) {
	var d *aviso.Delivery
	err := s.write(ctx, "retry delivery", func(ctx context.Context, tx *sql.Tx) (err error) {
		d, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE deliveries SET `+requeue+`
			WHERE tenant_id = ?2 AND id = ?3 RETURNING `+deliveryReturning, micros(now), tenantID, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.leases.drop([]string{d.ID}) // queued again: claimable at once, as the requeue says
	s.wake()
	return d, nil
}

// ReplayDeliveries queues again an endpoint's failed (or, with All, finished) deliveries created
// at or after Since. ENOTFOUND if the endpoint does not exist.
func (s *Store) ReplayDeliveries(ctx context.Context, p aviso.ReplayParams) (int, error) {
	var n int64
	err := s.write(ctx, "replay deliveries", func(ctx context.Context, tx *sql.Tx) error {
		if err := endpointExists(ctx, tx, p.TenantID, p.EndpointID); err != nil {
			return err
		}
		statuses := `'failed'`
		if p.All {
			statuses = `'failed', 'succeeded'`
		}
		res, err := tx.ExecContext(ctx, `UPDATE deliveries INDEXED BY deliveries_endpoint SET `+requeue+`
			WHERE endpoint_id = ?2 AND id >= ?4 AND created_at >= ?3 AND created_at < ?5 AND status IN (`+statuses+`)`,
			micros(p.Now), p.EndpointID, micros(p.Since), aviso.IDFloor(aviso.PrefixDelivery, p.Since), untilMicros(p.Until))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.wake()
	}
	return int(n), nil
}

// CreateMissedDeliveries writes a pending row for each event of the window that has no delivery
// to the endpoint; see aviso.Store.
// ENOTFOUND if the endpoint does not exist.
func (s *Store) CreateMissedDeliveries(ctx context.Context, p aviso.MissedParams) (int, error) {
	var n int
	err := s.write(ctx, "create missed deliveries", func(ctx context.Context, tx *sql.Tx) error {
		if err := endpointExists(ctx, tx, p.TenantID, p.EndpointID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT e.seq, e.id, e.type, e.external_reference FROM events e
			WHERE e.tenant_id = ?1 AND e.created_at >= ?2 AND e.created_at < ?3
				AND (json_array_length(?4) = 0 OR e.type IN (SELECT value FROM json_each(?4)))
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.endpoint_id = ?5)
			ORDER BY e.seq`, p.TenantID, micros(p.Since), untilMicros(p.Until), idList(p.Types), p.EndpointID)
		if err != nil {
			return err
		}
		type missed struct {
			seq          int64
			id, typ, ref string
		}
		ms, err := collect(rows, func(sc scanner) (m missed, err error) { return m, sc.Scan(&m.seq, &m.id, &m.typ, &m.ref) })
		if err != nil {
			return err
		}
		n = len(ms)
		now := micros(p.Now)
		behind, seen := make([]bool, len(ms)), map[string]bool{}
		for i, m := range ms {
			behind[i], seen[m.ref] = seen[m.ref], m.ref != ""
		}
		return s.exec(ctx, tx, insertDeliveryRows, len(ms), func(dst []any, i int) []any {
			return append(dst, aviso.NewID(aviso.PrefixDelivery, p.Now), p.TenantID, ms[i].seq, ms[i].id, p.EndpointID,
				ms[i].typ, now, now, now, ms[i].ref, behind[i])
		})
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.wake()
	}
	return n, nil
}

// endpointExists is ENOTFOUND unless the tenant has the endpoint.
func endpointExists(ctx context.Context, tx *sql.Tx, tenantID, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM endpoints WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(&one)
	if err == sql.ErrNoRows {
		return notFound("get endpoint")
	}
	return err
}

// untilMicros is an optional end of a time window: the zero time for none.
func untilMicros(t time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	return micros(t)
}
