-- One model for deliveries without a row (see the package doc of sqlite/): the deferred column of
-- an event names them, the mark says below which event seq all have rows, and the view
-- unwritten_deliveries reads them as delivery rows. Everything else of the earlier design goes.
--
-- A disabling that a stop cut short (failing_endpoints) is finished here: the endpoint's pending
-- rows fail as of the disabling.
UPDATE deliveries SET status = 'failed', last_error = 'endpoint disabled', next_attempt_at = NULL,
	lease_owner = NULL, lease_until = NULL,
	updated_at = (SELECT f.at FROM failing_endpoints f WHERE f.endpoint_id = deliveries.endpoint_id)
WHERE status = 'pending' AND endpoint_id IN (
	SELECT f.endpoint_id FROM failing_endpoints f JOIN endpoints e ON e.id = f.endpoint_id WHERE e.disabled = 1);
DROP TABLE failing_endpoints;

-- The deferred column becomes a JSON array of [id, endpoint_id, next_attempt_at, created_at,
-- updated_at]; it was one line per delivery, "id endpoint_id next created updated". Only the
-- events from the mark on are ever read again.
UPDATE events SET deferred = '[["' || replace(replace(deferred, char(10), '"],["'), ' ', '","') || '"]]'
WHERE deferred IS NOT NULL AND seq >= (SELECT seq FROM deferred_mark);

-- The deliveries named from the mark on that have no row, of an endpoint of the event's tenant.
CREATE VIEW unwritten_deliveries AS
SELECT j.value ->> 0 AS id, e.tenant_id AS tenant_id, e.seq AS event_seq, e.id AS event_id,
	j.value ->> 1 AS endpoint_id, e.type AS event_type, 'pending' AS status, 0 AS attempt_count,
	0 AS round_attempts, CAST(j.value ->> 2 AS INTEGER) AS next_attempt_at, 0 AS last_response_status,
	'' AS last_error, CAST(j.value ->> 3 AS INTEGER) AS created_at, CAST(j.value ->> 4 AS INTEGER) AS updated_at
FROM events e, json_each(e.deferred) j
WHERE e.deferred IS NOT NULL AND e.seq >= (SELECT seq FROM deferred_mark)
	AND EXISTS (SELECT 1 FROM endpoints p WHERE p.id = j.value ->> 1 AND p.tenant_id = e.tenant_id)
	AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = j.value ->> 0);

-- The earlier design failed the deferred deliveries of a disabled endpoint in memory only: those
-- a stop left unwritten fail now, as of the endpoint's last change (the disabling).
INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
	round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
SELECT u.id, u.tenant_id, u.event_seq, u.event_id, u.endpoint_id, u.event_type, 'failed', 0, 0, NULL, 0,
	'endpoint disabled', u.created_at, p.updated_at
FROM unwritten_deliveries u JOIN endpoints p ON p.id = u.endpoint_id WHERE p.disabled = 1;
