package aviso

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

var (
	tenantIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	eventIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	eventTypePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*$`)
)

// Limits on what the API accepts.
const (
	MaxTimeoutSeconds     = 30
	DefaultTimeoutSeconds = 10
	MaxRetries            = 20
	MaxRetryWait          = 7 * 24 * time.Hour
	MaxHeaders            = 20
	MaxMetadata           = 50
	MaxEventTypeLen       = 128
	MaxURLLen             = 2048
)

// reservedHeaders are set by Aviso on every delivery and cannot be overridden by custom headers.
var reservedHeaders = []string{"Content-Type", "Content-Length", "User-Agent", "Host",
	"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "X-Webhook-Signature", "Tf-Webhooktoken",
	"Transfer-Encoding", "Connection"}

// ValidTenantID reports whether id may name a tenant.
func ValidTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

// Validate checks a tenant's fields.
func (t *Tenant) Validate() error {
	if !tenantIDPattern.MatchString(t.ID) {
		return Invalid("id", "must be 1 to 64 letters, digits, '_' or '-'")
	}
	if strings.TrimSpace(t.Name) == "" {
		return Invalid("name", "is required")
	}
	if len(t.Name) > 200 {
		return Invalid("name", "must be at most 200 characters")
	}
	return validateMetadata(t.Metadata)
}

// Validate checks an event type's name and that schema and example are JSON objects when set.
func (t *EventType) Validate() error {
	if len(t.Name) > MaxEventTypeLen || !eventTypePattern.MatchString(t.Name) {
		return Invalid("name", "must be dot-separated lowercase words such as \"invoice.created\"")
	}
	if len(t.Schema) > 0 {
		var m map[string]any
		if json.Unmarshal(t.Schema, &m) != nil {
			return Invalid("schema", "must be a JSON Schema object")
		}
	}
	if len(t.Example) > 0 && !json.Valid(t.Example) {
		return Invalid("example", "must be valid JSON")
	}
	return nil
}

// Validate checks an endpoint's fields. It does not resolve the URL's host: the SSRF guard does
// that where the network is touched.
func (e *Endpoint) Validate() error {
	if e.URL == "" {
		return Invalid("url", "is required")
	}
	if len(e.URL) > MaxURLLen {
		return Invalid("url", "must be at most %d characters", MaxURLLen)
	}
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Invalid("url", "must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return Invalid("url", "must not carry credentials; use custom headers instead")
	}
	if len(e.Description) > 1000 {
		return Invalid("description", "must be at most 1000 characters")
	}
	for i, t := range e.EventTypes {
		if !eventTypePattern.MatchString(t) {
			return Invalid("event_types", "entry %d (%q) is not an event type name", i, t)
		}
	}
	switch e.Format {
	case FormatStandard, FormatAlegra, FormatFacturaScripts, FormatTusFacturas:
	default:
		return Invalid("format", "must be one of standard, alegra, facturascripts, tusfacturas")
	}
	if e.TimeoutSeconds < 1 || e.TimeoutSeconds > MaxTimeoutSeconds {
		return Invalid("timeout_seconds", "must be between 1 and %d", MaxTimeoutSeconds)
	}
	if len(e.RetrySchedule) > MaxRetries {
		return Invalid("retry_schedule", "may hold at most %d retries", MaxRetries)
	}
	for i, d := range e.RetrySchedule {
		if d <= 0 || time.Duration(d) > MaxRetryWait {
			return Invalid("retry_schedule", "entry %d must be more than 0s and at most 168h", i)
		}
	}
	if len(e.Headers) > MaxHeaders {
		return Invalid("headers", "may hold at most %d headers", MaxHeaders)
	}
	for k, v := range e.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			return Invalid("headers", "%q is not a valid header", k)
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(k, r) {
				return Invalid("headers", "%q is set by Aviso and cannot be overridden", k)
			}
		}
	}
	return validateMetadata(e.Metadata)
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 100 {
		return false
	}
	for _, c := range k {
		if c > 126 || c <= 32 || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return http.CanonicalHeaderKey(k) != ""
}

// Validate checks an event before it is published. It does not check the catalog or schemas.
func (ev *Event) Validate() error {
	if !eventIDPattern.MatchString(ev.ID) {
		return Invalid("id", "must be 1 to 128 letters, digits, '_', '-', '.' or ':'")
	}
	if !eventTypePattern.MatchString(ev.Type) {
		return Invalid("type", "is required and must be an event type name such as \"invoice.created\"")
	}
	if len(ev.Data) == 0 {
		return Invalid("data", "is required")
	}
	if len(ev.ExternalReference) > 200 {
		return Invalid("external_reference", "must be at most 200 characters")
	}
	return nil
}

func validateMetadata(m map[string]string) error {
	if len(m) > MaxMetadata {
		return Invalid("metadata", "may hold at most %d keys", MaxMetadata)
	}
	for k, v := range m {
		if k == "" || len(k) > 64 || len(v) > 500 {
			return Invalid("metadata", "keys must be 1 to 64 characters and values at most 500")
		}
	}
	return nil
}
