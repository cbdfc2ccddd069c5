// Package webhook renders, signs and verifies Aviso's webhooks. The server uses Build to render a
// delivery; a receiver imports the package (standard library and the aviso vocabulary only, no
// server) to verify and parse what it got, or wraps its handler in Middleware.
//
// Every request carries the Standard Webhooks headers, whatever the endpoint's format:
// webhook-id (the event id, the same on every retry), webhook-timestamp (unix seconds of the
// attempt) and webhook-signature ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per live
// secret, space-separated during a rotation; the key is the base64-decoded part of "whsec_…";
// an endpoint with Ed25519 signing sends "v1a,<base64 Ed25519 signature of id.timestamp.body>"
// made with its "whsk_…" key, verified with the "whpk_…" public key, see ed25519.go),
// with Content-Type: application/json and User-Agent: Aviso/<version>.
//
// The formats (docs/formats/ shows a real request of each):
//
//   - standard: {"id","type","timestamp","external_reference" (when set),"data"}.
//   - alegra: {"subject":"new-invoice","message":{"invoice":{…}}}. The noun is the type's first
//     segment (customer → client, product → item) and the verb the rest (created → new,
//     updated → edit, deleted → delete). Types Alegra has no subject for are still sent, with a
//     subject derived the same way ("invoice.paid" → "paid-invoice", "receipt.paid" →
//     "paid-receipt"), so a receiver written for Alegra ignores them as it ignores any subject it
//     does not know, and nothing is silently dropped. A numeric top-level "id" of the data is
//     sent as a string, as in Alegra's examples. The subscription handshake is a POST with an
//     empty body (HandshakeRequest).
//   - facturascripts: {"id","event","created","data":{"object":{…}}} and X-Webhook-Signature,
//     the hex HMAC-SHA256 of the raw body keyed with the bytes of the endpoint's newest live
//     secret string exactly as the API shows it, "whsec_" included — what PHP's
//     hash_hmac('sha256', $payload, $secret) computes with that string.
//   - tusfacturas: the standard body with "external_reference" always present at the top level
//     (the event's, else a string external_reference of its data, else ""), and TF-WebhookToken
//     with the endpoint's token. Request.Header stores it under that exact spelling; senders must
//     copy header keys verbatim so that PHP's getallheaders() finds 'TF-WebhookToken'.
//
// Verification: Verifier checks Standard Webhooks signatures against every secret of a rotation
// with a 5-minute timestamp tolerance; VerifyHMACHex and VerifyToken check the format headers;
// all compare in constant time and return errors wrapping ErrNoSignature, ErrBadSignature,
// ErrTimestampTooOld and friends, with messages that say what to fix.
package webhook
