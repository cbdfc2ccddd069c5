-- An endpoint's payload filter (internal/filter): '' matches every event of its types.
ALTER TABLE endpoints ADD COLUMN filter text NOT NULL DEFAULT '';
