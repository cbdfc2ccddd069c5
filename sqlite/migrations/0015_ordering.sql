-- Per-document ordering: an endpoint's ordering ('' or 'external_reference'), and each delivery
-- row's ordering key: its event's external reference when the endpoint is ordered by it (set at
-- creation, and for all the endpoint's rows when ordering is turned on), '' otherwise. A keyed
-- delivery is always a row (see the package doc); the claim asks whether an earlier one of the
-- same endpoint and key is pending, and the index holds only keyed pending rows.
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT NOT NULL DEFAULT '';
CREATE INDEX deliveries_ordering ON deliveries (endpoint_id, ordering_key, event_seq)
	WHERE status = 'pending' AND ordering_key <> '';
