-- An endpoint's rate limit, deliveries per second (0: none). Its pacing state is kept in memory
-- (pacing.go): the store belongs to one process.
ALTER TABLE endpoints ADD COLUMN rate_limit INTEGER NOT NULL DEFAULT 0;
