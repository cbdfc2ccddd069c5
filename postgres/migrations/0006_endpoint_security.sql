-- Endpoint security: how Aviso authenticates to the receiver (auth, NULL for none), custom
-- headers whose values are write-only (secret_headers), and the signing scheme new keys are made
-- for ('hmac' or 'ed25519'). Secret values arrive here sealed by the encryption layer above the
-- store; the store keeps them as opaque strings.
ALTER TABLE endpoints ADD COLUMN auth jsonb;
ALTER TABLE endpoints ADD COLUMN secret_headers jsonb;
ALTER TABLE endpoints ADD COLUMN signing text NOT NULL DEFAULT 'hmac';
