-- 0010_ordering: per-document ordering. An endpoint's ordering ('' or 'external_reference'); each
-- delivery's event seq (publication order) and ordering key: its event's external reference when
-- the endpoint is ordered by it (set at creation, and for all the endpoint's deliveries when
-- ordering is turned on), '' otherwise. The claim asks, for a delivery with a key, whether an
-- earlier one of the same endpoint and key is pending: the index holds only such deliveries, so
-- unordered endpoints never write to it.
ALTER TABLE endpoints ADD COLUMN ordering text NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN event_seq bigint, ADD COLUMN ordering_key text NOT NULL DEFAULT '';
CREATE INDEX deliveries_ordering_idx ON deliveries (endpoint_id, ordering_key, event_seq)
    WHERE status = 'pending' AND ordering_key <> '';
