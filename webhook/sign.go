package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every Standard Webhooks secret.
const SecretPrefix = "whsec_"

// NewSecret returns a fresh endpoint secret: "whsec_" and the base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SecretKey returns the HMAC key of a secret: the base64-decoded part after "whsec_".
func SecretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook secret is not %s followed by base64: %w", SecretPrefix, err)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message, one signature per key,
// space-separated: "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for a "whsec_" secret and
// "v1a,<base64 Ed25519 signature of id.timestamp.body>" for a "whsk_" signing key.
func Sign(secrets []string, id string, timestamp int64, body []byte) (string, error) {
	var sb strings.Builder
	for i, s := range secrets {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if strings.HasPrefix(s, SigningKeyPrefix) {
			priv, err := signingKey(s)
			if err != nil {
				return "", err
			}
			sb.WriteString("v1a,")
			sb.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, signedContent(id, timestamp, body))))
			continue
		}
		key, err := SecretKey(s)
		if err != nil {
			return "", err
		}
		sb.WriteString("v1,")
		sb.WriteString(base64.StdEncoding.EncodeToString(signature(key, id, timestamp, body)))
	}
	return sb.String(), nil
}

func signature(key []byte, id string, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
