package webhook

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// Standard Webhooks asymmetric keys ("v1a" signatures). A signing key is "whsk_" and the base64
// of the 64-byte Ed25519 private key (seed and public key, as Go's crypto/ed25519 holds it; a
// 32-byte seed is read too); its public key is "whpk_" and the base64 of the 32-byte public key.
// The v1a signature is the base64 Ed25519 signature of id.timestamp.body, the message the v1 HMAC
// signs. Aviso keeps the signing key; receivers get only the public key and cannot forge a
// request with it.
const (
	SigningKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// NewSigningKey returns a fresh Ed25519 signing key, "whsk_…".
func NewSigningKey() string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("webhook: generate ed25519 key: %v", err)) // crypto/rand does not fail
	}
	return SigningKeyPrefix + base64.StdEncoding.EncodeToString(priv)
}

// signingKey decodes a "whsk_…" key.
func signingKey(key string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, SigningKeyPrefix))
	switch {
	case err != nil:
		return nil, fmt.Errorf("webhook signing key is not %s followed by base64: %w", SigningKeyPrefix, err)
	case len(b) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case len(b) == ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	}
	return nil, fmt.Errorf("webhook signing key holds %d bytes; an Ed25519 key is %d (or a %d-byte seed)",
		len(b), ed25519.PrivateKeySize, ed25519.SeedSize)
}

// PublicKey returns the public key ("whpk_…") of a signing key ("whsk_…").
func PublicKey(key string) (string, error) {
	priv, err := signingKey(key)
	if err != nil {
		return "", err
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), nil
}

// publicKey decodes a "whpk_…" key.
func publicKey(key string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, PublicKeyPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook public key is not %s followed by base64: %w", PublicKeyPrefix, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("webhook public key holds %d bytes; an Ed25519 public key is %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// VerificationKey returns what a receiver checks signatures of key with: the secret itself for a
// "whsec_" secret, the public key for a "whsk_" signing key.
func VerificationKey(key string) (string, error) {
	if strings.HasPrefix(key, SigningKeyPrefix) {
		return PublicKey(key)
	}
	return key, nil
}

// signedContent is the message both schemes sign: id.timestamp.body.
func signedContent(id string, timestamp int64, body []byte) []byte {
	ts := fmt.Sprint(timestamp)
	msg := make([]byte, 0, len(id)+len(ts)+len(body)+2)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = append(msg, ts...)
	msg = append(msg, '.')
	return append(msg, body...)
}
