-- Every delivery is a row from its publish on. The deliveries that an event's row named without
-- a row (migration 0012's view; a stop that was not clean leaves some) become pending rows here,
-- and the column, the view and the mark go. The mark's table stays, renamed, for what it also
-- kept: a seq above every event ever stored, so that deleting the newest events never lets a
-- seq be used twice (the feed's cursors are seqs).
INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
	round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
SELECT u.id, u.tenant_id, u.event_seq, u.event_id, u.endpoint_id, u.event_type, 'pending', 0, 0,
	u.next_attempt_at, 0, '', u.created_at, u.updated_at
FROM unwritten_deliveries u WHERE true
ON CONFLICT (id) DO NOTHING;
DROP VIEW unwritten_deliveries;
ALTER TABLE events DROP COLUMN deferred;
ALTER TABLE deferred_mark RENAME TO seq_floor;
UPDATE seq_floor SET seq = max(seq, (SELECT coalesce(max(seq), 0) + 1 FROM events));
