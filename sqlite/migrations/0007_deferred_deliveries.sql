-- Deferred deliveries (see sqlite/deferred.go). A publish may keep an event's new deliveries in
-- memory instead of writing their rows, and write each row once, when its first attempt is
-- recorded. What makes that durable is this column: the deliveries a publish deferred, one per
-- line, "id endpoint_id next_attempt_at created_at updated_at" (times in unix microseconds),
-- written with the event row itself. NULL when none were deferred.
ALTER TABLE events ADD COLUMN deferred TEXT;
-- Every event with seq below deferred_mark.seq has all its deferred deliveries written: Open
-- writes those of the events from the mark on that a crash left unwritten.
CREATE TABLE deferred_mark (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
) STRICT;
INSERT INTO deferred_mark (id, seq) SELECT 1, coalesce(max(seq), 0) + 1 FROM events;
