package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aviso-dev/aviso"
	"github.com/jackc/pgx/v5"
)

// The events feed (see aviso's feed.go for the invariant). Concurrent publishes commit in any
// order, so an event's position is (xid, seq): the transaction that wrote it (the events.xid
// column, pg_current_xact_id() by default; migration 0007) and its seq. A read takes xmin, the
// oldest transaction still running in its snapshot, and returns only events with xid < xmin:
// those transactions have all ended, so no event can appear later below the positions returned,
// and every transaction that may still commit an event has an xid ≥ xmin, so (xmin, 0) is a safe
// end of the feed. The xmin and the events come from one statement, so from one snapshot.
//
// Readers wait on EventsPublished: a publish signals its tenants at once in this process and, by a
// NOTIFY on eventsChannel sent after the commit (notify.go), on the other nodes.

// eventsChannel is the LISTEN/NOTIFY channel on which publishes announce their tenants. The
// payload is the schema (Options.Schema), then the tenants, one per line; "*" for every tenant.
const eventsChannel = "aviso_events"

// maxNotifyPayload keeps a payload under PostgreSQL's 8,000-byte limit; a longer list of tenants
// is sent as "*".
const maxNotifyPayload = 7000

// feedSQL reads the page ($5 rows) after ($2, $3) of tenant $1 with the optional filters $4
// (types), $6 (external reference) and $7 (since); one row with NULL event columns when there is
// none. Each row carries the snapshot's xmin and whether events of the tenant are held back after
// the cursor (whatever the filters: the few held back are found through events_feed_idx, and one
// the filters leave out costs a waiting reader one more look), then the event's xid and eventCols.
var feedSQL = `WITH snap AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
	held AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM events p
		WHERE p.tenant_id = $1 AND p.xid >= greatest((SELECT xmin FROM snap), $2::text::xid8)) AS pending)
	SELECT snap.xmin::text, held.pending, f.*
	FROM snap CROSS JOIN held LEFT JOIN LATERAL (
		SELECT ev.xid::text AS xid, ` + eventCols + `
		FROM events ev
		WHERE ev.tenant_id = $1 AND (ev.xid, ev.seq) > ($2::text::xid8, $3) AND ev.xid < snap.xmin
			AND ($4::text[] IS NULL OR ev.type = ANY ($4)) AND ($6 = '' OR ev.external_reference = $6)
			AND ($7::timestamptz IS NULL OR ev.created_at >= $7)
		ORDER BY ev.xid, ev.seq
		LIMIT $5
	) f ON true
	ORDER BY f.xid::xid8, f.seq`

// feedSettings make the feed's page read in index order (see ReadFeed).
var feedSettings = []string{"SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_seqscan = off"}

// feedColumns is how many columns a row of feedSQL has: xmin, pending, xid, then eventCols.
var feedColumns = 3 + strings.Count(eventCols, ",") + 1

