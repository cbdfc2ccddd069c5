-- An endpoint's payload filter (internal/filter): '' matches every event of its types.
ALTER TABLE endpoints ADD COLUMN filter TEXT NOT NULL DEFAULT '';
