package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/jackc/pgx/v5"
)

// eventKey identifies an event: IDs are unique per tenant.
type eventKey struct{ tenant, id string }

// insertEventsSQL inserts events ($1–$6, $15–$16), skipping those whose (tenant_id, id) exists, and the
// deliveries ($7–$14) of the events it created, skipping those of endpoints deleted or disabled,
// in one statement; it returns the keys of the events created, each with how many deliveries went
// in (the same count on every row). A keyed delivery goes in held (heldAt, $17 the hold in
// microseconds) when an earlier one of its endpoint and key is pending, stored already or earlier
// in the batch.
var insertEventsSQL = `WITH ev AS (
		INSERT INTO events (tenant_id, id, type, data, external_reference, created_at, request_id, traceparent)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::json[], $5::text[], $6::timestamptz[],
			$15::text[], $16::text[])
		ON CONFLICT (tenant_id, id) DO NOTHING
		RETURNING tenant_id, id, seq, external_reference
	), nd AS (
		SELECT x.*, ev.seq, CASE WHEN ep.ordering <> '' THEN ev.external_reference ELSE '' END AS key
		FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[],
			$13::timestamptz[], $14::timestamptz[])
			AS x(id, tenant_id, event_id, endpoint_id, event_type, next_at, created_at, updated_at)
		JOIN ev ON ev.tenant_id = x.tenant_id AND ev.id = x.event_id
		JOIN endpoints ep ON ep.id = x.endpoint_id AND ep.tenant_id = x.tenant_id AND NOT ep.disabled
	), dl AS (
		INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, event_type, status, next_attempt_at,
			created_at, updated_at, event_seq, ordering_key)
		SELECT nd.id, nd.tenant_id, nd.event_id, nd.endpoint_id, nd.event_type, 'pending', ` + heldAt("$17") + `,
			nd.created_at, nd.updated_at, nd.seq, nd.key
		FROM (SELECT nd.*, row_number() OVER (PARTITION BY nd.endpoint_id, nd.key ORDER BY nd.seq) AS rank FROM nd) nd
		RETURNING 1
	)
	SELECT tenant_id, id, (SELECT count(*) FROM dl) FROM ev`

// lockOrderedSQL locks, FOR SHARE in ID order, the ordered endpoints among $1, before an insert
// of keyed deliveries in the same transaction: a completion locks its endpoints FOR NO KEY UPDATE
// first (completeSet, completeSQL), so the two wait for each other. The insert's snapshot, taken
// after the lock, then sees every completion before it, and a completion after it sees the rows
// it inserted (its orderingPull brings forward the one held behind the delivery it finishes):
// without the lock, a delivery finishing while the insert runs would leave the next one of its
// key held for the whole of aviso.OrderingHold. Both lock in ID order, so they cannot deadlock.
const lockOrderedSQL = `SELECT 1 FROM endpoints WHERE id = ANY($1::text[]) AND ordering <> '' ORDER BY id FOR SHARE`

// heldAt is the due time of a new delivery nd (next_at, endpoint_id, key, seq, and rank: its
// place among the batch's deliveries of its endpoint and key): a keyed one behind an earlier
// pending one of its endpoint and key, in the batch (rank > 1) or stored (the latest, by one
// probe of deliveries_ordering_idx backwards), is due aviso.OrderingHold (hold, a placeholder
// for microseconds) after next_at, or when the latest stored one is if that is later (it cannot
// go before it). The rule stays notHeld's, so a snapshot that cannot see an earlier one's
// completion, committing meanwhile, holds the new one for the hold at most; once the earlier one
// finishes, orderingPull brings the next one forward at once.
func heldAt(hold string) string {
	return `CASE WHEN nd.key = '' THEN nd.next_at ELSE (SELECT CASE WHEN nd.rank > 1 OR a.at IS NOT NULL
			THEN greatest(nd.next_at + ` + hold + `::bigint * interval '1 microsecond', a.at) ELSE nd.next_at END
		FROM (SELECT (SELECT p.next_attempt_at FROM deliveries p
			WHERE p.endpoint_id = nd.endpoint_id AND p.ordering_key = nd.key AND p.ordering_key <> ''
				AND p.status = 'pending' AND p.event_seq < nd.seq
			ORDER BY p.event_seq DESC LIMIT 1) AS at) a) END`
}

