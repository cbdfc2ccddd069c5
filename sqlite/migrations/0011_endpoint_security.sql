-- Endpoint security: how Aviso authenticates to the receiver (auth, a JSON object, '' for none),
-- custom headers whose values are write-only (secret_headers, a JSON object), and the signing
-- scheme new keys are made for (signing: 'hmac' or 'ed25519'). Secret values arrive here sealed
-- by the encryption layer above the store; the store keeps them as opaque strings.
ALTER TABLE endpoints ADD COLUMN auth TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN secret_headers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE endpoints ADD COLUMN signing TEXT NOT NULL DEFAULT 'hmac';
