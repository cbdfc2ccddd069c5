package dispatch

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Endpoint auth (aviso.Auth) is applied to each attempt's HTTP request, the handshake's and the
// test send's included, after the request is rendered and signed:
//
//   - basic and bearer set Authorization;
//   - oauth2 gets a client-credentials token from the token URL — through the same SSRF-guarded
//     client as deliveries, the client ID and secret in HTTP Basic auth (RFC 6749 §2.3.1) — and
//     sends it as a bearer token. One token per (token URL, client, scope, audience) is shared by
//     the node's attempts and reused until shortly before it expires (tokenMargin); when
//     several attempts need a new one, one fetches it and the others wait for it. A receiver
//     answering 401 gets the request once more with a freshly fetched token;
//   - mtls presents the endpoint's client certificate, and ca_pem (with any type) replaces the
//     system roots for the receiver's certificate: such endpoints get a transport of their own,
//     cloned from the shared one (same guarded dialer), kept while their TLS settings last.
//
// The attempt log records the credentials redacted: "Authorization: Basic ••••".

// tokenMargin is how long before its expiry a cached token is replaced; a token that lives less
// than twice as long is replaced half-way through its life.
const tokenMargin = 30 * time.Second

// maxTLSTransports bounds the per-endpoint transports kept; past it they are all dropped and
// built again as needed.
const maxTLSTransports = 1024

type authState struct {
	mu     sync.Mutex
	tls    map[string]*tlsClient   // by endpoint ID
	tokens map[[32]byte]*tokenSlot // by token source (tokenKey)
}

type tlsClient struct {
	fingerprint [32]byte // of cert, key and CA bundle
	client      *http.Client
	transport   *http.Transport
}

// tokenSlot caches one token source's token. lock (a channel, so waiting honours the context) is
// held while fetching.
type tokenSlot struct {
	lock      chan struct{}
	token     string
	refreshAt time.Time // zero: no token
}

func (s *authState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.tls {
		c.transport.CloseIdleConnections()
	}
	s.tls = nil
}

// clientFor returns the HTTP client for ep: the shared one, or for an endpoint with a client
// certificate or its own CAs a client of its own.
func (d *Dispatcher) clientFor(ep *aviso.Endpoint) (*http.Client, error) {
	a := ep.Auth
	if a == nil || (a.Type != aviso.AuthMTLS && a.CAPEM == "") {
		return d.client, nil
	}
	fp := sha256.Sum256([]byte(a.CertPEM + "\x00" + a.KeyPEM + "\x00" + a.CAPEM))
	s := &d.auth
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.tls[ep.ID]; ok && c.fingerprint == fp {
		return c.client, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.Type == aviso.AuthMTLS {
		cert, err := tls.X509KeyPair([]byte(a.CertPEM), []byte(a.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("the endpoint's client certificate cannot be used: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if a.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(a.CAPEM)) {
			return nil, errors.New("the endpoint's ca_pem holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	t := d.transport.Clone()
	t.TLSClientConfig = cfg
	c := &tlsClient{fingerprint: fp, transport: t,
		client: &http.Client{Transport: t, CheckRedirect: d.client.CheckRedirect}}
	if old, ok := s.tls[ep.ID]; ok {
		old.transport.CloseIdleConnections()
	}
	if s.tls == nil || len(s.tls) >= maxTLSTransports {
		for _, old := range s.tls {
			old.transport.CloseIdleConnections()
		}
		s.tls = make(map[string]*tlsClient)
	}
	s.tls[ep.ID] = c
	return c.client, nil
}

// authorize sets ep's Authorization on hr, fetching an OAuth2 token if needed (a fresh one when
// stale names the token a receiver just refused). It returns the header value as the attempt
// log shows it ("" when none is set) and the OAuth2 token sent.
func (d *Dispatcher) authorize(ctx context.Context, ep *aviso.Endpoint, hr *http.Request, stale string, timeout time.Duration) (logged, token string, err error) {
	a := ep.Auth
	if a == nil {
		return "", "", nil
	}
	switch a.Type {
	case aviso.AuthBasic:
		hr.SetBasicAuth(a.Username, a.Password)
		return "Basic " + aviso.Redacted, "", nil
	case aviso.AuthBearer:
		hr.Header.Set("Authorization", "Bearer "+a.Token)
		return "Bearer " + aviso.Redacted, "", nil
	case aviso.AuthOAuth2:
		token, err := d.token(ctx, a, stale, timeout)
		if err != nil {
			return "", "", err
		}
		hr.Header.Set("Authorization", "Bearer "+token)
		return "Bearer " + aviso.Redacted, token, nil
	}
	return "", "", nil
}

func tokenKey(a *aviso.Auth) [32]byte {
	return sha256.Sum256([]byte(strings.Join([]string{a.TokenURL, a.ClientID, a.ClientSecret, a.Scope, a.Audience}, "\x00")))
}

// token returns a's cached OAuth2 token, or fetches one when there is none, it is about to
// expire, or it is stale (the token a receiver refused).
func (d *Dispatcher) token(ctx context.Context, a *aviso.Auth, stale string, timeout time.Duration) (string, error) {
	key := tokenKey(a)
	s := &d.auth
	s.mu.Lock()
	if s.tokens == nil {
		s.tokens = make(map[[32]byte]*tokenSlot)
	}
	slot, ok := s.tokens[key]
	if !ok {
		slot = &tokenSlot{lock: make(chan struct{}, 1)}
		s.tokens[key] = slot
	}
	s.mu.Unlock()

	select {
	case slot.lock <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("OAuth2 token: %w", ctx.Err())
	}
	defer func() { <-slot.lock }()
	now := d.now()
	if slot.token != "" && slot.token != stale && now.Before(slot.refreshAt) {
		return slot.token, nil
	}
	cc := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL,
		Scopes: strings.Fields(a.Scope), AuthStyle: oauth2.AuthStyleInHeader}
	if a.Audience != "" {
		cc.EndpointParams = url.Values{"audience": {a.Audience}}
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, d.client))
	if err != nil {
		return "", fmt.Errorf("OAuth2 token request to %s failed: %s", aviso.RedactURL(a.TokenURL), describeTokenError(ctx, err, timeout))
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("OAuth2 token request to %s returned no access_token", aviso.RedactURL(a.TokenURL))
	}
	slot.token = tok.AccessToken
	slot.refreshAt = now.Add(24 * time.Hour) // no expires_in: reuse until a receiver refuses it
	if !tok.Expiry.IsZero() {
		life := tok.Expiry.Sub(now)
		slot.refreshAt = tok.Expiry.Add(-min(tokenMargin, life/2))
	}
	d.log.DebugContext(ctx, "oauth2 token fetched", "token_url", aviso.RedactURL(a.TokenURL), "client_id", a.ClientID,
		"refresh_at", slot.refreshAt)
	return slot.token, nil
}

// describeTokenError says why a token request failed, in the terms attempts use.
func describeTokenError(ctx context.Context, err error, timeout time.Duration) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		msg := fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		if re.ErrorCode != "" {
			msg += " " + re.ErrorCode
		}
		return msg
	}
	return describe(ctx, err, timeout)
}
