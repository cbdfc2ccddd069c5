package aviso

import (
	"encoding/base64"
	"encoding/binary"
	"time"
)

// The events feed is a tenant's events as an append-only log that a consumer reads from a
// cursor it stores (Store.ReadFeed): it never misses an event and never sees one twice, across
// restarts of either side and across nodes.
//
// The invariant: every event has a position, FeedCursor{XID, Seq}, and once a read has handed
// out a cursor, no event that becomes visible later has a position below it. Positions order
// the feed; a read returns only events whose position can no longer be preceded.
//
//   - SQLite has one writer, so the order of seqs is the order of commits: XID is always 0, and
//     every event committed after a read has a larger seq than every event that read saw.
//   - PostgreSQL commits concurrent publishes in any order, so seq alone is not enough: a publish
//     that took seq 10 may commit after one that took seq 11 has been read, and a cursor at 11
//     would skip 10 for ever. Each event also stores the ID of the transaction that wrote it
//     (xid8, pg_current_xact_id()); the feed orders by (xid, seq) and returns only events whose
//     xid is below the xmin of the reading statement's snapshot, pg_snapshot_xmin — the oldest
//     transaction still running. Every transaction below xmin has ended, so its events are all
//     visible or never will be; every transaction that can still commit an event has an xid at or
//     above xmin, so its events sort after everything returned. xmin never goes down, so neither
//     does a cursor. The price: an event enters the feed only once every transaction (of any kind,
//     on the whole PostgreSQL cluster) that began writing before it has ended — usually within
//     milliseconds; a long-running write transaction holds the feed (not deliveries) back.
//
// A cursor is valid only on the store that handed it out: positions are not kept by
// migrate-store, nor by a dump and restore of PostgreSQL into a new cluster (whose transaction
// IDs start again lower).

// FeedCursor is a position in a tenant's events feed: the position of an event, or the end of the
// feed as a read saw it. The zero FeedCursor is the start of the feed.
type FeedCursor struct {
	XID uint64 // the PostgreSQL transaction that wrote the event; always 0 on SQLite
	Seq int64  // the event's sequence number
}

// feedCursorVersion is the first byte of an encoded cursor.
const feedCursorVersion = 1

// String encodes the cursor as the opaque text the API hands out (next_cursor, an SSE id): URL-
// and header-safe base64 of a version byte, XID and Seq. ParseFeedCursor reads it back.
func (c FeedCursor) String() string {
	var b [17]byte
	b[0] = feedCursorVersion
	binary.BigEndian.PutUint64(b[1:9], c.XID)
	binary.BigEndian.PutUint64(b[9:17], uint64(c.Seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseFeedCursor decodes a cursor made by FeedCursor.String; "" is the start of the feed. This is
// the one function that reads feed cursors. Anything else is EINVALIDCURSOR naming field.
func ParseFeedCursor(field, s string) (FeedCursor, error) {
	if s == "" {
		return FeedCursor{}, nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s) // one text per cursor
	if err != nil || len(b) != 17 || b[0] != feedCursorVersion || int64(binary.BigEndian.Uint64(b[9:17])) < 0 {
		return FeedCursor{}, &Error{Code: EINVALIDCURSOR, Field: field,
			Message: "is not a cursor Aviso handed out; pass the next_cursor (or SSE id) of an earlier answer, or leave it out to start at the beginning"}
	}
	return FeedCursor{XID: binary.BigEndian.Uint64(b[1:9]), Seq: int64(binary.BigEndian.Uint64(b[9:17]))}, nil
}

// Less reports whether c comes before d in the feed.
func (c FeedCursor) Less(d FeedCursor) bool {
	return c.XID < d.XID || (c.XID == d.XID && c.Seq < d.Seq)
}

// FeedParams selects a read of a tenant's events feed. Empty filters do not filter.
type FeedParams struct {
	TenantID          string
	After             FeedCursor // events after this position
	Limit             int        // ≤ 0: DefaultLimit; more than MaxLimit is cut
	Types             []string   // any of these event types
	ExternalReference string
	Since             time.Time // events created at or after
	// End returns no events, only Next: the end of the feed now, where a consumer that wants only
	// what is published from now on starts.
	End bool
}

// Size returns the effective page size.
func (p FeedParams) Size() int { return ListParams{Limit: p.Limit}.Size() }

// FeedPage is the answer of a feed read.
type FeedPage struct {
	Items []FeedItem // in feed order
	// Next is where the following read starts; never before After. When HasMore is false it is at
	// the end of the feed as this read saw it, past the events the filters left out.
	Next    FeedCursor
	HasMore bool // more events are there now: read again at once
	// Pending reports committed events after Next that the feed holds back until the transactions
	// that might precede them have ended (PostgreSQL; see above): they are due within moments, and
	// no signal announces them, so a waiting reader looks again shortly.
	Pending bool
}

// FeedItem is one event of the feed with its position.
type FeedItem struct {
	Cursor FeedCursor
	Event  *Event
}