// InsertEvents stores events and their deliveries in one statement, so in one round trip and a
// transaction of its own, whatever the batch size (insertEventsSQL): the events go in as arrays
// with ON CONFLICT DO NOTHING, so an ID that exists (committed by any node, or earlier in the
// batch) is skipped, and the deliveries go in only for the events created. A concurrent insert of
// the same ID on another node waits on the unique index and then takes the DO NOTHING branch, so
// exactly one event is created. The events that existed are read back afterwards.
func (s *Store) InsertEvents(ctx context.Context, events []aviso.NewEvent) ([]aviso.InsertedEvent, error) {
	if len(events) == 0 {
		return []aviso.InsertedEvent{}, nil
	}
	n := len(events)
	tenants, ids, types, datas, refs := make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]string, n)
	created := make([]time.Time, n)
	reqIDs, traces := make([]string, n), make([]string, n)
	// The deliveries of each key's first occurrence: the one that is created, if any is.
	var dIDs, dTenants, dEvents, dEndpoints, dTypes []string
	var dNext []*time.Time
	var dCreated, dUpdated []time.Time
	first := make(map[eventKey]int, n)
	for i, ne := range events {
		e := ne.Event
		tenants[i], ids[i], types[i], refs[i], created[i] = e.TenantID, e.ID, e.Type, e.ExternalReference, e.CreatedAt
		reqIDs[i], traces[i] = e.RequestID, e.TraceParent
		if len(e.Data) > 0 {
			d := string(e.Data)
			datas[i] = &d
		}
		k := eventKey{e.TenantID, e.ID}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		for _, d := range ne.Deliveries {
			dIDs, dTenants, dEvents = append(dIDs, d.ID), append(dTenants, e.TenantID), append(dEvents, e.ID)
			dEndpoints, dTypes = append(dEndpoints, d.EndpointID), append(dTypes, d.EventType)
			dNext, dCreated, dUpdated = append(dNext, d.NextAttemptAt), append(dCreated, d.CreatedAt), append(dUpdated, d.UpdatedAt)
		}
	}
	// The endpoints of the deliveries of events with a reference: those that are ordered are
	// locked first (lockOrderedSQL).
	var keyed []string
	for _, i := range first {
		if events[i].Event.ExternalReference == "" {
			continue
		}
		for _, d := range events[i].Deliveries {
			keyed = append(keyed, d.EndpointID)
		}
	}
	slices.Sort(keyed)
	keyed = slices.Compact(keyed)
	var fresh map[eventKey]bool
	var inserted int64
	err := retry(ctx, func() error {
		args := []any{tenants, ids, types, datas, refs, created,
			dIDs, dTenants, dEvents, dEndpoints, dTypes, dNext, dCreated, dUpdated, reqIDs, traces, aviso.OrderingHold.Microseconds()}
		var rows pgx.Rows
		var br pgx.BatchResults
		if len(keyed) == 0 {
			var err error
			if rows, err = s.pool.Query(ctx, insertEventsSQL, args...); err != nil {
				return err
			}
		} else {
			// One round trip, one (implicit) transaction: the lock, then the insert.
			b := &pgx.Batch{}
			b.Queue(lockOrderedSQL, keyed)
			b.Queue(insertEventsSQL, args...)
			br = s.pool.SendBatch(ctx, b)
			defer br.Close()
			if _, err := br.Exec(); err != nil {
				return err
			}
			var err error
			if rows, err = br.Query(); err != nil {
				return err
			}
		}
		fresh, inserted = make(map[eventKey]bool, n), 0
		for rows.Next() {
			var k eventKey
			if err := rows.Scan(&k.tenant, &k.id, &inserted); err != nil {
				rows.Close()
				return err
			}
			fresh[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil || br == nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return nil, dbError("insert events", "event", err)
	}
	if inserted > 0 {
		s.signal()
	}
	var published []string // the tenants of the events created
	for k := range fresh {
		if !slices.Contains(published, k.tenant) {
			published = append(published, k.tenant)
		}
	}
	s.signalPublished(published)

	// The first occurrence of a fresh key was created; everything else is read back.
	out := make([]aviso.InsertedEvent, n)
	var oldT, oldI []string
	for i, ne := range events {
		k := eventKey{ne.Event.TenantID, ne.Event.ID}
		if fresh[k] && first[k] == i {
			e := *ne.Event
			e.CreatedAt = dbTime(e.CreatedAt)
			out[i] = aviso.InsertedEvent{Event: &e, Created: true}
			continue
		}
		oldT, oldI = append(oldT, k.tenant), append(oldI, k.id)
	}
	if len(oldT) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventCols+` FROM events ev
		JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, id) ON ev.tenant_id = k.tenant_id AND ev.id = k.id`,
		oldT, oldI)
	if err != nil {
		return nil, dbError("insert events: read back the events that existed", "event", err)
	}
	existing, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*aviso.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, dbError("insert events: read back the events that existed", "event", err)
	}
	byKey := make(map[eventKey]*aviso.Event, len(existing))
	for _, e := range existing {
		byKey[eventKey{e.TenantID, e.ID}] = e
	}
	for i, ne := range events {
		if out[i].Event != nil {
			continue
		}
		e, ok := byKey[eventKey{ne.Event.TenantID, ne.Event.ID}]
		if !ok {
			return nil, fmt.Errorf("insert events: event %s of tenant %s neither inserted nor found", ne.Event.ID, ne.Event.TenantID)
		}
		out[i] = aviso.InsertedEvent{Event: e}
	}
	return out, nil
}

