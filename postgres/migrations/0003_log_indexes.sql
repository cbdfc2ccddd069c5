-- 0003_log_indexes: the delivery and event logs' filters read only what they show.
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
-- A tenant's event log pages by seq, with or without a type filter: keyed by
-- (tenant_id, seq, type) the index gives that order in both cases, where (tenant_id, type, seq)
-- gave it only with a type, so an unfiltered page walked the primary key past other tenants'
-- events. Publishing writes as many index entries as before.
DROP INDEX events_tenant_type_idx;
CREATE INDEX events_tenant_idx ON events (tenant_id, seq, type);
