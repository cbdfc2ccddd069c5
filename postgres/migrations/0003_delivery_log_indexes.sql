-- 0003_delivery_log_indexes: the delivery log's filters read only what they show.
--
-- An endpoint's deliveries page in ID order; keyed by (endpoint_id, id), this index gives that
-- order, so a page reads the endpoint's deliveries only. IDs are minted at creation, so replays
-- since a time find their deliveries through an ID range of the same index (see
-- ReplayDeliveries), as they did through created_at before.
DROP INDEX deliveries_endpoint_idx;
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, id);
-- A tenant's failed deliveries, the ones to look at and replay; partial, so publishing and
-- successful attempts never write to it.
CREATE INDEX deliveries_failed_idx ON deliveries (tenant_id, id) WHERE status = 'failed';