const eventCols = `ev.seq, ev.tenant_id, ev.id, ev.type, ev.data, ev.external_reference, ev.created_at, ev.request_id, ev.traceparent`

// scanEventSeq reads eventCols and returns the event with its sequence number (the list cursor).
func scanEventSeq(row pgx.Row) (*aviso.Event, int64, error) {
	var e aviso.Event
	var seq int64
	var data []byte
	if err := row.Scan(&seq, &e.TenantID, &e.ID, &e.Type, &data, &e.ExternalReference, &e.CreatedAt, &e.RequestID, &e.TraceParent); err != nil {
		return nil, 0, err
	}
	if data != nil {
		e.Data = data
	}
	e.CreatedAt = utc(e.CreatedAt)
	return &e, seq, nil
}

func scanEvent(row pgx.Row) (*aviso.Event, error) {
	e, _, err := scanEventSeq(row)
	return e, err
}

// GetEvent returns one event of a tenant. ENOTFOUND.
func (s *Store) GetEvent(ctx context.Context, tenantID, id string) (*aviso.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventCols+` FROM events ev WHERE ev.tenant_id = $1 AND ev.id = $2`,
		tenantID, id))
	if err != nil {
		return nil, dbError("get event", "event", err)
	}
	return e, nil
}

// ListEvents lists a tenant's events in publication order (by seq); the cursor is the last seq.
func (s *Store) ListEvents(ctx context.Context, p aviso.ListEventsParams) (*aviso.Page[*aviso.Event], error) {
	var after *int64
	if p.After != "" {
		v, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil {
			return nil, aviso.Errorf(aviso.EBADREQUEST, "invalid cursor")
		}
		after = &v
	}
	order, cmp := "ASC", ">"
	if p.Desc {
		order, cmp = "DESC", "<"
	}
	// Only the filters given are in the statement, as in ListDeliveries.
	q := &query{}
	q.where("ev.tenant_id = ?", p.TenantID)
	if after != nil {
		q.where("ev.seq "+cmp+" ?", *after)
	}
	if p.Type != "" {
		q.where("ev.type = ?", p.Type)
	}
	if p.ExternalReference != "" {
		// With the partial index's own condition, a generic plan can use events_tenant_ref_idx too.
		q.where("ev.external_reference = ? AND ev.external_reference <> ''", p.ExternalReference)
	}
	if len(p.IDs) > 0 {
		q.where("ev.id = ANY(?::text[])", p.IDs)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventCols+` FROM events ev`+q.sql()+`
		ORDER BY ev.seq `+order+` LIMIT `+q.arg(p.Size()+1), q.args...)
	if err != nil {
		return nil, dbError("list events", "event", err)
	}
	defer rows.Close()
	page := &aviso.Page[*aviso.Event]{Data: []*aviso.Event{}}
	var last int64
	for rows.Next() {
		e, seq, err := scanEventSeq(rows)
		if err != nil {
			return nil, dbError("list events", "event", err)
		}
		if len(page.Data) == p.Size() {
			page.HasMore = true
			break
		}
		page.Data, last = append(page.Data, e), seq
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list events", "event", err)
	}
	if page.HasMore {
		page.NextCursor = strconv.FormatInt(last, 10)
	}
	return page, nil
}

