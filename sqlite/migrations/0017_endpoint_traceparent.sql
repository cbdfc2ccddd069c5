-- Whether an endpoint's attempts send their W3C trace context (traceparent, tracestate) to the receiver.
ALTER TABLE endpoints ADD COLUMN send_traceparent INTEGER NOT NULL DEFAULT 0;
