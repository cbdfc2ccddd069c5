-- The delivery and event logs' filters read only what they show.
--
-- An endpoint's deliveries page in ID order (ListDeliveries with an endpoint filter). Keyed by
-- (endpoint_id, created_at), this index could not give that order, so such a listing walked the
-- whole tenant's deliveries in ID order and kept the endpoint's; keyed by (endpoint_id, id), it
-- reads only the endpoint's. IDs are minted at creation, so the index still follows creation
-- order (replays since a time use it as an ID range) and still serves the cascade when an
-- endpoint is deleted.
DROP INDEX deliveries_endpoint;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id);
-- The failed deliveries of a tenant, the ones to look at and replay: few beside the rest, so a
-- page of them no longer walks the log. Partial, so publishing and successful attempts never
-- write to it.
CREATE INDEX deliveries_failed ON deliveries (tenant_id, id) WHERE status = 'failed';
-- A tenant's event log pages by seq. Keyed by (tenant_id, type, seq), the index could give that
-- order only with a type filter, so an unfiltered page sorted all the tenant's events. Keyed by
-- (tenant_id, seq, type), it gives the order with or without one; a type filter reads the
-- tenant's entries newest first until the page fills, from the index alone. Publishing writes
-- the same number of index entries as before.
DROP INDEX events_tenant_type;
CREATE INDEX events_tenant ON events (tenant_id, seq, type);
