package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/webhook"
)

// EndpointInput creates an endpoint. Zero fields take defaults: format standard, timeout 10 s,
// every event type, a generated token (tusfacturas format), HMAC signing, no auth. Verify
// defaults to true: the URL must answer the subscription handshake before the endpoint is
// stored. In JSON, "headers" holds both Headers and SecretHeaders (see endpointsecurity.go).
type EndpointInput struct {
	URL            string            `json:"url"`
	Description    string            `json:"description"`
	EventTypes     []string          `json:"event_types"`
	Format         aviso.Format      `json:"format"`
	Headers        map[string]string `json:"headers"`
	SecretHeaders  map[string]string `json:"-"`       // write-only header values
	Signing        string            `json:"signing"` // aviso.SigningHMAC (default) or aviso.SigningEd25519
	Auth           *aviso.Auth       `json:"auth"`
	TimeoutSeconds int               `json:"timeout_seconds"`
	RetrySchedule  []aviso.Duration  `json:"retry_schedule"`
	Metadata       map[string]string `json:"metadata"`
	Token          string            `json:"token"`
	Verify         *bool             `json:"verify"`
	Disabled       bool              `json:"disabled"`
	// DisableAfter is the endpoint's auto-disable rule; nil: the server's.
	DisableAfter *aviso.DisablePolicy `json:"disable_after"`
	// Filter is an expression the event must satisfy (internal/filter); "" lets every event of
	// its types through.
	Filter string `json:"filter"`
	// Ordering is "external_reference" to deliver the events of one external reference one at a
	// time, in publish order; "" (the default) for none.
	Ordering string `json:"ordering"`
	// SendTraceparent sends each attempt's W3C trace context to the receiver. Default false.
	SendTraceparent bool `json:"send_traceparent"`
	// RateLimit is the most deliveries per second the endpoint is sent; nil or 0: no limit.
	RateLimit *int `json:"rate_limit"`
}

// EndpointPatch changes an endpoint; nil fields are left as they are. Changing the URL runs the
// handshake again unless Verify is false. Disabled disables (reason "manual") or re-enables.
// Changing Signing gives the endpoint a key of the new scheme, the old keys signing beside it
// for the secret overlap as in a rotation. An Auth with an empty Type removes the auth; write-only
// values sent as aviso.Redacted keep what is stored (see endpointsecurity.go).
type EndpointPatch struct {
	URL            *string            `json:"url"`
	Description    *string            `json:"description"`
	EventTypes     *[]string          `json:"event_types"`
	Format         *aviso.Format      `json:"format"`
	Headers        *map[string]string `json:"headers"`
	SecretHeaders  *map[string]string `json:"-"`
	Signing        *string            `json:"signing"`
	Auth           *aviso.Auth        `json:"auth"`
	TimeoutSeconds *int               `json:"timeout_seconds"`
	RetrySchedule  *[]aviso.Duration  `json:"retry_schedule"`
	Metadata       *map[string]string `json:"metadata"`
	Token          *string            `json:"token"`
	Verify         *bool              `json:"verify"`
	Disabled       *bool              `json:"disabled"`
	// DisableAfter sets the endpoint's auto-disable rule; JSON null goes back to the server's.
	DisableAfter json.RawMessage `json:"disable_after"`
	// Filter replaces the payload filter; "" removes it.
	Filter *string `json:"filter"`
	// Ordering sets the ordering: "external_reference" or "" (none).
	Ordering *string `json:"ordering"`
	// SendTraceparent turns sending the trace context to the receiver on or off.
	SendTraceparent *bool `json:"send_traceparent"`
	// RateLimit replaces the rate limit (deliveries per second); JSON null or 0 removes it.
	RateLimit json.RawMessage `json:"rate_limit"`
}