const deliveryCols = `d.id, d.tenant_id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempt_count,
	d.round_attempts, d.next_attempt_at, d.last_response_status, d.last_error, d.created_at, d.updated_at`

func deliveryDest(d *aviso.Delivery, status *string) []any {
	return []any{&d.ID, &d.TenantID, &d.EventID, &d.EndpointID, &d.EventType, status, &d.AttemptCount,
		&d.RoundAttempts, &d.NextAttemptAt, &d.LastResponseStatus, &d.LastError, &d.CreatedAt, &d.UpdatedAt}
}

func fixDelivery(d *aviso.Delivery, status string) {
	d.Status = aviso.DeliveryStatus(status)
	d.NextAttemptAt = utcPtr(d.NextAttemptAt)
	d.CreatedAt, d.UpdatedAt = utc(d.CreatedAt), utc(d.UpdatedAt)
}

func scanDelivery(row pgx.Row) (*aviso.Delivery, error) {
	var d aviso.Delivery
	var status string
	if err := row.Scan(deliveryDest(&d, &status)...); err != nil {
		return nil, err
	}
	fixDelivery(&d, status)
	return &d, nil
}

const attemptCols = `a.id, a.delivery_id, a.tenant_id, a.endpoint_id, a.event_id, a.at, a.url, a.request_headers,
	a.response_status, a.response_body, a.duration_ms, a.error`

func scanAttempt(row pgx.Row) (aviso.Attempt, error) {
	var a aviso.Attempt
	err := row.Scan(&a.ID, &a.DeliveryID, &a.TenantID, &a.EndpointID, &a.EventID, &a.At, &a.URL, &a.RequestHeaders,
		&a.ResponseStatus, &a.ResponseBody, &a.DurationMS, &a.Error)
	a.At = utc(a.At)
	a.RequestHeaders = nonNilMap(a.RequestHeaders)
	return a, err
}

// GetDelivery returns one delivery with its attempts, oldest first. ENOTFOUND.
func (s *Store) GetDelivery(ctx context.Context, tenantID, id string) (*aviso.Delivery, error) {
	var d *aviso.Delivery
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryCols+` FROM deliveries d
			WHERE d.tenant_id = $1 AND d.id = $2`, tenantID, id))
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+attemptCols+` FROM attempts a WHERE a.delivery_id = $1
			ORDER BY a.at, a.id`, id)
		if err != nil {
			return err
		}
		d.Attempts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (aviso.Attempt, error) { return scanAttempt(r) })
		return err
	})
	if err != nil {
		return nil, dbError("get delivery", "delivery", err)
	}
	return d, nil
}

