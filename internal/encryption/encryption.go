// Package encryption seals endpoint secrets at rest: the signing keys, the TusFacturas token,
// the auth's secret fields and the secret headers' values. The service seals an endpoint's
// secrets before it writes the endpoint and opens them after it reads it; the delivery engine
// opens what it claims. The stores persist the sealed values as the opaque strings they are.
//
// A sealed value is "enc:v1:<key id>:<base64url of nonce and AES-256-GCM ciphertext>", bound to
// its endpoint's ID (the additional data), so a value copied onto another endpoint does not
// open. The key ID is the first 4 bytes (hex) of the key's SHA-256. A value without the
// prefix is plaintext from before encryption: it is read as it is and sealed by SealPlaintext,
// which the server runs on start. A Keyring holds several keys: the first seals, each opens what
// it sealed — the state in the middle of a key rotation, which Reseal completes (aviso
// rotate-encryption-key).
package encryption

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aviso-dev/aviso"
)

// Prefix starts every sealed value.
const Prefix = "enc:v1:"

// KeySize is the size of a key: AES-256.
const KeySize = 32

type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring is a list of keys; the first seals. It is safe for concurrent use.
type Keyring struct {
	keys []key
}

// NewKey returns a fresh key as text: the standard base64 of 32 random bytes.
func NewKey() string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// ParseKeys reads keys separated by commas, spaces or newlines, each the base64 (standard or
// URL alphabet, padded or not) of 32 bytes. The first is the current key.
func ParseKeys(text string) (*Keyring, error) {
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("encryption key: none given")
	}
	k := &Keyring{}
	for i, f := range fields {
		raw, err := decodeKey(f)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(raw)
		k.keys = append(k.keys, key{id: hex.EncodeToString(sum[:4]), aead: aead})
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("holds %d bytes, want %d (the base64 of 32 random bytes: openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("is not base64 (want the base64 of 32 random bytes: openssl rand -base64 32)")
}

// Len returns how many keys the keyring holds.
func (k *Keyring) Len() int { return len(k.keys) }

// Seal encrypts a value for the endpoint endpointID with the current key. "" stays "".
func (k *Keyring) Seal(endpointID, plain string) string {
	if plain == "" {
		return ""
	}
	cur := k.keys[0]
	nonce := make([]byte, cur.aead.NonceSize(), cur.aead.NonceSize()+len(plain)+cur.aead.Overhead())
	_, _ = rand.Read(nonce)
	ct := cur.aead.Seal(nonce, nonce, []byte(plain), aad(endpointID))
	return Prefix + cur.id + ":" + base64.RawURLEncoding.EncodeToString(ct)
}

// Open decrypts a sealed value of the endpoint endpointID; a value without the prefix is
// returned as it is (plaintext stored before encryption).
func (k *Keyring) Open(endpointID, s string) (string, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return s, nil
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("sealed value without a key id")
	}
	for _, kk := range k.keys {
		if kk.id != id {
			continue
		}
		ct, err := base64.RawURLEncoding.DecodeString(b64)
		if err != nil || len(ct) < kk.aead.NonceSize() {
			return "", errors.New("sealed value is not valid base64")
		}
		n := kk.aead.NonceSize()
		plain, err := kk.aead.Open(nil, ct[:n], ct[n:], aad(endpointID))
		if err != nil {
			return "", fmt.Errorf("sealed value does not open with key %s: %w", id, err)
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("sealed with key %s, which is not among the configured encryption keys", id)
}

// current reports whether s needs no resealing: "" or sealed with the current key.
func (k *Keyring) current(s string) bool {
	return s == "" || strings.HasPrefix(s, Prefix+k.keys[0].id+":")
}

func aad(endpointID string) []byte { return []byte("aviso endpoint " + endpointID) }

// fields returns pointers to every secret value of e: signing keys, token, auth secrets, secret
// header values.
func fields(e *aviso.Endpoint) []*string {
	out := []*string{&e.Token}
	for i := range e.Secrets {
		out = append(out, &e.Secrets[i].Value)
	}
	if e.Auth != nil {
		out = append(out, e.Auth.SecretFields()...)
	}
	return out
}

// copyEndpoint copies e deeply enough that sealing the copy leaves e as it was.
func copyEndpoint(e *aviso.Endpoint) *aviso.Endpoint {
	c := *e
	c.Secrets = append([]aviso.Secret(nil), e.Secrets...)
	if e.Auth != nil {
		a := *e.Auth
		c.Auth = &a
	}
	if e.SecretHeaders != nil {
		c.SecretHeaders = make(map[string]string, len(e.SecretHeaders))
		for k, v := range e.SecretHeaders {
			c.SecretHeaders[k] = v
		}
	}
	return &c
}

// SealEndpoint returns a copy of e with every secret sealed, for the store; e is not changed.
// A nil keyring returns e itself: secrets are stored as they are.
func (k *Keyring) SealEndpoint(e *aviso.Endpoint) *aviso.Endpoint {
	if k == nil {
		return e
	}
	c := copyEndpoint(e)
	for _, f := range fields(c) {
		if !strings.HasPrefix(*f, Prefix) {
			*f = k.Seal(c.ID, *f)
		}
	}
	for name, v := range c.SecretHeaders {
		if !strings.HasPrefix(v, Prefix) {
			c.SecretHeaders[name] = k.Seal(c.ID, v)
		}
	}
	return c
}

// ErrNoKey is returned when an endpoint holds sealed secrets and no key is configured.
var ErrNoKey = errors.New("the endpoint's secrets are encrypted and no encryption key is configured (AVISO_ENCRYPTION_KEY or --encryption-key-file)")

// OpenEndpoint opens e's secrets in place, as read from the store. Plaintext values stay as they
// are. A nil keyring opens nothing and fails on a sealed value (ErrNoKey).
func (k *Keyring) OpenEndpoint(e *aviso.Endpoint) error {
	open := func(s string) (string, error) {
		if k == nil {
			if strings.HasPrefix(s, Prefix) {
				return "", ErrNoKey
			}
			return s, nil
		}
		return k.Open(e.ID, s)
	}
	for _, f := range fields(e) {
		v, err := open(*f)
		if err != nil {
			return fmt.Errorf("open secrets of endpoint %s: %w", e.ID, err)
		}
		*f = v
	}
	for name, s := range e.SecretHeaders {
		v, err := open(s)
		if err != nil {
			return fmt.Errorf("open secrets of endpoint %s: %w", e.ID, err)
		}
		e.SecretHeaders[name] = v
	}
	return nil
}

// stale reports whether e, as stored, holds a value that is plaintext or sealed with a key other
// than the current one.
func (k *Keyring) stale(e *aviso.Endpoint) bool {
	for _, f := range fields(e) {
		if !k.current(*f) {
			return true
		}
	}
	for _, v := range e.SecretHeaders {
		if !k.current(v) {
			return true
		}
	}
	return false
}

// SealPlaintext rewrites, sealed with the current key, the endpoints holding plaintext secrets
// (a store from before encryption); the server runs it on start. Values sealed with another
// configured key are left to Reseal, so a node restarted in the middle of a rotation changes
// nothing the other nodes could not read.
func SealPlaintext(ctx context.Context, s aviso.Store, k *Keyring) (int, error) {
	return rewrite(ctx, s, k, k.plaintext)
}

// Reseal rewrites, sealed with the current key, the endpoints holding plaintext secrets or
// secrets sealed with an older key: the rotation command. It returns how many endpoints it
// rewrote. Each endpoint is rewritten as it was read, so an endpoint changed by another node in
// the instant between is overwritten with its previous settings: run it when nothing else edits
// endpoints.
func Reseal(ctx context.Context, s aviso.Store, k *Keyring) (int, error) {
	return rewrite(ctx, s, k, k.stale)
}

// plaintext reports whether e, as stored, holds a value stored before encryption.
func (k *Keyring) plaintext(e *aviso.Endpoint) bool {
	for _, f := range fields(e) {
		if *f != "" && !strings.HasPrefix(*f, Prefix) {
			return true
		}
	}
	for _, v := range e.SecretHeaders {
		if v != "" && !strings.HasPrefix(v, Prefix) {
			return true
		}
	}
	return false
}

func rewrite(ctx context.Context, s aviso.Store, k *Keyring, needs func(*aviso.Endpoint) bool) (int, error) {
	n := 0
	tp := aviso.ListParams{Limit: aviso.MaxLimit}
	for {
		tenants, err := s.ListTenants(ctx, tp)
		if err != nil {
			return n, fmt.Errorf("reseal: list tenants: %w", err)
		}
		for _, t := range tenants.Data {
			ep := aviso.ListEndpointsParams{TenantID: t.ID, ListParams: aviso.ListParams{Limit: aviso.MaxLimit}}
			for {
				page, err := s.ListEndpoints(ctx, ep)
				if err != nil {
					return n, fmt.Errorf("reseal: list endpoints of %s: %w", t.ID, err)
				}
				for _, e := range page.Data {
					if !needs(e) {
						continue
					}
					if err := k.OpenEndpoint(e); err != nil {
						return n, fmt.Errorf("reseal: %w", err)
					}
					if err := s.UpdateEndpoint(ctx, k.SealEndpoint(e)); err != nil && aviso.ErrorCode(err) != aviso.ENOTFOUND {
						return n, fmt.Errorf("reseal: update endpoint %s: %w", e.ID, err)
					}
					n++
				}
				if !page.HasMore {
					break
				}
				ep.After = page.NextCursor
			}
		}
		if !tenants.HasMore {
			return n, nil
		}
		tp.After = tenants.NextCursor
	}
}

// Opened returns e with its secrets open: e itself when it holds no sealed value, otherwise an
// opened copy (e may be shared, as claims of one endpoint share it).
func (k *Keyring) Opened(e *aviso.Endpoint) (*aviso.Endpoint, error) {
	sealed := false
	for _, f := range fields(e) {
		sealed = sealed || strings.HasPrefix(*f, Prefix)
	}
	for _, v := range e.SecretHeaders {
		sealed = sealed || strings.HasPrefix(v, Prefix)
	}
	if !sealed {
		return e, nil
	}
	c := copyEndpoint(e)
	if err := k.OpenEndpoint(c); err != nil {
		return nil, err
	}
	return c, nil
}
