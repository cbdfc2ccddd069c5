package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/aviso-dev/aviso"
)

// KeyPrefix starts every API key Aviso generates.
const KeyPrefix = "avk_"

// newKey returns a fresh API key: "avk_" and 32 random bytes in unpadded base64url.
func newKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashKey returns the hex SHA-256 of an API key: what the store keeps instead of the key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// keyPrefix returns the first characters of a key, kept so an operator can recognise it.
func keyPrefix(key string) string {
	return key[:min(len(key), len(KeyPrefix)+6)]
}

// Authenticate returns the principal an API key stands for. EUNAUTHORIZED when the key is empty
// or unknown. A known key's principal is cached for Config.CacheTTL (unknown keys are not).
func (s *Service) Authenticate(ctx context.Context, key string) (aviso.Principal, error) {
	if key == "" {
		return aviso.Principal{}, aviso.Errorf(aviso.EUNAUTHORIZED, "an API key is required")
	}
	hash := HashKey(key)
	p, err := s.keys.get(ctx, hash, func(ctx context.Context) (aviso.Principal, error) {
		k, err := s.store.GetAPIKeyByHash(ctx, hash)
		if err != nil {
			return aviso.Principal{}, err
		}
		return aviso.Principal{KeyID: k.ID, TenantID: k.TenantID}, nil
	})
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return aviso.Principal{}, aviso.Errorf(aviso.EUNAUTHORIZED, "unknown API key")
	}
	if err != nil {
		return aviso.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return p, nil
}

// EnsureRootKey makes sure a root key exists. With configured non-empty, that key becomes the
// root key (replacing any earlier one) and "" is returned. With configured empty, an existing
// root key is kept; when there is none, one is generated, stored hashed and returned so that the
// caller can show it once — it cannot be recovered later.
func (s *Service) EnsureRootKey(ctx context.Context, configured string) (generated string, err error) {
	key := configured
	if key == "" {
		_, err := s.store.GetAPIKey(ctx, aviso.RootKeyID)
		if err == nil {
			return "", nil
		}
		if aviso.ErrorCode(err) != aviso.ENOTFOUND {
			return "", fmt.Errorf("ensure root key: %w", err)
		}
		key = newKey()
		generated = key
	}
	k := &aviso.APIKey{ID: aviso.RootKeyID, Hash: HashKey(key), Prefix: keyPrefix(key), CreatedAt: s.now()}
	defer s.keys.forgetAll() // the root key it replaces may be cached
	if err := s.store.SaveAPIKey(ctx, k); err != nil {
		return "", fmt.Errorf("ensure root key: %w", err)
	}
	return generated, nil
}

// CreateTenantKey issues a key scoped to tenantID and returns it in clear (the only time it is
// available) with its stored record. A tenant key may issue keys for its own tenant only;
// another tenant answers ENOTFOUND, as everywhere else.
func (s *Service) CreateTenantKey(ctx context.Context, p aviso.Principal, tenantID string) (key string, k *aviso.APIKey, err error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return "", nil, err
	}
	now := s.now()
	key = newKey()
	k = &aviso.APIKey{ID: aviso.NewID(aviso.PrefixKey, now), TenantID: tenantID, Hash: HashKey(key),
		Prefix: keyPrefix(key), CreatedAt: now}
	defer s.keys.forget(k.Hash)
	if err := s.store.SaveAPIKey(ctx, k); err != nil {
		return "", nil, fmt.Errorf("create tenant key: %w", err)
	}
	s.log.InfoContext(ctx, "tenant key issued", "tenant_id", tenantID, "key_id", k.ID)
	return key, k, nil
}