// SecretInfo is what a receiver needs to check deliveries: the newest verification key, every
// live one (a rotated-out one until it expires) and the TF-WebhookToken of the tusfacturas
// format. A verification key is the "whsec_…" secret of HMAC signing, or the "whpk_…" public
// key of an Ed25519 "whsk_…" signing key, which itself never leaves Aviso.
type SecretInfo struct {
	Signing string         `json:"signing"`
	Secret  string         `json:"secret"`
	Secrets []aviso.Secret `json:"secrets"`
	Token   string         `json:"token"`
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateEndpoint validates, checks the URL against the SSRF guard and every event type against
// the catalog, runs the subscription handshake (unless Verify is false) and only then stores the
// endpoint: a refused request stores nothing. ENOTFOUND (tenant); EINVALID naming the field — for
// a failed handshake the field is "url" and the message says what the URL answered.
func (s *Service) CreateEndpoint(ctx context.Context, p aviso.Principal, tenantID string, in EndpointInput) (*aviso.Endpoint, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	now := s.now()
	ep := &aviso.Endpoint{
		ID: aviso.NewID(aviso.PrefixEndpoint, now), TenantID: tenantID, URL: in.URL,
		Description: in.Description, EventTypes: in.EventTypes, Format: in.Format, Headers: in.Headers,
		TimeoutSeconds: in.TimeoutSeconds, RetrySchedule: in.RetrySchedule, Metadata: in.Metadata,
		Token: in.Token, Signing: in.Signing, Auth: in.Auth, SecretHeaders: in.SecretHeaders,
		DisableAfter: in.DisableAfter, Filter: in.Filter, Ordering: in.Ordering, SendTraceparent: in.SendTraceparent,
		CreatedAt: now, UpdatedAt: now,
	}
	if in.RateLimit != nil {
		ep.RateLimit = *in.RateLimit
	}
	if ep.Signing == "" {
		ep.Signing = aviso.SigningHMAC
	}
	if ep.Auth != nil && ep.Auth.Type == "" {
		ep.Auth = nil
	}
	ep.Secrets = []aviso.Secret{{Value: newSigningKey(ep.Signing)}}
	if ep.Format == "" {
		ep.Format = aviso.FormatStandard
	}
	if ep.TimeoutSeconds == 0 {
		ep.TimeoutSeconds = aviso.DefaultTimeoutSeconds
	}
	if ep.Token == "" {
		ep.Token = newToken()
	}
	normalizeEndpoint(ep)
	if err := s.checkEndpoint(ctx, ep); err != nil {
		return nil, err
	}
	if in.Verify == nil || *in.Verify {
		if err := s.handshake(ctx, ep); err != nil {
			return nil, err
		}
		ep.VerifiedAt = &now
	}
	defer s.endpoints.forget(tenantID)
	if err := s.store.CreateEndpoint(ctx, s.cfg.Keys.SealEndpoint(ep)); err != nil {
		return nil, fmt.Errorf("create endpoint: %w", err)
	}
	s.log.InfoContext(ctx, "endpoint created", "tenant_id", tenantID, "endpoint_id", ep.ID,
		"verified", ep.VerifiedAt != nil)
	s.notifyEndpoint(ctx, aviso.EventEndpointCreated, ep)
	if in.Disabled {
		if _, err := s.setDisabled(ctx, ep, true); err != nil {
			return nil, err
		}
		return s.getEndpoint(ctx, tenantID, ep.ID)
	}
	return ep, nil
}

// normalizeEndpoint replaces nil collections with empty ones, so the JSON shows [] and {}.
func normalizeEndpoint(ep *aviso.Endpoint) {
	if ep.EventTypes == nil {
		ep.EventTypes = []string{}
	}
	if ep.Headers == nil {
		ep.Headers = map[string]string{}
	}
	if ep.Metadata == nil {
		ep.Metadata = map[string]string{}
	}
	if ep.RetrySchedule == nil {
		ep.RetrySchedule = []aviso.Duration{}
	}
	if ep.SecretHeaders == nil {
		ep.SecretHeaders = map[string]string{}
	}
	if ep.Signing == "" {
		ep.Signing = aviso.SigningHMAC
	}
}

// checkEndpoint validates the fields, the event types against the catalog and the URL against
// the SSRF guard.
func (s *Service) checkEndpoint(ctx context.Context, ep *aviso.Endpoint) error {
	if err := checkRedacted(ep); err != nil {
		return err
	}
	if err := ep.Validate(); err != nil {
		return err
	}
	if err := s.checkFilter(ep); err != nil {
		return err
	}
	if len(ep.Token) > 200 {
		return aviso.Invalid("token", "must be at most 200 characters")
	}
	for i, name := range ep.EventTypes {
		if _, err := s.store.GetEventType(ctx, name); err != nil {
			if aviso.ErrorCode(err) == aviso.ENOTFOUND {
				return aviso.Invalid("event_types", "entry %d (%q) is not in the event catalog", i, name)
			}
			return fmt.Errorf("check event types: %w", err)
		}
	}
	if err := s.guard.CheckURL(ctx, ep.URL); err != nil {
		return err
	}
	if ep.Auth != nil && ep.Auth.Type == aviso.AuthOAuth2 {
		if err := s.guard.CheckURL(ctx, ep.Auth.TokenURL); err != nil {
			return aviso.Invalid("auth.token_url", "%s", aviso.ErrorMessage(err))
		}
	}
	return nil
}

// handshake sends the verification request and answers EINVALID on "url", saying what the URL
// answered, unless it answered 2xx within HandshakeTimeout.
func (s *Service) handshake(ctx context.Context, ep *aviso.Endpoint) error {
	if s.sender == nil {
		return aviso.Errorf(aviso.EUNAVAILABLE, "this server cannot send verification requests; pass \"verify\": false")
	}
	// For alegra endpoints exactly Alegra's request, a POST with an empty body; for the other
	// formats a signed ping event in the endpoint's format with every header a delivery carries.
	req, err := webhook.HandshakeRequest(ep, s.now())
	if err != nil {
		return fmt.Errorf("build handshake: %w", err)
	}
	evID := req.Header.Get("Webhook-Id")
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	a := s.sender.Do(hctx, ep, req, evID)
	if a.Succeeded() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	var what string
	switch {
	case hctx.Err() != nil:
		what = fmt.Sprintf("did not answer within %s", s.cfg.HandshakeTimeout)
	case a.ResponseStatus != 0:
		what = fmt.Sprintf("answered HTTP %d", a.ResponseStatus)
	default:
		what = fmt.Sprintf("could not be reached (%s)", a.Error)
	}
	s.log.InfoContext(ctx, "endpoint handshake refused", "tenant_id", ep.TenantID, "url", aviso.RedactURL(ep.URL),
		"response_status", a.ResponseStatus, "error", a.Error)
	return aviso.Invalid("url", "the verification request %s; the URL must answer a POST with a 2xx within %s (or pass \"verify\": false to skip the check)",
		what, s.cfg.HandshakeTimeout)
}

func (s *Service) getEndpoint(ctx context.Context, tenantID, id string) (*aviso.Endpoint, error) {
	ep, err := s.store.GetEndpoint(ctx, tenantID, id)
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return nil, aviso.Errorf(aviso.ENOTFOUND, "endpoint %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get endpoint: %w", err)
	}
	if err := s.cfg.Keys.OpenEndpoint(ep); err != nil {
		return nil, err
	}
	normalizeEndpoint(ep)
	return ep, nil
}

