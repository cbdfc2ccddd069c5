-- A node that starts again under its ID gives back the leases it held (ReleaseOwned): through
-- this index it reads its own leased deliveries only, not every pending one. Partial: a
-- delivery has an owner only while a node holds it (completion and release clear it), so the
-- index holds the deliveries in flight and stays small.
CREATE INDEX deliveries_lease_owner_idx ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
