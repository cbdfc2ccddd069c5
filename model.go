package aviso

import (
	"encoding/json"
	"fmt"
	"time"
)

// Tenant is one customer of the platform: the owner of endpoints, events and deliveries.
type Tenant struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Metadata  map[string]string `json:"metadata"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// APIKey authenticates API and dashboard callers. Only the SHA-256 of the key is stored.
// A key with an empty TenantID is a root key; otherwise it is scoped to that tenant.
type APIKey struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id,omitempty"`
	Hash      string    `json:"-"`      // hex SHA-256 of the key
	Prefix    string    `json:"prefix"` // the first characters of the key, for recognising it
	CreatedAt time.Time `json:"created_at"`
}

// RootKeyID is the ID of the root key configured by AVISO_ROOT_KEY or generated on first start.
const RootKeyID = "root"

// EventType is an entry of the event catalog, e.g. "invoice.created".
type EventType struct {
	Name         string            `json:"name"`
	Description  string            `json:"description"`
	Descriptions map[string]string `json:"descriptions,omitempty"` // by language, e.g. {"es": "…"}
	Schema       json.RawMessage   `json:"schema,omitempty"`       // JSON Schema (2020-12) of data
	Example      json.RawMessage   `json:"example,omitempty"`      // an example data payload
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// Format is the payload format of an endpoint: how a delivery's body and headers are rendered.
type Format string

// The payload formats. Standard Webhooks headers are sent in every format.
const (
	FormatStandard       Format = "standard"       // Standard Webhooks body {type,timestamp,data}
	FormatAlegra         Format = "alegra"         // {"subject":"new-invoice","message":{…}}
	FormatFacturaScripts Format = "facturascripts" // {"id","event","created","data":{"object"}} + X-Webhook-Signature
	FormatTusFacturas    Format = "tusfacturas"    // TF-WebhookToken header, top-level external_reference
)

// Formats returns every payload format, default first, in a new slice.
func Formats() []Format {
	return []Format{FormatStandard, FormatAlegra, FormatFacturaScripts, FormatTusFacturas}
}

// Endpoint is a URL a tenant subscribed to receive events on.
type Endpoint struct {
	ID                  string            `json:"id"`
	TenantID            string            `json:"tenant_id"`
	URL                 string            `json:"url"`
	Description         string            `json:"description"`
	EventTypes          []string          `json:"event_types"` // empty: every type
	Format              Format            `json:"format"`
	Headers             map[string]string `json:"headers"` // custom headers sent on every delivery
	TimeoutSeconds      int               `json:"timeout_seconds"`
	RetrySchedule       []Duration        `json:"retry_schedule"` // empty: the server default
	Disabled            bool              `json:"disabled"`
	DisabledReason      string            `json:"disabled_reason,omitempty"`
	ConsecutiveFailures int               `json:"consecutive_failures"`
	// FailingSince is when the current run of consecutive failures began; nil while the last
	// attempt succeeded. Kept by the store with ConsecutiveFailures.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// DisableAfter is the endpoint's own auto-disable rule; nil: the server's.
	DisableAfter *DisablePolicy `json:"disable_after,omitempty"`
	// SendTraceparent sends the W3C trace context of each attempt (traceparent, and tracestate
	// when there is one) to the receiver, so that its spans join the publisher's trace.
	SendTraceparent bool `json:"send_traceparent"`
	// Filter is an expression over the event (internal/filter) that must hold for the endpoint
	// to get it, beside its event types; "" matches every event.
	Filter string `json:"filter,omitempty"`
	// Ordering is OrderingExternalReference for an endpoint that gets the events of one
	// external reference strictly in publish order; "" (OrderingNone) for none.
	Ordering string `json:"ordering,omitempty"`
	// RateLimit is the most deliveries per second the endpoint is sent, summed over every node;
	// 0: no limit. A 429 or 503 slows it further for a while (dispatch, pace.go).
	RateLimit     int               `json:"rate_limit,omitempty"`
	Metadata      map[string]string `json:"metadata"`
	Secrets       []Secret          `json:"-"`                     // newest first; read through the secret route
	Token         string            `json:"-"`                     // TF-WebhookToken value (tusfacturas format)
	Signing       string            `json:"signing"`               // SigningHMAC or SigningEd25519: the kind of key a rotation makes
	Auth          *Auth             `json:"auth,omitempty"`        // how Aviso authenticates to the receiver; nil: none
	SecretHeaders map[string]string `json:"-"`                     // custom headers whose values are write-only
	VerifiedAt    *time.Time        `json:"verified_at,omitempty"` // nil: handshake skipped
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// Orderings of an endpoint's deliveries.
const (
	// OrderingNone: deliveries go as they come due, concurrently.
	OrderingNone = ""
	// OrderingExternalReference: the deliveries of events with the same external reference go
	// one at a time, in publish order (see Store.ClaimDeliveries); events without one, and other
	// references, are not held.
	OrderingExternalReference = "external_reference"
)

// OrderingHold is how long after its creation a delivery that is created behind an earlier
// pending one of its endpoint and reference is due, at least (see Store.ClaimDeliveries): the
// earlier one finishing brings it forward at once, so the hold only keeps it out of the claims'
// way meanwhile, and it bounds the delay when a completion races the creation.
const OrderingHold = time.Minute

// Signing schemes of an endpoint: which kind of key CreateEndpoint and a rotation make. Every
// live key signs whatever the scheme (a whsec_ secret a "v1," signature, a whsk_ key a "v1a,"
// one), so a change of scheme overlaps like a rotation.
const (
	SigningHMAC    = "hmac"    // Standard Webhooks v1: HMAC-SHA256 with a whsec_ secret
	SigningEd25519 = "ed25519" // Standard Webhooks v1a: Ed25519 with a whsk_ private key
)

// Redacted is what the API, the dashboard and the attempt log show in place of a write-only
// value: an auth password, token, client secret or private key, a secret header's value, the
// TusFacturas token in an attempt's headers. Sent back unchanged in an update, it keeps the
// stored value.
const Redacted = "••••"

// Auth types of an endpoint.
const (
	AuthBasic  = "basic"  // Authorization: Basic of Username and Password
	AuthBearer = "bearer" // Authorization: Bearer Token
	AuthOAuth2 = "oauth2" // OAuth2 client credentials: a token from TokenURL, as a bearer token
	AuthMTLS   = "mtls"   // a TLS client certificate (CertPEM, KeyPEM)
)

// Auth is how Aviso authenticates to an endpoint's receiver. Password, Token, ClientSecret and
// KeyPEM are write-only: the API shows them as Redacted. CAPEM, with any type, is a bundle of
// PEM certificates trusted (instead of the system roots) for the receiver's server certificate,
// for receivers behind a private CA.
type Auth struct {
	Type         string `json:"type"`
	Username     string `json:"username,omitempty"`      // basic
	Password     string `json:"password,omitempty"`      // basic; secret
	Token        string `json:"token,omitempty"`         // bearer; secret
	TokenURL     string `json:"token_url,omitempty"`     // oauth2
	ClientID     string `json:"client_id,omitempty"`     // oauth2
	ClientSecret string `json:"client_secret,omitempty"` // oauth2; secret
	Scope        string `json:"scope,omitempty"`         // oauth2, space-separated
	Audience     string `json:"audience,omitempty"`      // oauth2
	CertPEM      string `json:"cert_pem,omitempty"`      // mtls: the client certificate (chain)
	KeyPEM       string `json:"key_pem,omitempty"`       // mtls: its private key; secret
	CAPEM        string `json:"ca_pem,omitempty"`        // trusted CAs of the receiver's server
}

// SecretFields returns pointers to the auth's write-only fields, for redacting and sealing.
func (a *Auth) SecretFields() []*string {
	return []*string{&a.Password, &a.Token, &a.ClientSecret, &a.KeyPEM}
}

// Redact returns a copy of the auth with every set write-only field replaced by Redacted.
func (a *Auth) Redact() *Auth {
	if a == nil {
		return nil
	}
	c := *a
	for _, f := range c.SecretFields() {
		if *f != "" {
			*f = Redacted
		}
	}
	return &c
}

// SecretHeader is how the API shows a secret header: {"value":"••••","secret":true}. The same
// object with a real value sets one.
type SecretHeader struct {
	Value  string `json:"value"`
	Secret bool   `json:"secret"`
}

// MarshalJSON renders the endpoint as the API shows it: the auth redacted, and secret headers
// beside the plain ones as {"value":"••••","secret":true}. Secrets and Token never appear.
func (e Endpoint) MarshalJSON() ([]byte, error) {
	var headers map[string]any
	if e.Headers != nil || e.SecretHeaders != nil {
		headers = make(map[string]any, len(e.Headers)+len(e.SecretHeaders))
		for k, v := range e.Headers {
			headers[k] = v
		}
		for k := range e.SecretHeaders {
			headers[k] = SecretHeader{Value: Redacted, Secret: true}
		}
	}
	// The fields of Endpoint in its order, with headers and auth as shown.
	return json.Marshal(struct {
		ID                  string            `json:"id"`
		TenantID            string            `json:"tenant_id"`
		URL                 string            `json:"url"`
		Description         string            `json:"description"`
		EventTypes          []string          `json:"event_types"`
		Format              Format            `json:"format"`
		Headers             map[string]any    `json:"headers"`
		TimeoutSeconds      int               `json:"timeout_seconds"`
		RetrySchedule       []Duration        `json:"retry_schedule"`
		Disabled            bool              `json:"disabled"`
		DisabledReason      string            `json:"disabled_reason,omitempty"`
		ConsecutiveFailures int               `json:"consecutive_failures"`
		FailingSince        *time.Time        `json:"failing_since,omitempty"`
		DisableAfter        *DisablePolicy    `json:"disable_after,omitempty"`
		Filter              string            `json:"filter,omitempty"`
		Ordering            string            `json:"ordering,omitempty"`
		SendTraceparent     bool              `json:"send_traceparent"`
		RateLimit           int               `json:"rate_limit,omitempty"`
		Metadata            map[string]string `json:"metadata"`
		Signing             string            `json:"signing"`
		Auth                *Auth             `json:"auth,omitempty"`
		VerifiedAt          *time.Time        `json:"verified_at,omitempty"`
		CreatedAt           time.Time         `json:"created_at"`
		UpdatedAt           time.Time         `json:"updated_at"`
	}{e.ID, e.TenantID, e.URL, e.Description, e.EventTypes, e.Format, headers, e.TimeoutSeconds, e.RetrySchedule,
		e.Disabled, e.DisabledReason, e.ConsecutiveFailures, e.FailingSince, e.DisableAfter, e.Filter, e.Ordering, e.SendTraceparent, e.RateLimit, e.Metadata,
		e.Signing, e.Auth.Redact(), e.VerifiedAt, e.CreatedAt, e.UpdatedAt})
}

// UnmarshalJSON reads an endpoint as MarshalJSON renders it: a header given as
// {"value","secret":true} goes to SecretHeaders (with the value shown, usually Redacted).
func (e *Endpoint) UnmarshalJSON(b []byte) error {
	type plain Endpoint
	var aux struct {
		plain
		Headers map[string]json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*e = Endpoint(aux.plain)
	if aux.Headers == nil {
		return nil
	}
	e.Headers = make(map[string]string, len(aux.Headers))
	for k, raw := range aux.Headers {
		var v string
		if json.Unmarshal(raw, &v) == nil {
			e.Headers[k] = v
			continue
		}
		var sh SecretHeader
		if err := json.Unmarshal(raw, &sh); err != nil {
			return fmt.Errorf("endpoint header %q: %w", k, err)
		}
		if !sh.Secret {
			e.Headers[k] = sh.Value
			continue
		}
		if e.SecretHeaders == nil {
			e.SecretHeaders = map[string]string{}
		}
		e.SecretHeaders[k] = sh.Value
	}
	return nil
}

// Reasons an endpoint is disabled.
const (
	DisabledByUser            = "manual"
	DisabledConsecutiveFailed = "consecutive_failures"
	DisabledGone              = "gone" // the receiver answered 410 Gone
)

// DisablePolicy is when consecutive failures disable an endpoint: after Failures failed attempts
// in a row, and only once the first of them is at least MinSpan old, so that a short outage
// (a burst of failures within seconds) lets the retry schedule run instead.
type DisablePolicy struct {
	Failures int      `json:"failures"` // 0: never disable
	MinSpan  Duration `json:"min_span"`
}

// DefaultDisablePolicy is the server's rule unless configured: 10 failures (as Alegra) over at
// least an hour.
func DefaultDisablePolicy() DisablePolicy {
	return DisablePolicy{Failures: DisableAfterFailures, MinSpan: Duration(DisableMinSpan)}
}

// Secret is one signing secret of an endpoint. A rotated-out secret keeps signing until ExpiresAt.
type Secret struct {
	Value     string     `json:"secret"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// LiveSecrets returns the endpoint's secrets that have not expired at now, newest first.
func (e *Endpoint) LiveSecrets(now time.Time) []string {
	var out []string
	for _, s := range e.Secrets {
		if s.ExpiresAt == nil || now.Before(*s.ExpiresAt) {
			out = append(out, s.Value)
		}
	}
	return out
}

// Subscribes reports whether the endpoint wants events of type t.
func (e *Endpoint) Subscribes(t string) bool {
	if len(e.EventTypes) == 0 {
		return true
	}
	for _, s := range e.EventTypes {
		if s == t {
			return true
		}
	}
	return false
}

// Event is something that happened on the platform, published for one tenant.
type Event struct {
	ID                string          `json:"id"`
	TenantID          string          `json:"tenant_id"`
	Type              string          `json:"type"`
	Data              json.RawMessage `json:"data"`
	ExternalReference string          `json:"external_reference,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	// RequestID is the request id (X-Request-Id) of the publish, carried into the log lines of
	// its attempts; TraceParent is the W3C trace context of the publish, to which the spans of
	// its attempts link. Both empty when unknown. Internal: not part of the API.
	RequestID   string `json:"-"`
	TraceParent string `json:"-"`
}

// DeliveryStatus is the state of a delivery.
type DeliveryStatus string

// The delivery states.
const (
	StatusPending   DeliveryStatus = "pending"   // waiting for its next attempt (or in flight)
	StatusSucceeded DeliveryStatus = "succeeded" // an attempt got a 2xx
	StatusFailed    DeliveryStatus = "failed"    // the schedule ran out, or the endpoint was disabled
)

// Delivery is one event to one endpoint, with its attempts.
type Delivery struct {
	ID                 string         `json:"id"`
	TenantID           string         `json:"tenant_id"`
	EventID            string         `json:"event_id"`
	EndpointID         string         `json:"endpoint_id"`
	EventType          string         `json:"event_type"`
	Status             DeliveryStatus `json:"status"`
	AttemptCount       int            `json:"attempt_count"`
	NextAttemptAt      *time.Time     `json:"next_attempt_at"` // nil unless pending
	LastResponseStatus int            `json:"last_response_status,omitempty"`
	LastError          string         `json:"last_error,omitempty"`
	CreatedAt          time.Time      `json:"created_at"`
	UpdatedAt          time.Time      `json:"updated_at"`
	Attempts           []Attempt      `json:"attempts,omitempty"` // filled by GetDelivery only

	// RoundAttempts counts the attempts since the delivery was last queued (published, retried or
	// replayed); it indexes the retry schedule. Internal: not part of the API.
	RoundAttempts int `json:"-"`
}

// Attempt is one HTTP request made for a delivery, and what came back.
type Attempt struct {
	ID             string            `json:"id"`
	DeliveryID     string            `json:"delivery_id"`
	TenantID       string            `json:"-"`
	EndpointID     string            `json:"endpoint_id"`
	EventID        string            `json:"event_id"`
	At             time.Time         `json:"at"`
	URL            string            `json:"url"`
	RequestHeaders map[string]string `json:"request_headers"`
	ResponseStatus int               `json:"response_status"` // 0: no response
	ResponseBody   string            `json:"response_body"`   // first MaxResponseBody bytes
	DurationMS     int64             `json:"duration_ms"`
	Error          string            `json:"error,omitempty"`
}

// MaxResponseBody is how much of a response body an attempt keeps.
const MaxResponseBody = 4 << 10

// Succeeded reports whether the attempt got a 2xx.
func (a *Attempt) Succeeded() bool { return a.ResponseStatus >= 200 && a.ResponseStatus < 300 }

// Principal is who makes a request: a root key (TenantID "") or a key scoped to one tenant.
type Principal struct {
	KeyID    string
	TenantID string
}

// IsRoot reports whether the principal may act on every tenant and the catalog.
func (p Principal) IsRoot() bool { return p.TenantID == "" }

// CanSeeTenant reports whether the principal may see the tenant's resources. The operational
// tenant is seen only by the principal scoped to it (the root key on /v1/operational-endpoints),
// not through the tenant routes.
func (p Principal) CanSeeTenant(tenantID string) bool {
	if tenantID == OperationalTenant {
		return p.TenantID == OperationalTenant
	}
	return p.TenantID == "" || p.TenantID == tenantID
}
