-- An endpoint's auto-disable rule (NULL: the server's) and when its current run of consecutive
-- failures began (NULL while the last attempt succeeded). Endpoints already failing start their
-- span now: the rule can only disable them later than it would have, never sooner.
ALTER TABLE endpoints ADD COLUMN disable_after jsonb, ADD COLUMN failing_since timestamptz;
UPDATE endpoints SET failing_since = now() WHERE consecutive_failures > 0;
