-- deliveries and attempts become WITHOUT ROWID tables: their rows live in the b-tree of their
-- text primary key, instead of a rowid table plus a separate index of the key, so every insert
-- and update of a row touches one b-tree less. IDs are ULIDs, in time order, so inserts append.
--
-- SQLite cannot change a table to WITHOUT ROWID in place: both tables are rebuilt, every row
-- copied. The new attempts table references deliveries_new, so that dropping the old deliveries
-- cascades to nothing; renaming deliveries_new updates that reference to deliveries.

CREATE TABLE deliveries_new (
	id                   TEXT PRIMARY KEY,
	tenant_id            TEXT NOT NULL,
	event_seq            INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
	event_id             TEXT NOT NULL,
	endpoint_id          TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
	event_type           TEXT NOT NULL, -- denormalised from the event, for filtering
	status               TEXT NOT NULL,
	attempt_count        INTEGER NOT NULL DEFAULT 0,
	round_attempts       INTEGER NOT NULL DEFAULT 0,
	next_attempt_at      INTEGER, -- NULL unless pending
	last_response_status INTEGER NOT NULL DEFAULT 0,
	last_error           TEXT NOT NULL DEFAULT '',
	lease_owner          TEXT,
	lease_until          INTEGER,
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO deliveries_new (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
	round_attempts, next_attempt_at, last_response_status, last_error, lease_owner, lease_until, created_at, updated_at)
SELECT id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
	round_attempts, next_attempt_at, last_response_status, last_error, lease_owner, lease_until, created_at, updated_at
FROM deliveries ORDER BY id;

CREATE TABLE attempts_new (
	id              TEXT PRIMARY KEY,
	delivery_id     TEXT NOT NULL REFERENCES deliveries_new (id) ON DELETE CASCADE,
	tenant_id       TEXT NOT NULL,
	endpoint_id     TEXT NOT NULL,
	event_id        TEXT NOT NULL,
	at              INTEGER NOT NULL,
	url             TEXT NOT NULL,
	request_headers TEXT NOT NULL DEFAULT '{}',
	response_status INTEGER NOT NULL,
	response_body   TEXT NOT NULL,
	duration_ms     INTEGER NOT NULL,
	error           TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO attempts_new (id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers,
	response_status, response_body, duration_ms, error)
SELECT id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers,
	response_status, response_body, duration_ms, error
FROM attempts ORDER BY id;

DROP TABLE attempts;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
ALTER TABLE attempts_new RENAME TO attempts;

-- The claim and NextDueAt walk this index in due order.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_tenant ON deliveries (tenant_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, created_at);
CREATE INDEX deliveries_event ON deliveries (event_seq);
-- See 0002_deliveries_endpoint_due.sql.
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at, id) WHERE status = 'pending';

CREATE INDEX attempts_delivery ON attempts (delivery_id, at);   -- GetDelivery
CREATE INDEX attempts_tenant_at ON attempts (tenant_id, at);    -- EndpointStats, AttemptHistogram
CREATE INDEX attempts_endpoint_at ON attempts (endpoint_id, at); -- AttemptHistogram of one endpoint