// ListDeliveries lists a tenant's deliveries by ID; the cursor is the last ID. Only the filters
// given are in the statement, so each combination gets a plan of its own (an event's deliveries
// through deliveries_event_idx, an endpoint's through deliveries_endpoint_idx, the failed ones
// through deliveries_failed_idx) rather than one generic plan that walks the tenant's log.
func (s *Store) ListDeliveries(ctx context.Context, p aviso.ListDeliveriesParams) (*aviso.Page[*aviso.Delivery], error) {
	order, cmp := "ASC", ">"
	if p.Desc {
		order, cmp = "DESC", "<"
	}
	q := &query{}
	q.where("d.tenant_id = ?", p.TenantID)
	if p.After != "" {
		q.where("d.id "+cmp+" ?", p.After)
	}
	if p.EventID != "" {
		q.where("d.event_id = ?", p.EventID)
	}
	if p.EndpointID != "" {
		q.where("d.endpoint_id = ?", p.EndpointID)
	}
	switch p.Status {
	case "":
	case aviso.StatusFailed:
		q.conds = append(q.conds, "d.status = 'failed'") // a literal: it selects deliveries_failed_idx
	default:
		q.where("d.status = ?", string(p.Status))
	}
	if p.EventType != "" {
		q.where("d.event_type = ?", p.EventType)
	}
	if p.ExternalReference != "" {
		q.where("d.event_id IN (SELECT r.id FROM events r WHERE r.tenant_id = d.tenant_id AND r.external_reference = ? AND r.external_reference <> '')",
			p.ExternalReference)
	}
	// IDs are minted at creation (see aviso.Store.InsertEvents), so a time window is also an ID
	// range, which the indexes used here are ordered by.
	if !p.Since.IsZero() {
		q.where("d.created_at >= ?", p.Since)
		q.where("d.id >= ?", aviso.IDFloor(aviso.PrefixDelivery, p.Since))
	}
	if !p.Until.IsZero() {
		q.where("d.created_at < ?", p.Until)
		q.where("d.id < ?", aviso.IDCeiling(aviso.PrefixDelivery, p.Until))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+` FROM deliveries d`+q.sql()+`
		ORDER BY d.id `+order+` LIMIT `+q.arg(p.Size()+1), q.args...)
	if err != nil {
		return nil, dbError("list deliveries", "delivery", err)
	}
	page, err := collectPage(rows, p.Size(), scanDelivery, func(d *aviso.Delivery) string { return d.ID })
	return page, dbError("list deliveries", "delivery", err)
}

// query gathers a statement's conditions and their arguments, numbering the placeholders.
type query struct {
	conds []string
	args  []any
}

// where adds a condition whose one placeholder is written "?".
func (q *query) where(cond string, arg any) {
	q.conds = append(q.conds, strings.Replace(cond, "?", q.arg(arg), 1))
}

// arg adds an argument and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *query) sql() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// RetryDelivery queues a delivery for an attempt at now with a fresh round. ENOTFOUND.
func (s *Store) RetryDelivery(ctx context.Context, tenantID, id string, now time.Time) (*aviso.Delivery, error) {
	var d *aviso.Delivery
	err := retry(ctx, func() error { // one statement: a transaction of its own
		var err error
		d, err = scanDelivery(s.pool.QueryRow(ctx, `UPDATE deliveries d SET status = 'pending', next_attempt_at = $3,
				round_attempts = 0, lease_owner = NULL, lease_until = NULL, updated_at = $3
			WHERE d.tenant_id = $1 AND d.id = $2 RETURNING `+deliveryCols, tenantID, id, now))
		return err
	})
	if err != nil {
		return nil, dbError("retry delivery", "delivery", err)
	}
	s.signal()
	return d, nil
}

