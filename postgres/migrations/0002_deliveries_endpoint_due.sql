-- 0002_deliveries_endpoint_due: a claim that leaves endpoints out (those already holding their
-- share of work, such as one that stopped answering) takes each other endpoint's oldest due
-- deliveries through this index, instead of walking deliveries_due_idx past every pending
-- delivery of the endpoints left out; see claimOthersSQL.
CREATE INDEX deliveries_endpoint_due_idx ON deliveries (endpoint_id, next_attempt_at, id) WHERE status = 'pending';
