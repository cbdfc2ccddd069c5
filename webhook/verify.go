package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verification errors. Every error a verifier returns wraps one of these, with a message that
// says what to fix; test for them with errors.Is.
var (
	ErrNoSignature     = errors.New("webhook: signature missing")
	ErrBadSignature    = errors.New("webhook: signature does not match")
	ErrBadTimestamp    = errors.New("webhook: bad webhook-timestamp")
	ErrTimestampTooOld = errors.New("webhook: timestamp too old")
	ErrTimestampTooNew = errors.New("webhook: timestamp in the future")
	ErrNoToken         = errors.New("webhook: token missing")
	ErrBadToken        = errors.New("webhook: token does not match")
	ErrBadSecret       = errors.New("webhook: receiver misconfigured")
)

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's clock.
const DefaultTolerance = 5 * time.Minute

// maxSignatures bounds how many space-separated signatures Verify examines.
const maxSignatures = 10

// Verifier checks Standard Webhooks signatures. The zero Tolerance and Now are replaced by their
// defaults; Secrets must hold at least one secret.
type Verifier struct {
	// Secrets are the endpoint's secrets ("whsec_…", checked against "v1," signatures) or public
	// keys ("whpk_…", checked against "v1a," Ed25519 signatures), as the secret route shows them;
	// during a rotation give both the old and the new one, and a request signed with either is
	// accepted.
	Secrets []string
	// Tolerance is how far webhook-timestamp may be from Now, either way. Default: 5 minutes.
	Tolerance time.Duration
	// Now is the receiver's clock. Default: time.Now.
	Now func() time.Time
}

// Verify checks the webhook-id, webhook-timestamp and webhook-signature headers of a request
// against its raw body. It returns nil when one "v1," signature in the header matches one secret,
// or one "v1a," signature verifies with one public key.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	if len(v.Secrets) == 0 {
		return fmt.Errorf("%w: Verifier.Secrets is empty; give it the endpoint's secret", ErrBadSecret)
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: the request needs webhook-id, webhook-timestamp and webhook-signature headers", ErrNoSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrBadTimestamp, tsText)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	n := now().Unix()
	switch {
	case ts < n-int64(tol/time.Second):
		return fmt.Errorf("%w: webhook-timestamp %d is %ds before now, more than %s; a replay, or the receiver's clock is wrong",
			ErrTimestampTooOld, ts, n-ts, tol)
	case ts > n+int64(tol/time.Second):
		return fmt.Errorf("%w: webhook-timestamp %d is %ds after now, more than %s; check the receiver's clock",
			ErrTimestampTooNew, ts, ts-n, tol)
	}
	want := make([][]byte, 0, len(v.Secrets))
	var pubs []ed25519.PublicKey
	for i, s := range v.Secrets {
		if strings.HasPrefix(s, PublicKeyPrefix) {
			pub, err := publicKey(s)
			if err != nil {
				return fmt.Errorf("%w: key %d: %w", ErrBadSecret, i, err)
			}
			pubs = append(pubs, pub)
			continue
		}
		if strings.HasPrefix(s, SigningKeyPrefix) {
			return fmt.Errorf("%w: key %d is a whsk_ signing key, which stays with the sender; give the verifier its whpk_ public key", ErrBadSecret, i)
		}
		key, err := SecretKey(s)
		if err != nil {
			return fmt.Errorf("%w: secret %d: %w", ErrBadSecret, i, err)
		}
		want = append(want, signature(key, id, ts, body))
	}
	var msg []byte // signed content of v1a signatures, built once
	for i, part := range strings.Fields(sigs) {
		if i == maxSignatures {
			break
		}
		version, b64, ok := strings.Cut(part, ",")
		if !ok || (version != "v1" && version != "v1a") {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if version == "v1a" {
			if len(pubs) == 0 || len(got) != ed25519.SignatureSize {
				continue
			}
			if msg == nil {
				msg = signedContent(id, ts, body)
			}
			for _, pub := range pubs {
				if ed25519.Verify(pub, msg, got) {
					return nil
				}
			}
			continue
		}
		for _, w := range want {
			if hmac.Equal(got, w) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no v1 or v1a signature matches the secret(s) or public key(s); check the key is the endpoint's current one and the body is verified as received, before any parsing", ErrBadSignature)
}

// SignHMACHex returns the X-Webhook-Signature value of the facturascripts format: the hex
// HMAC-SHA256 of the raw body, keyed with the bytes of the secret string exactly as given
// (the whole "whsec_…" string, as PHP's hash_hmac('sha256', $payload, $secret) uses it).
func SignHMACHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyHMACHex checks an X-Webhook-Signature value (hex, either case) against the raw body and
// the endpoint's secret string, in constant time.
func VerifyHMACHex(secret string, body []byte, sigHex string) error {
	if secret == "" {
		return fmt.Errorf("%w: the HMAC secret is empty; give it the endpoint's secret", ErrBadSecret)
	}
	if sigHex == "" {
		return fmt.Errorf("%w: the request has no X-Webhook-Signature header", ErrNoSignature)
	}
	got, err := hex.DecodeString(sigHex)
	if err != nil {
		return fmt.Errorf("%w: X-Webhook-Signature is not hex", ErrBadSignature)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("%w: X-Webhook-Signature is not the HMAC-SHA256 of the body with this secret; the key is the whole whsec_… string", ErrBadSignature)
	}
	return nil
}

// VerifyToken checks a TF-WebhookToken value against the endpoint's token, in constant time.
func VerifyToken(want, got string) error {
	if want == "" {
		return fmt.Errorf("%w: the expected token is empty; give it the endpoint's token", ErrBadSecret)
	}
	if got == "" {
		return fmt.Errorf("%w: the request has no TF-WebhookToken header", ErrNoToken)
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return fmt.Errorf("%w: TF-WebhookToken is not the endpoint's token", ErrBadToken)
	}
	return nil
}
