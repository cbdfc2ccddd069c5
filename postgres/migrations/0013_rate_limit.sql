-- An endpoint's rate limit (deliveries per second, 0: none), and the pacing state every node
-- reserves its send slots from (aviso.ReserveSlots): the earliest the endpoint's next slot may be.
ALTER TABLE endpoints ADD COLUMN rate_limit integer NOT NULL DEFAULT 0;

CREATE TABLE endpoint_pacing (
    endpoint_id text PRIMARY KEY CONSTRAINT endpoint_pacing_endpoint_fk REFERENCES endpoints (id) ON DELETE CASCADE,
    next_at     timestamptz NOT NULL
);