// ReplayDeliveries queues again an endpoint's failed (or, with All, finished) deliveries created
// at or after Since. ENOTFOUND if the endpoint does not exist.
func (s *Store) ReplayDeliveries(ctx context.Context, p aviso.ReplayParams) (int, error) {
	var n int
	var until *time.Time
	if !p.Until.IsZero() {
		until = &p.Until
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM endpoints WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, p.EndpointID).Scan(&one); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $3,
				round_attempts = 0, lease_owner = NULL, lease_until = NULL, updated_at = $3
			WHERE endpoint_id = $1 AND id >= $5 AND created_at >= $2 AND ($6::timestamptz IS NULL OR created_at < $6)
				AND (status = 'failed' OR ($4 AND status = 'succeeded'))`,
			p.EndpointID, p.Since, p.Now, p.All, aviso.IDFloor(aviso.PrefixDelivery, p.Since), until)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return 0, dbError("replay deliveries", "endpoint", err)
	}
	if n > 0 {
		s.signal()
	}
	return n, nil
}

// CreateMissedDeliveries creates a pending delivery for each event of the window that has none
// to the endpoint; see aviso.Store. ENOTFOUND if the endpoint does not exist.
func (s *Store) CreateMissedDeliveries(ctx context.Context, p aviso.MissedParams) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var ordering string
		if err := tx.QueryRow(ctx, `SELECT ordering FROM endpoints WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE`, // one missed replay of an endpoint at a time
			p.TenantID, p.EndpointID).Scan(&ordering); err != nil {
			return err
		}
		var until *time.Time
		if !p.Until.IsZero() {
			until = &p.Until
		}
		rows, err := tx.Query(ctx, `SELECT ev.id, ev.type FROM events ev
			WHERE ev.tenant_id = $1 AND ev.created_at >= $2 AND ($3::timestamptz IS NULL OR ev.created_at < $3)
				AND (cardinality($4::text[]) = 0 OR ev.type = ANY($4::text[]))
				AND NOT EXISTS (SELECT 1 FROM deliveries d
					WHERE d.tenant_id = ev.tenant_id AND d.event_id = ev.id AND d.endpoint_id = $5)
			ORDER BY ev.seq`, p.TenantID, p.Since, until, nonNil(p.Types), p.EndpointID)
		if err != nil {
			return err
		}
		var ids, events, types []string
		for rows.Next() {
			var id, typ string
			if err := rows.Scan(&id, &typ); err != nil {
				rows.Close()
				return err
			}
			ids, events, types = append(ids, aviso.NewID(aviso.PrefixDelivery, p.Now)), append(events, id), append(types, typ)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		// Held as InsertEvents holds them (heldAt): behind a pending one of its key, or an earlier
		// one created here.
		tag, err := tx.Exec(ctx, `INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, event_type, status,
				next_attempt_at, created_at, updated_at, event_seq, ordering_key)
			SELECT nd.id, $1, nd.event_id, $2, nd.event_type, 'pending', `+heldAt("$8")+`, $3, $3, nd.seq, nd.key
			FROM (SELECT nd.*, row_number() OVER (PARTITION BY nd.key ORDER BY nd.seq) AS rank
				FROM (SELECT x.*, $2 AS endpoint_id, $3::timestamptz AS next_at, ev.seq,
						CASE WHEN $7 <> '' THEN ev.external_reference ELSE '' END AS key
					FROM unnest($4::text[], $5::text[], $6::text[]) AS x(id, event_id, event_type)
					JOIN events ev ON ev.tenant_id = $1 AND ev.id = x.event_id) nd) nd`,
			p.TenantID, p.EndpointID, p.Now, ids, events, types, ordering, aviso.OrderingHold.Microseconds())
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, dbError("create missed deliveries", "endpoint", err)
	}
	if n > 0 {
		s.signal()
	}
	return n, nil
}
