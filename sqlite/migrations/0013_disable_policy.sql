-- An endpoint's auto-disable rule (JSON {"failures","min_span"}; '' for the server's) and when its
-- current run of consecutive failures began (unix microseconds; NULL while the last attempt
-- succeeded). Endpoints already failing start their span now: the rule can only disable them
-- later than it would have, never sooner.
ALTER TABLE endpoints ADD COLUMN disable_after TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
UPDATE endpoints SET failing_since = CAST(unixepoch('subsec') * 1000000 AS INTEGER) WHERE consecutive_failures > 0;
