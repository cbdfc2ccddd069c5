-- 0001_init: the whole domain. Maps, lists and secrets are jsonb; payloads that are signed or shown
-- back byte for byte (event data, schemas, examples) are json, which keeps their text exactly.

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    tenant_id  text CONSTRAINT api_keys_tenant_fk REFERENCES tenants (id) ON DELETE CASCADE,
    hash       text NOT NULL CONSTRAINT api_keys_hash_key UNIQUE,
    prefix     text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE event_types (
    name         text PRIMARY KEY,
    description  text NOT NULL,
    descriptions jsonb,
    schema       json,
    example      json,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE endpoints (
    id                   text PRIMARY KEY,
    tenant_id            text NOT NULL CONSTRAINT endpoints_tenant_fk REFERENCES tenants (id) ON DELETE CASCADE,
    url                  text NOT NULL,
    description          text NOT NULL,
    event_types          jsonb,
    format               text NOT NULL,
    headers              jsonb,
    timeout_seconds      integer NOT NULL,
    retry_schedule       jsonb,
    disabled             boolean NOT NULL DEFAULT false,
    disabled_reason      text NOT NULL DEFAULT '',
    consecutive_failures integer NOT NULL DEFAULT 0,
    metadata             jsonb,
    secrets              jsonb,
    token                text NOT NULL,
    verified_at          timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX endpoints_tenant_idx ON endpoints (tenant_id, id);

CREATE TABLE events (
    seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          text NOT NULL CONSTRAINT events_tenant_fk REFERENCES tenants (id) ON DELETE CASCADE,
    id                 text NOT NULL,
    type               text NOT NULL,
    data               json,
    external_reference text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL,
    CONSTRAINT events_tenant_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX events_tenant_type_idx ON events (tenant_id, type, seq);
CREATE INDEX events_tenant_ref_idx ON events (tenant_id, external_reference, seq) WHERE external_reference <> '';
CREATE INDEX events_created_idx ON events (created_at);

CREATE TABLE deliveries (
    id                   text PRIMARY KEY,
    tenant_id            text NOT NULL,
    event_id             text NOT NULL,
    endpoint_id          text NOT NULL CONSTRAINT deliveries_endpoint_fk REFERENCES endpoints (id) ON DELETE CASCADE,
    event_type           text NOT NULL,
    status               text NOT NULL,
    attempt_count        integer NOT NULL DEFAULT 0,
    round_attempts       integer NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz,
    last_response_status integer NOT NULL DEFAULT 0,
    last_error           text NOT NULL DEFAULT '',
    lease_owner          text,
    lease_until          timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    CONSTRAINT deliveries_event_fk FOREIGN KEY (tenant_id, event_id)
        REFERENCES events (tenant_id, id) ON DELETE CASCADE
);
-- The claim scans only what is waiting.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, id);
CREATE INDEX deliveries_event_idx ON deliveries (tenant_id, event_id);
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, created_at);

CREATE TABLE attempts (
    id               text PRIMARY KEY,
    delivery_id      text NOT NULL CONSTRAINT attempts_delivery_fk REFERENCES deliveries (id) ON DELETE CASCADE,
    tenant_id        text NOT NULL,
    endpoint_id      text NOT NULL,
    event_id         text NOT NULL,
    at               timestamptz NOT NULL,
    url              text NOT NULL,
    request_headers  jsonb,
    response_status  integer NOT NULL,
    response_body    text NOT NULL,
    duration_ms      bigint NOT NULL,
    error            text NOT NULL DEFAULT ''
);
CREATE INDEX attempts_delivery_idx ON attempts (delivery_id, at);
CREATE INDEX attempts_tenant_at_idx ON attempts (tenant_id, at);
CREATE INDEX attempts_endpoint_at_idx ON attempts (endpoint_id, at);
