package sqlite

import (
	"context"
	"database/sql"

	"github.com/aviso-dev/aviso"
)

// The events feed (see aviso's feed.go). The store has one writer, so seq order is commit order:
// a position is {XID: 0, Seq: seq}, and every event committed after a read's snapshot has a
// larger seq than every event the read saw. Seqs are never reused (Store.nextSeq).

// ReadFeed reads a tenant's events feed after p.After; see aviso.Store.
func (s *Store) ReadFeed(ctx context.Context, p aviso.FeedParams) (*aviso.FeedPage, error) {
	if p.After.XID != 0 {
		return nil, &aviso.Error{Code: aviso.EINVALIDCURSOR, Field: "after",
			Message: "is a cursor of a PostgreSQL store; this one is SQLite: leave it out to start at the beginning"}
	}
	out := &aviso.FeedPage{Items: []aviso.FeedItem{}, Next: p.After}
	err := s.read(ctx, "read feed", func(tx *sql.Tx) error {
		if !p.End {
			stmt, args := feedSQL(p)
			rows, err := tx.QueryContext(ctx, stmt, args...)
			if err != nil {
				return err
			}
			es, err := collect(rows, scanSeqEvent)
			if err != nil {
				return err
			}
			if len(es) > p.Size() {
				es, out.HasMore = es[:p.Size()], true
			}
			for _, e := range es {
				out.Items = append(out.Items, aviso.FeedItem{Cursor: aviso.FeedCursor{Seq: e.seq}, Event: e.e})
			}
			if out.HasMore {
				out.Next = out.Items[len(out.Items)-1].Cursor
				return nil
			}
		}
		// The end of the tenant's feed in this snapshot, past the events the filters left out.
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = ?`,
			p.TenantID).Scan(&last); err != nil {
			return err
		}
		if end := (aviso.FeedCursor{Seq: last}); out.Next.Less(end) {
			out.Next = end
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// feedSQL is ReadFeed's statement and its arguments: the tenant's events after the cursor in seq
// order, read from events_tenant (or, with a reference, events_tenant_reference) in that order.
func feedSQL(p aviso.FeedParams) (string, []any) {
	q := &query{}
	q.where("tenant_id = ?", p.TenantID)
	q.where("seq > ?", p.After.Seq)
	from := " FROM events"
	if p.ExternalReference != "" {
		from = " FROM events INDEXED BY events_tenant_reference" // as in listEventsSQL
		q.where("external_reference = ? AND external_reference <> ''", p.ExternalReference)
	}
	if len(p.Types) > 0 {
		q.where("type IN (SELECT value FROM json_each(?))", idList(p.Types))
	}
	if !p.Since.IsZero() {
		q.where("created_at >= ?", micros(p.Since))
	}
	return `SELECT ` + eventCols + from + q.sql() + ` ORDER BY seq LIMIT ?`, append(q.args, p.Size()+1)
}

// EventsPublished returns a channel closed after the next commit that stores an event of the
// tenant; see aviso.Store.
func (s *Store) EventsPublished(tenantID string) <-chan struct{} { return s.published.Wait(tenantID) }

// signalPublished wakes the feed readers of the tenants of the events InsertEvents created.
func (s *Store) signalPublished(out []aviso.InsertedEvent) {
	var tenants []string
	for _, r := range out {
		if r.Created && (len(tenants) == 0 || tenants[len(tenants)-1] != r.Event.TenantID) {
			tenants = append(tenants, r.Event.TenantID)
		}
	}
	if len(tenants) > 0 {
		s.published.Signal(tenants...)
	}
}
