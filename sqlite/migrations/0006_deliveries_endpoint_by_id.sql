-- Listing an endpoint's deliveries pages through them in ID order (ListDeliveries with an
-- endpoint filter). Keyed by (endpoint_id, created_at), this index could not give that order, so
-- such a listing walked the whole tenant's deliveries in ID order and kept the endpoint's; keyed
-- by (endpoint_id, id), it reads only the endpoint's. IDs are time-ordered, so the index still
-- follows creation order; it also still serves the cascade when an endpoint is deleted.
DROP INDEX deliveries_endpoint;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id);
