package webhook

import (
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

// Sign returns the webhook-signature header value for a message: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" for each secret, space-separated.
func Sign(secrets []string, id string, timestamp int64, body []byte) (string, error) {
	var sb strings.Builder
	for i, s := range secrets {
		key, err := SecretKey(s)
		if err != nil {
			return "", err
		}
		if i > 0 {
			sb.WriteByte(' ')
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
