-- A claim that leaves some endpoints out (they already hold enough work on the node) finds the
-- due deliveries of the others endpoint by endpoint through this index, instead of walking the
-- due order past every delivery of the endpoints left out (see claimOthers in dispatch.go).
CREATE INDEX IF NOT EXISTS deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at, id) WHERE status = 'pending';
