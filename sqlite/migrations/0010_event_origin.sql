-- The request id and trace context of an event's publish, for the logs and traces of its
-- attempts (aviso.Event.RequestID, TraceParent).
ALTER TABLE events ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
