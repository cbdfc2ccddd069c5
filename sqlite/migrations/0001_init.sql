-- Aviso's schema. Times are INTEGER unix microseconds, UTC. JSON is stored as TEXT.

CREATE TABLE tenants (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	metadata   TEXT NOT NULL DEFAULT '{}',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	tenant_id  TEXT REFERENCES tenants (id) ON DELETE CASCADE, -- NULL: a root key
	hash       TEXT NOT NULL UNIQUE,
	prefix     TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE event_types (
	name         TEXT PRIMARY KEY,
	description  TEXT NOT NULL,
	descriptions TEXT NOT NULL DEFAULT '{}',
	schema       TEXT, -- JSON, NULL when unset
	example      TEXT, -- JSON, NULL when unset
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE endpoints (
	id                   TEXT PRIMARY KEY,
	tenant_id            TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	url                  TEXT NOT NULL,
	description          TEXT NOT NULL,
	event_types          TEXT NOT NULL DEFAULT '[]', -- JSON array of names
	format               TEXT NOT NULL,
	headers              TEXT NOT NULL DEFAULT '{}', -- JSON object
	timeout_seconds      INTEGER NOT NULL,
	retry_schedule       TEXT NOT NULL DEFAULT '[]', -- JSON array of nanoseconds
	disabled             INTEGER NOT NULL DEFAULT 0,
	disabled_reason      TEXT NOT NULL DEFAULT '',
	consecutive_failures INTEGER NOT NULL DEFAULT 0,
	metadata             TEXT NOT NULL DEFAULT '{}', -- JSON object
	secrets              TEXT NOT NULL DEFAULT '[]', -- JSON array of {"value","expires_at" (µs)}
	token                TEXT NOT NULL DEFAULT '',
	verified_at          INTEGER,
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER NOT NULL
) STRICT;
CREATE INDEX endpoints_tenant ON endpoints (tenant_id, id);

CREATE TABLE events (
	seq                INTEGER PRIMARY KEY, -- publication order
	tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	id                 TEXT NOT NULL,
	type               TEXT NOT NULL,
	data               TEXT NOT NULL,
	external_reference TEXT NOT NULL DEFAULT '',
	created_at         INTEGER NOT NULL,
	UNIQUE (tenant_id, id)
) STRICT;
CREATE INDEX events_tenant_type ON events (tenant_id, type, seq);
CREATE INDEX events_tenant_reference ON events (tenant_id, external_reference, seq) WHERE external_reference <> '';
CREATE INDEX events_created ON events (created_at, seq);

CREATE TABLE deliveries (
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
) STRICT;
-- The claim and NextDueAt walk this index in due order.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_tenant ON deliveries (tenant_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, created_at);
CREATE INDEX deliveries_event ON deliveries (event_seq);

CREATE TABLE attempts (
	id              TEXT PRIMARY KEY,
	delivery_id     TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
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
) STRICT;
CREATE INDEX attempts_delivery ON attempts (delivery_id, at);   -- GetDelivery
CREATE INDEX attempts_tenant_at ON attempts (tenant_id, at);    -- EndpointStats, AttemptHistogram
CREATE INDEX attempts_endpoint_at ON attempts (endpoint_id, at); -- AttemptHistogram of one endpoint