// ReadFeed reads a tenant's events feed after p.After; see aviso.Store.
func (s *Store) ReadFeed(ctx context.Context, p aviso.FeedParams) (*aviso.FeedPage, error) {
	limit := p.Size() + 1
	if p.End {
		limit = 0
	}
	var types []string
	if len(p.Types) > 0 {
		types = p.Types
	}
	var since any
	if !p.Since.IsZero() {
		since = p.Since
	}
	// The page must be read in index order (events_feed_idx), whatever the planner guesses of a
	// tenant's size: a new tenant's events are not in the table's statistics yet, and a guess of
	// a few rows makes a bitmap scan and a sort of the whole feed after the cursor look cheaper,
	// which it is not at a hundred thousand events. Bitmap and sequential scans are off for this
	// statement only (SET LOCAL), in a read-only transaction sent in one round trip with it.
	b := &pgx.Batch{}
	b.Queue("BEGIN READ ONLY")
	for _, set := range feedSettings {
		b.Queue(set)
	}
	b.Queue(feedSQL, p.TenantID, strconv.FormatUint(p.After.XID, 10), p.After.Seq, types, limit, p.ExternalReference, since)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	for range 1 + len(feedSettings) {
		if _, err := br.Exec(); err != nil {
			return nil, dbError("read feed", "event", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, dbError("read feed", "event", err)
	}
	defer rows.Close()
	out := &aviso.FeedPage{Items: []aviso.FeedItem{}, Next: p.After}
	var xmin string
	for rows.Next() {
		var xid string
		head := []any{&xmin, &out.Pending, &xid}
		if rows.RawValues()[2] == nil { // no event: the LEFT JOIN's one row
			if err := rows.Scan(append(head[:2:2], make([]any, feedColumns-2)...)...); err != nil {
				return nil, dbError("read feed", "event", err)
			}
			continue
		}
		e, seq, err := scanEventSeq(prefixRow{rows, head})
		if err != nil {
			return nil, dbError("read feed", "event", err)
		}
		x, err := parseXID(xid)
		if err != nil {
			return nil, fmt.Errorf("read feed: %w", err)
		}
		out.Items = append(out.Items, aviso.FeedItem{Cursor: aviso.FeedCursor{XID: x, Seq: seq}, Event: e})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbError("read feed", "event", err)
	}
	if _, err := br.Exec(); err != nil { // COMMIT
		return nil, dbError("read feed", "event", err)
	}
	if len(out.Items) > p.Size() {
		out.Items, out.HasMore = out.Items[:p.Size()], true
		out.Next = out.Items[len(out.Items)-1].Cursor
		return out, nil
	}
	x, err := parseXID(xmin)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	if end := (aviso.FeedCursor{XID: x}); out.Next.Less(end) {
		out.Next = end
	}
	return out, nil
}

// prefixRow scans the columns before eventCols into head, so that scanEventSeq reads the rest.
type prefixRow struct {
	pgx.Rows
	head []any
}

func (r prefixRow) Scan(dest ...any) error { return r.Rows.Scan(append(r.head, dest...)...) }

func parseXID(s string) (uint64, error) {
	x, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("transaction id %q: %w", s, err)
	}
	return x, nil
}

// EventsPublished returns a channel closed after the next commit that stores an event of the
// tenant, on this node or another; see aviso.Store.
func (s *Store) EventsPublished(tenantID string) <-chan struct{} { return s.published.Wait(tenantID) }

// signalPublished wakes this node's feed readers of the tenants at once, and has the events
// notifier tell the other nodes.
func (s *Store) signalPublished(tenants []string) {
	if len(tenants) == 0 {
		return
	}
	s.published.Signal(tenants...)
	s.publishedOwed.add(tenants)
	s.eventsNotifier.announce()
}

// tenantSet collects the tenants owed a NOTIFY on eventsChannel.
type tenantSet struct {
	mu  sync.Mutex
	set map[string]bool
}

func (t *tenantSet) add(tenants []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.set == nil {
		t.set = make(map[string]bool)
	}
	for _, id := range tenants {
		t.set[id] = true
	}
}

// payload takes the tenants owed and returns the NOTIFY payload that announces them.
func (t *tenantSet) payload(schema string) string {
	t.mu.Lock()
	set := t.set
	t.set = nil
	t.mu.Unlock()
	var b strings.Builder
	b.WriteString(schema)
	for id := range set {
		b.WriteByte('\n')
		b.WriteString(id)
		if b.Len() > maxNotifyPayload {
			return schema + "\n*"
		}
	}
	return b.String()
}

// heardPublished wakes the feed readers a notification on eventsChannel names, if it is for this
// Store's schema (see heeds).
func (s *Store) heardPublished(payload string) {
	lines := strings.Split(payload, "\n")
	if !heeds(s.schema, lines[0]) {
		return
	}
	for _, id := range lines[1:] {
		if id == "*" {
			s.published.SignalAll()
			return
		}
	}
	s.published.Signal(lines[1:]...)
}
