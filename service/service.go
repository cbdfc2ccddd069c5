// Package service holds Aviso's operations: what a caller may do with tenants, keys, the event
// catalog, endpoints, events and deliveries. It is the one place where authorization, validation
// against the catalog (including JSON Schemas), endpoint matching, the SSRF check and the
// subscription handshake live, so the JSON API (api/) and the dashboard (web/) expose the same
// rules without writing them twice. Stores only persist; senders only send.
//
// Every method takes the caller's aviso.Principal. A root principal may do everything. A
// principal scoped to a tenant sees only that tenant: another tenant's resources answer
// ENOTFOUND, as if they did not exist, and tenant administration and catalog writes answer
// EFORBIDDEN. Errors carry aviso error codes; api/errors.go turns them into HTTP statuses.
//
// Authentication and publishing reuse what they read of API keys, tenants, event types and a
// tenant's enabled endpoints for up to Config.CacheTTL (1 s by default; see cache.go). Changes
// made through the same Service are seen at once. A change made on another node sharing the
// store — a new or deleted endpoint, a deleted tenant and its keys, a catalog change — takes
// effect here within CacheTTL; so does an endpoint the delivery engine disables after
// consecutive failures. An event is still accepted only once it is committed, and the store
// still refuses events of a tenant that no longer exists and skips deliveries to deleted
// endpoints.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/encryption"
	"github.com/aviso-dev/aviso/internal/filter"
	"github.com/aviso-dev/aviso/internal/netguard"
	"github.com/aviso-dev/aviso/internal/tracing"
	"github.com/aviso-dev/aviso/webhook"
)

// Sender makes single HTTP attempts on behalf of the service: the synchronous test send and the
// subscription handshake. dispatch.Dispatcher implements it.
type Sender interface {
	// Send renders ev in ep's format, signs it and makes one attempt. The returned attempt has
	// At, URL, RequestHeaders, ResponseStatus, ResponseBody, DurationMS and Error filled; it is
	// never nil. Send does not record anything.
	Send(ctx context.Context, ep *aviso.Endpoint, ev *aviso.Event) *aviso.Attempt
	// Do POSTs a pre-built request to ep.URL and reports the attempt like Send.
	// eventID is the Webhook-Id the request carries (for the attempt's record).
	Do(ctx context.Context, ep *aviso.Endpoint, req *webhook.Request, eventID string) *aviso.Attempt
}

// Defaults of Config.
const (
	DefaultMaxPayloadBytes  = 1 << 20
	DefaultSecretOverlap    = 24 * time.Hour
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultCacheTTL is how long reads on the publish path are reused (see Config.CacheTTL).
	DefaultCacheTTL = time.Second
	// MaxBatch is how many events one Publish call accepts.
	MaxBatch = 1000
)

// Config configures a Service.
type Config struct {
	// Store persists everything. Required.
	Store aviso.Store
	// Keys seal endpoint secrets before they are stored and open them after they are read (see
	// internal/encryption). Default nil: secrets are stored as given, and sealed ones cannot be
	// read.
	Keys *encryption.Keyring
	// Sender makes the handshake and test-send attempts. Required for creating verified
	// endpoints and for SendTest; without it those answer EUNAVAILABLE.
	Sender Sender
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// MaxPayloadBytes is the largest event data accepted (ETOOLARGE beyond). Default 1 MiB.
	MaxPayloadBytes int
	// AllowPrivateNetworks lifts the SSRF check on endpoint URLs (development and tests).
	// Default false: loopback, private and metadata addresses are refused.
	AllowPrivateNetworks bool
	// SecretOverlap is how long a rotated-out secret keeps signing. Default 24h.
	SecretOverlap time.Duration
	// HandshakeTimeout is how long an endpoint URL has to answer the verification request with
	// a 2xx. Default 5s (as Alegra does).
	HandshakeTimeout time.Duration
	// RetrySchedule is the schedule of endpoints without their own, used when a test send
	// fails. Default aviso.DefaultRetrySchedule().
	RetrySchedule []time.Duration
	// CacheTTL is how long the service reuses what it read of API keys, tenants, event types and
	// a tenant's enabled endpoints when authenticating and publishing. Its own writes invalidate
	// at once; a change made by another node sharing the store (or an endpoint the delivery
	// engine disables) is seen within CacheTTL. Default 1s (DefaultCacheTTL); negative: no
	// caching, every request reads the store.
	CacheTTL time.Duration
	// DisablePolicy is the auto-disable rule of endpoints without their own, which test sends
	// follow too (the delivery engine has the same setting). Default: aviso.DefaultDisablePolicy().
	DisablePolicy *aviso.DisablePolicy
	// TracerProvider traces Publish and its store transaction (internal/tracing); the events
	// carry the publish span's trace context, which their attempts continue. Default nil: no
	// spans, the events carry the caller's trace context if it has one.
	TracerProvider trace.TracerProvider
}

// cacheSize bounds each read cache (keys, tenants, event types, tenants' endpoint lists).
const cacheSize = 10_000

