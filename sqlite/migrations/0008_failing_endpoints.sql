-- Endpoints whose disabling is still failing their pending deliveries, a chunk per write (see
-- failPending in sqlite/catalog.go), with the disabling's time in unix microseconds. The row is
-- written in the same transaction as a chunk that leaves more to fail, and deleted with the
-- last chunk or by the endpoint's re-enabling; Open finishes what a stop cut short.
CREATE TABLE failing_endpoints (
	endpoint_id TEXT PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
	at          INTEGER NOT NULL
) STRICT;
