-- 0003_deliveries_endpoint_by_id: an endpoint's delivery log pages in ID order; keyed by
-- (endpoint_id, id), this index gives that order, so a page reads the endpoint's deliveries only.
-- IDs are minted at creation, so replays since a time find their deliveries through an ID range
-- of the same index (see ReplayDeliveries), as they did through created_at before.
DROP INDEX deliveries_endpoint_idx;
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, id);