// Service is Aviso's set of operations. It is safe for concurrent use.
type Service struct {
	store  aviso.Store
	sender Sender
	log    *slog.Logger
	now    func() time.Time
	guard  *netguard.Guard
	cfg    Config
	tracer trace.Tracer
	// publishSpan is the start option of Publish's span, made once (no allocation per publish).
	publishSpan []trace.SpanStartOption

	mu      sync.Mutex
	schemas map[string]*cachedSchema   // by event type name
	filters map[string]*filter.Program // compiled endpoint filters, by source (filters.go)

	// Read caches of the publish path (see cache.go).
	keys       *readCache[string, aviso.Principal]   // by key hash
	tenants    *readCache[string, struct{}]          // tenants that exist
	eventTypes *readCache[string, *aviso.EventType]  // by name
	endpoints  *readCache[string, []*aviso.Endpoint] // a tenant's enabled endpoints
}

// New validates cfg, fills its defaults and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("service: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPayloadBytes < 0 || cfg.SecretOverlap < 0 || cfg.HandshakeTimeout < 0 {
		return nil, errors.New("service: limits and durations must not be negative")
	}
	if cfg.MaxPayloadBytes == 0 {
		cfg.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if cfg.SecretOverlap == 0 {
		cfg.SecretOverlap = DefaultSecretOverlap
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = aviso.DefaultRetrySchedule()
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.DisablePolicy == nil {
		p := aviso.DefaultDisablePolicy()
		cfg.DisablePolicy = &p
	}
	now := cfg.Now
	return &Service{
		keys:        newReadCache[string, aviso.Principal](cfg.CacheTTL, cacheSize, now),
		tenants:     newReadCache[string, struct{}](cfg.CacheTTL, cacheSize, now),
		eventTypes:  newReadCache[string, *aviso.EventType](cfg.CacheTTL, cacheSize, now),
		endpoints:   newReadCache[string, []*aviso.Endpoint](cfg.CacheTTL, cacheSize, now),
		store:       cfg.Store,
		sender:      cfg.Sender,
		log:         cfg.Logger,
		now:         func() time.Time { return cfg.Now().UTC() },
		guard:       &netguard.Guard{AllowPrivate: cfg.AllowPrivateNetworks},
		cfg:         cfg,
		tracer:      tracing.Tracer(cfg.TracerProvider),
		publishSpan: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)},
		schemas:     make(map[string]*cachedSchema),
		filters:     make(map[string]*filter.Program),
	}, nil
}

// Ping checks the store is reachable (readiness). EUNAVAILABLE when it is not.
func (s *Service) Ping(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		if aviso.ErrorCode(err) == aviso.ESTORAGE {
			return err // it answers, but cannot write
		}
		return &aviso.Error{Code: aviso.EUNAVAILABLE, Message: "the store is unreachable", Err: err}
	}
	return nil
}

// MaxPayloadBytes is the largest event data Publish accepts.
func (s *Service) MaxPayloadBytes() int { return s.cfg.MaxPayloadBytes }

// requireRoot answers EFORBIDDEN unless p is a root principal.
func requireRoot(p aviso.Principal, what string) error {
	if !p.IsRoot() {
		return aviso.Errorf(aviso.EFORBIDDEN, "a tenant key cannot %s; use the root key", what)
	}
	return nil
}

// tenant returns the tenant if p may see it, ENOTFOUND otherwise (also when it does not exist).
func (s *Service) tenant(ctx context.Context, p aviso.Principal, tenantID string) (*aviso.Tenant, error) {
	if !p.CanSeeTenant(tenantID) {
		return nil, tenantNotFound(tenantID)
	}
	t, err := s.store.GetTenant(ctx, tenantID)
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return nil, tenantNotFound(tenantID)
	}
	if err != nil {
		return nil, fmt.Errorf("get tenant: %w", err)
	}
	return t, nil
}

// tenantExists answers like tenant, from the tenant cache (see cache.go): for paths that need
// only to know the tenant is there.
func (s *Service) tenantExists(ctx context.Context, p aviso.Principal, tenantID string) error {
	if !p.CanSeeTenant(tenantID) {
		return tenantNotFound(tenantID)
	}
	_, err := s.tenants.get(ctx, tenantID, func(ctx context.Context) (struct{}, error) {
		_, err := s.tenant(ctx, p, tenantID)
		return struct{}{}, err
	})
	return err
}

func tenantNotFound(id string) error {
	return aviso.Errorf(aviso.ENOTFOUND, "tenant %q not found", id)
}

// listAll collects every item of a paged list.
func listAll[T any](ctx context.Context, list func(ctx context.Context, lp aviso.ListParams) (*aviso.Page[T], error)) ([]T, error) {
	var out []T
	lp := aviso.ListParams{Limit: aviso.MaxLimit}
	for {
		page, err := list(ctx, lp)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Data...)
		if !page.HasMore || page.NextCursor == "" {
			return out, nil
		}
		lp.After = page.NextCursor
	}
}
