-- 0007_events_xid: the events feed (see feed.go). Each event keeps the ID of the transaction that
-- wrote it; the feed reads a tenant's events in (xid, seq) order, and only those whose transaction
-- is older than every transaction still running, so that a cursor never passes an event that a
-- concurrent publish commits later. Events stored before this migration take its own xid: they
-- stay in seq order, ahead of everything published afterwards.
ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_feed_idx ON events (tenant_id, xid, seq);