// GetEndpoint returns one endpoint. ENOTFOUND.
func (s *Service) GetEndpoint(ctx context.Context, p aviso.Principal, tenantID, id string) (*aviso.Endpoint, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	return s.getEndpoint(ctx, tenantID, id)
}

// ListEndpoints lists a tenant's endpoints ordered by ID. ENOTFOUND (tenant).
func (s *Service) ListEndpoints(ctx context.Context, p aviso.Principal, tenantID string, lp aviso.ListParams) (*aviso.Page[*aviso.Endpoint], error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	page, err := listPage(aviso.EndpointsCursor, lp, func(lp aviso.ListParams) (*aviso.Page[*aviso.Endpoint], error) {
		return s.store.ListEndpoints(ctx, aviso.ListEndpointsParams{ListParams: lp, TenantID: tenantID})
	})
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	for _, ep := range page.Data {
		if err := s.cfg.Keys.OpenEndpoint(ep); err != nil {
			return nil, err
		}
		normalizeEndpoint(ep)
	}
	return page, nil
}

// UpdateEndpoint applies a patch. Everything is checked — and a new URL verified — before
// anything is written. ENOTFOUND; EINVALID.
func (s *Service) UpdateEndpoint(ctx context.Context, p aviso.Principal, tenantID, id string, in EndpointPatch) (*aviso.Endpoint, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	ep, err := s.getEndpoint(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	old := *ep
	oldURL := ep.URL
	set(&ep.URL, in.URL)
	set(&ep.SecretHeaders, in.SecretHeaders)
	if in.Auth != nil {
		a := *in.Auth
		ep.Auth = &a
		if a.Type == "" {
			ep.Auth = nil
		}
	}
	keepRedacted(ep, &old)
	if in.Signing != nil && *in.Signing != ep.Signing && *in.Signing != "" {
		ep.Signing = *in.Signing
		if ep.Signing == aviso.SigningHMAC || ep.Signing == aviso.SigningEd25519 {
			ep.Secrets = s.rotated(ep.Secrets, ep.Signing)
		}
	}
	set(&ep.Description, in.Description)
	set(&ep.EventTypes, in.EventTypes)
	set(&ep.Format, in.Format)
	set(&ep.Headers, in.Headers)
	set(&ep.TimeoutSeconds, in.TimeoutSeconds)
	set(&ep.RetrySchedule, in.RetrySchedule)
	set(&ep.Metadata, in.Metadata)
	set(&ep.Token, in.Token)
	set(&ep.Filter, in.Filter)
	set(&ep.Ordering, in.Ordering)
	set(&ep.SendTraceparent, in.SendTraceparent)
	if len(in.DisableAfter) > 0 {
		ep.DisableAfter = nil
		if string(in.DisableAfter) != "null" {
			var rule aviso.DisablePolicy
			dec := json.NewDecoder(bytes.NewReader(in.DisableAfter))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&rule); err != nil {
				return nil, aviso.Invalid("disable_after", `must be null or {"failures": 10, "min_span": "1h"}`)
			}
			ep.DisableAfter = &rule
		}
	}
	if len(in.RateLimit) > 0 {
		ep.RateLimit = 0
		if string(in.RateLimit) != "null" {
			if err := json.Unmarshal(in.RateLimit, &ep.RateLimit); err != nil {
				return nil, aviso.Invalid("rate_limit", "must be null or a whole number of deliveries per second")
			}
		}
	}
	if ep.Format == "" {
		ep.Format = aviso.FormatStandard
	}
	if ep.Token == "" {
		ep.Token = newToken()
	}
	normalizeEndpoint(ep)
	if err := s.checkEndpoint(ctx, ep); err != nil {
		return nil, err
	}
	if ep.URL != oldURL {
		if in.Verify == nil || *in.Verify {
			if err := s.handshake(ctx, ep); err != nil {
				return nil, err
			}
			now := s.now()
			ep.VerifiedAt = &now
		} else {
			ep.VerifiedAt = nil
		}
	}
	ep.UpdatedAt = s.now()
	defer s.endpoints.forget(tenantID)
	if err := s.store.UpdateEndpoint(ctx, s.cfg.Keys.SealEndpoint(ep)); err != nil {
		return nil, fmt.Errorf("update endpoint: %w", err)
	}
	if in.Disabled != nil && *in.Disabled != ep.Disabled {
		if _, err := s.setDisabled(ctx, ep, *in.Disabled); err != nil {
			return nil, err
		}
	}
	return s.getEndpoint(ctx, tenantID, id)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Service) setDisabled(ctx context.Context, ep *aviso.Endpoint, disabled bool) (*aviso.Endpoint, error) {
	defer s.endpoints.forget(ep.TenantID)
	out, err := s.store.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: ep.TenantID,
		ID: ep.ID, Disabled: disabled, Reason: aviso.DisabledByUser, Now: s.now()})
	if err != nil {
		return nil, fmt.Errorf("set endpoint disabled: %w", err)
	}
	if err := s.cfg.Keys.OpenEndpoint(out); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "endpoint disabled changed", "tenant_id", ep.TenantID, "endpoint_id", ep.ID,
		"disabled", disabled)
	if disabled {
		s.notifyEndpoint(ctx, aviso.EventEndpointDisabled, out)
	} else {
		s.notifyEndpoint(ctx, aviso.EventEndpointEnabled, out)
	}
	return out, nil
}

