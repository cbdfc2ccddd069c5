package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
)

// A session cookie holds an HMAC-signed, expiring token carrying the principal (key ID and
// tenant), a random nonce and a generation, never the API key itself. The CSRF token of a session
// is an HMAC of that nonce, so it needs no server-side storage; it changes with every sign-in.
//
//	token = base64url(keyID "|" tenantID "|" expiryUnix "|" nonce "|" gen) "." base64url(HMAC-SHA256)
//
// The token alone never keeps a session alive; each request also checks the store (see
// Handler.session):
//   - gen of a key's session is a MAC of the key's stored hash: a key replaced (the root key set
//     anew) or deleted (with its tenant) ends every session it opened;
//   - gen of a portal session is the ID of the link that opened it (linkID);
//   - signing out records the session's nonce, and for a portal session the link's ID, in the
//     store's short list of revoked sessions (Store.RevokeSession) until they would have expired
//     anyway, so a copied cookie, or the link itself, stops working on every node.
//
// Each token kind (session, portal link) signs with its own label mixed into the MAC so a token of
// one kind is never accepted as the other.

const (
	sessionCookie = "aviso_session"
	langCookie    = "aviso_lang"
	csrfField     = "csrf"

	kindSession = "session"
	kindPortal  = "portal"
	kindCSRF    = "csrf"
	kindKeyGen  = "keygen"
	kindLink    = "link"
)

// PortalKeyID is the KeyID of the principal of a session opened from a portal link.
const PortalKeyID = "portal"

// session is a signed-in dashboard user.
type session struct {
	Principal aviso.Principal
	Expires   time.Time
	Nonce     string
	Gen       string // keyGen of the key, or the portal link's linkID
}

// signer makes and checks the signed tokens of the dashboard.
type signer struct {
	key []byte
}

func (s signer) mac(kind, payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sign returns payload and its MAC as one token.
func (s signer) sign(kind string, fields ...string) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(fields, "|")))
	return payload + "." + s.mac(kind, payload)
}

var errBadToken = errors.New("invalid or expired token")

// open checks a token's MAC and returns its n fields.
func (s signer) open(kind, token string, n int) ([]string, error) {
	payload, mac, ok := strings.Cut(token, ".")
	if !ok || len(token) > 4096 {
		return nil, errBadToken
	}
	if !hmac.Equal([]byte(mac), []byte(s.mac(kind, payload))) {
		return nil, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errBadToken
	}
	fields := strings.Split(string(raw), "|")
	if len(fields) != n {
		return nil, errBadToken
	}
	return fields, nil
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionToken encodes a session.
func (s signer) sessionToken(ss session) string {
	return s.sign(kindSession, ss.Principal.KeyID, ss.Principal.TenantID,
		strconv.FormatInt(ss.Expires.Unix(), 10), ss.Nonce, ss.Gen)
}

// keyGen names the generation of an API key, from its stored hash, without revealing the hash.
func (s signer) keyGen(hash string) string { return s.mac(kindKeyGen, hash)[:22] }

// linkID names a portal link (the token of its t parameter).
func (s signer) linkID(token string) string { return "link:" + s.mac(kindLink, token)[:22] }

// parseSession decodes a session token valid at now.
func (s signer) parseSession(token string, now time.Time) (session, error) {
	f, err := s.open(kindSession, token, 5)
	if err != nil {
		return session{}, err
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) || f[0] == "" || f[3] == "" || f[4] == "" {
		return session{}, errBadToken
	}
	return session{Principal: aviso.Principal{KeyID: f[0], TenantID: f[1]},
		Expires: time.Unix(exp, 0).UTC(), Nonce: f[3], Gen: f[4]}, nil
}

// csrfToken returns the CSRF token of a session: every form carries it in a hidden field.
func (s signer) csrfToken(ss session) string { return s.mac(kindCSRF, ss.Nonce) }

// checkCSRF reports whether got is the CSRF token of the session.
func (s signer) checkCSRF(ss session, got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(s.csrfToken(ss)))
}

// portalToken encodes a portal link for a tenant, valid until expires.
func (s signer) portalToken(tenantID string, expires time.Time) string {
	return s.sign(kindPortal, tenantID, strconv.FormatInt(expires.Unix(), 10))
}

// parsePortal decodes a portal token valid at now and returns its tenant.
func (s signer) parsePortal(token string, now time.Time) (string, error) {
	f, err := s.open(kindPortal, token, 2)
	if err != nil {
		return "", err
	}
	exp, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) || !aviso.ValidTenantID(f[0]) {
		return "", errBadToken
	}
	return f[0], nil
}

// sessionCookieFor returns the cookie that carries a session.
//
// Over plain HTTP the cookie is SameSite=Lax: it is sent on top-level navigation (so the portal
// link works when opened in a tab) but not on cross-site subrequests. Under TLS (Config.Secure) it
// is SameSite=None and Secure, so a platform can embed the tenant portal in an iframe on its own
// site; cross-site form posts are then stopped by http.CrossOriginProtection and the per-session
// CSRF token instead, which every unsafe request must pass in either mode.
func (h *Handler) sessionCookieFor(value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: sessionCookie, Value: value, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.secure}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	if h.secure {
		c.SameSite = http.SameSiteNoneMode
	}
	return c
}
