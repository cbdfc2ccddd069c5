-- Two b-trees fewer on the hot paths.
--
-- attempts is keyed by (delivery_id, id) instead of id: attempts are only ever read by delivery
-- (GetDelivery) or by endpoint (attempts_endpoint_at), never by their own ID alone, so the table
-- itself now serves GetDelivery and the cascade from deliveries, and attempts_delivery, an index
-- every attempt was written to, goes. A delivery's attempts sit together, in ID (time) order.
--
-- events_created goes: Prune now walks events in publication order (seq) and stops at the first
-- one that is not old enough; see sqlite.Store.Prune.

CREATE TABLE attempts_new (
	id              TEXT NOT NULL,
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
	error           TEXT NOT NULL,
	PRIMARY KEY (delivery_id, id)
) STRICT, WITHOUT ROWID;
INSERT INTO attempts_new (id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers,
	response_status, response_body, duration_ms, error)
SELECT id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers,
	response_status, response_body, duration_ms, error
FROM attempts ORDER BY delivery_id, id;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX attempts_endpoint_at ON attempts (endpoint_id, at); -- EndpointStats, AttemptHistogram

DROP INDEX events_created;