// DeleteEndpoint removes an endpoint with its deliveries and attempts. ENOTFOUND.
func (s *Service) DeleteEndpoint(ctx context.Context, p aviso.Principal, tenantID, id string) error {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return err
	}
	ep, err := s.getEndpoint(ctx, tenantID, id) // for the notice
	if err != nil {
		return err
	}
	defer s.endpoints.forget(tenantID)
	if err := s.store.DeleteEndpoint(ctx, tenantID, id); err != nil {
		if aviso.ErrorCode(err) == aviso.ENOTFOUND {
			return aviso.Errorf(aviso.ENOTFOUND, "endpoint %q not found", id)
		}
		return fmt.Errorf("delete endpoint: %w", err)
	}
	s.notifyEndpoint(ctx, aviso.EventEndpointDeleted, ep)
	return nil
}

// RotateSecret gives the endpoint a new signing secret. The previous live secrets keep signing
// alongside it until SecretOverlap from now (unless they already expire sooner); expired secrets
// are dropped. ENOTFOUND.
func (s *Service) RotateSecret(ctx context.Context, p aviso.Principal, tenantID, id string) (*SecretInfo, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	ep, err := s.getEndpoint(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ep.Secrets = s.rotated(ep.Secrets, ep.Signing)
	ep.UpdatedAt = now
	defer s.endpoints.forget(tenantID)
	if err := s.store.UpdateEndpoint(ctx, s.cfg.Keys.SealEndpoint(ep)); err != nil {
		return nil, fmt.Errorf("rotate secret: %w", err)
	}
	s.log.InfoContext(ctx, "endpoint secret rotated", "tenant_id", tenantID, "endpoint_id", id)
	return secretInfo(ep, now), nil
}

// rotated returns a new key of the signing scheme followed by the live keys of secrets, each
// expiring SecretOverlap from now unless it expires sooner.
func (s *Service) rotated(secrets []aviso.Secret, signing string) []aviso.Secret {
	now := s.now()
	expires := now.Add(s.cfg.SecretOverlap)
	out := []aviso.Secret{{Value: newSigningKey(signing)}}
	for _, old := range secrets {
		switch {
		case old.ExpiresAt == nil:
			old.ExpiresAt = &expires
		case !now.Before(*old.ExpiresAt):
			continue
		}
		out = append(out, old)
	}
	return out
}

// DisablePolicy returns the auto-disable rule ep follows: its own, or the server's.
func (s *Service) DisablePolicy(ep *aviso.Endpoint) aviso.DisablePolicy {
	if ep.DisableAfter != nil {
		return *ep.DisableAfter
	}
	return *s.cfg.DisablePolicy
}

// GetSecret returns the endpoint's live verification keys, newest first, and its token. ENOTFOUND.
func (s *Service) GetSecret(ctx context.Context, p aviso.Principal, tenantID, id string) (*SecretInfo, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	ep, err := s.getEndpoint(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	return secretInfo(ep, s.now()), nil
}

func secretInfo(ep *aviso.Endpoint, now time.Time) *SecretInfo {
	info := &SecretInfo{Signing: ep.Signing, Secrets: []aviso.Secret{}, Token: ep.Token}
	for _, sc := range ep.Secrets {
		if sc.ExpiresAt == nil || now.Before(*sc.ExpiresAt) {
			key, err := webhook.VerificationKey(sc.Value)
			if err != nil {
				continue // not a key Build could sign with either
			}
			info.Secrets = append(info.Secrets, aviso.Secret{Value: key, ExpiresAt: sc.ExpiresAt})
		}
	}
	if len(info.Secrets) > 0 {
		info.Secret = info.Secrets[0].Value
	}
	return info
}

// TestInput chooses what SendTest sends. Type defaults to the endpoint's first subscribed type
// (or the catalog's first entry when it subscribes to every type); Data defaults to the type's
// catalog example.
type TestInput struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// TestEventPrefix starts the ID of every event SendTest publishes, so the delivery log (and a
// receiver, from the webhook-id header) can tell a test from a real event. Like every event ID it
// sorts by time only among its own kind.
const TestEventPrefix = "evt_test_"

// SendTest publishes a real event to this one endpoint and makes one synchronous attempt, so the
// test shows in the delivery log. A failed attempt is scheduled for retry like any other.
// It returns the attempt. ENOTFOUND; EINVALID ("type", "data", a schema pointer).
func (s *Service) SendTest(ctx context.Context, p aviso.Principal, tenantID, endpointID string, in TestInput) (*aviso.Attempt, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	if s.sender == nil {
		return nil, aviso.Errorf(aviso.EUNAVAILABLE, "this server cannot send test events")
	}
	ep, err := s.getEndpoint(ctx, tenantID, endpointID)
	if err != nil {
		return nil, err
	}
	if in.Type == "" && len(ep.EventTypes) > 0 {
		in.Type = ep.EventTypes[0]
	}
	if in.Type == "" {
		page, err := s.store.ListEventTypes(ctx, aviso.ListParams{Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("send test: %w", err)
		}
		if len(page.Data) == 0 {
			return nil, aviso.Invalid("type", "is required: the event catalog is empty")
		}
		in.Type = page.Data[0].Name
	}
	et, err := s.store.GetEventType(ctx, in.Type)
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return nil, aviso.Invalid("type", "%q is not in the event catalog", in.Type)
	} else if err != nil {
		return nil, fmt.Errorf("send test: %w", err)
	}
	if len(in.Data) == 0 || isNull(in.Data) {
		in.Data = et.Example
		if len(in.Data) == 0 {
			in.Data = json.RawMessage(`{}`)
		}
	} else if err := s.checkData(ctx, et, in.Data); err != nil {
		return nil, err
	}
	now := s.now()
	ev := &aviso.Event{ID: TestEventPrefix + aviso.NewID("", now), TenantID: tenantID, Type: in.Type,
		Data: in.Data, CreatedAt: now}
	// Queued a minute ahead so the engine does not claim it before the synchronous attempt.
	later := now.Add(time.Minute)
	d := &aviso.Delivery{ID: aviso.NewID(aviso.PrefixDelivery, now), TenantID: tenantID, EventID: ev.ID,
		EndpointID: ep.ID, EventType: ev.Type, Status: aviso.StatusPending, NextAttemptAt: &later,
		CreatedAt: now, UpdatedAt: now}
	if _, err := s.store.InsertEvents(ctx, []aviso.NewEvent{{Event: ev, Deliveries: []*aviso.Delivery{d}}}); err != nil {
		return nil, fmt.Errorf("send test: %w", err)
	}
	a := s.sender.Send(ctx, ep, ev)
	if a.ID == "" {
		a.ID = aviso.NewID(aviso.PrefixAttempt, now)
	}
	a.DeliveryID, a.TenantID, a.EndpointID, a.EventID = d.ID, tenantID, ep.ID, ev.ID
	// A test send counts in the endpoint's run of failures, under the same rule as deliveries.
	rule := s.DisablePolicy(ep)
	c := aviso.Completion{Attempt: a, Status: aviso.StatusSucceeded, DisableAfter: rule.Failures,
		DisableMinSpan: time.Duration(rule.MinSpan)}
	if !a.Succeeded() {
		schedule := s.cfg.RetrySchedule
		if len(ep.RetrySchedule) > 0 {
			schedule = aviso.Durations(ep.RetrySchedule)
		}
		c.Status = aviso.StatusFailed
		if next, ok := aviso.NextAttempt(s.now(), schedule, 1, 0, 0); ok {
			c.Status, c.NextAttemptAt = aviso.StatusPending, &next
		}
	}
	if _, err := s.store.CompleteDeliveries(ctx, []aviso.Completion{c}); err != nil {
		return nil, fmt.Errorf("send test: record attempt: %w", err)
	}
	s.log.InfoContext(ctx, "test event sent", "tenant_id", tenantID, "endpoint_id", ep.ID,
		"delivery_id", d.ID, "response_status", a.ResponseStatus)
	return a, nil
}
