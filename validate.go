package aviso

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	MaxHeaderValueLen     = 8 << 10 // bytes of one custom header value
	MaxRateLimit          = 10_000  // deliveries per second of an endpoint's rate_limit
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
	if err := CheckText("name", t.Name); err != nil {
		return err
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
	if err := CheckText("description", t.Description); err != nil {
		return err
	}
	for lang, d := range t.Descriptions {
		if err := CheckText("/descriptions/"+lang, d); err != nil {
			return err
		}
		if err := CheckText("descriptions", lang); err != nil {
			return err
		}
	}
	if err := CheckJSONText("schema", t.Schema); err != nil {
		return err
	}
	if err := CheckJSONText("example", t.Example); err != nil {
		return err
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
	if err := checkURL(e.URL); err != nil {
		return err
	}
	if err := CheckText("description", e.Description); err != nil {
		return err
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
	if e.RateLimit < 0 || e.RateLimit > MaxRateLimit {
		return Invalid("rate_limit", "must be from 0 (no limit) to %d deliveries per second", MaxRateLimit)
	}
	if len(e.RetrySchedule) > MaxRetries {
		return Invalid("retry_schedule", "may hold at most %d retries", MaxRetries)
	}
	switch e.Ordering {
	case OrderingNone, OrderingExternalReference:
	default:
		return Invalid("ordering", "must be \"\" (unordered) or \"external_reference\"")
	}
	if p := e.DisableAfter; p != nil {
		if p.Failures < 0 || p.Failures > MaxDisableFailures {
			return Invalid("disable_after.failures", "must be from 0 (never disable) to %d", MaxDisableFailures)
		}
		if p.MinSpan < 0 || time.Duration(p.MinSpan) > MaxDisableMinSpan {
			return Invalid("disable_after.min_span", "must be from 0s to %s", MaxDisableMinSpan)
		}
	}
	for i, d := range e.RetrySchedule {
		if d <= 0 || time.Duration(d) > MaxRetryWait {
			return Invalid("retry_schedule", "entry %d must be more than 0s and at most 168h", i)
		}
	}
	if len(e.Headers)+len(e.SecretHeaders) > MaxHeaders {
		return Invalid("headers", "may hold at most %d headers", MaxHeaders)
	}
	for _, hs := range []map[string]string{e.Headers, e.SecretHeaders} {
		for k, v := range hs {
			if err := e.validateHeader(k, v); err != nil {
				return err
			}
		}
	}
	for k := range e.SecretHeaders {
		for p := range e.Headers {
			if strings.EqualFold(k, p) {
				return Invalid("headers", "%q is given both as a plain and as a secret header", k)
			}
		}
	}
	if err := CheckText("token", e.Token); err != nil {
		return err
	}
	switch e.Signing {
	case "", SigningHMAC: // "" as stored before signing schemes existed
	case SigningEd25519:
		if e.Format == FormatFacturaScripts {
			return Invalid("signing", "the facturascripts format signs X-Webhook-Signature with an HMAC secret; use \"hmac\"")
		}
	default:
		return Invalid("signing", "must be \"hmac\" or \"ed25519\"")
	}
	if e.Auth != nil {
		u, _ := url.Parse(e.URL) // checkURL parsed it
		if err := e.Auth.validate(u); err != nil {
			return err
		}
	}
	return validateMetadata(e.Metadata)
}

func (e *Endpoint) validateHeader(k, v string) error {
	if !validHeaderName(k) {
		return Invalid("headers", "%q is not a valid header name", k)
	}
	if len(v) > MaxHeaderValueLen {
		return Invalid("/headers/"+k, "must be at most %d bytes", MaxHeaderValueLen)
	}
	if !validHeaderValue(v) {
		return Invalid("/headers/"+k, "may hold only visible ASCII characters, spaces and tabs")
	}
	for _, r := range reservedHeaders {
		if strings.EqualFold(k, r) {
			return Invalid("headers", "%q is set by Aviso and cannot be overridden", k)
		}
	}
	if e.Auth != nil && e.Auth.Type != AuthMTLS && strings.EqualFold(k, "Authorization") {
		return Invalid("headers", "\"Authorization\" is set by the endpoint's %s auth; remove the header or the auth", e.Auth.Type)
	}
	return nil
}

// checkURL checks an endpoint URL's form: http or https, a host, no credentials, a port from 1
// to 65535, and a host that is an IP address written the standard way or a name. A name that
// ends in a number ("2130706433", "0x7f.1", "127.1") is refused: browsers and C resolvers read
// it as an IPv4 address in another notation, and the guard must judge what will be dialled.
func checkURL(raw string) error {
	if err := CheckText("url", raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return Invalid("url", "must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return Invalid("url", "must not carry credentials; use custom headers instead")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Invalid("url", "port %s is out of range: a port is from 1 to 65535", p)
		}
	}
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err == nil || strings.Contains(host, ":") {
		return nil // an IP literal (the guard judges it); a bracketed non-address fails to dial
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if last := labels[len(labels)-1]; isNumber(last) {
		return Invalid("url", "host %q is an IPv4 address in a non-standard notation; write it as four decimal numbers (203.0.113.7) or use a host name", host)
	}
	return nil
}

// isNumber reports whether a host label is a number as the WHATWG URL standard reads one:
// decimal digits, or 0x followed by hex digits.
func isNumber(label string) bool {
	if label == "" {
		return false
	}
	if l := strings.ToLower(label); strings.HasPrefix(l, "0x") {
		return strings.Trim(l[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(label, "0123456789") == ""
}

// validHeaderValue reports whether v is visible ASCII, spaces and tabs only: what every HTTP
// stack accepts in a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
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

// validate checks an endpoint's auth; u is the endpoint's parsed URL.
func (a *Auth) validate(u *url.URL) error {
	for _, f := range a.SecretFields() {
		if *f == Redacted {
			return Invalid("auth", "holds the redacted placeholder %q; send the real value", Redacted)
		}
	}
	short := func(field, v string, required bool) error {
		switch {
		case required && v == "":
			return Invalid("auth."+field, "is required for %s auth", a.Type)
		case len(v) > 4096 || strings.ContainsAny(v, "\r\n\x00"):
			return Invalid("auth."+field, "must be at most 4096 characters on one line")
		}
		return nil
	}
	var err error
	switch a.Type {
	case AuthBasic:
		err = errors.Join(short("username", a.Username, true), short("password", a.Password, true))
		if err == nil && strings.Contains(a.Username, ":") {
			err = Invalid("auth.username", "must not contain ':' (HTTP basic auth)")
		}
	case AuthBearer:
		err = short("token", a.Token, true)
	case AuthOAuth2:
		err = errors.Join(short("token_url", a.TokenURL, true), short("client_id", a.ClientID, true),
			short("client_secret", a.ClientSecret, true), short("scope", a.Scope, false), short("audience", a.Audience, false))
		if err == nil {
			tu, perr := url.Parse(a.TokenURL)
			if perr != nil || (tu.Scheme != "http" && tu.Scheme != "https") || tu.Host == "" || tu.User != nil {
				err = Invalid("auth.token_url", "must be an absolute http:// or https:// URL without credentials")
			}
		}
	case AuthMTLS:
		switch {
		case a.CertPEM == "" || a.KeyPEM == "":
			err = Invalid("auth.cert_pem", "cert_pem and key_pem are both required for mtls auth")
		case len(a.CertPEM) > 64<<10 || len(a.KeyPEM) > 64<<10:
			err = Invalid("auth.cert_pem", "cert_pem and key_pem must be at most 64 KiB each")
		default:
			if _, terr := tls.X509KeyPair([]byte(a.CertPEM), []byte(a.KeyPEM)); terr != nil {
				err = Invalid("auth.cert_pem", "cert_pem and key_pem must be a PEM certificate and its PEM private key: %v", terr)
			}
		}
		if err == nil && u.Scheme != "https" {
			err = Invalid("url", "must be https:// for mtls auth")
		}
	default:
		return Invalid("auth.type", "must be one of basic, bearer, oauth2, mtls")
	}
	if err != nil {
		return firstError(err)
	}
	if a.CAPEM != "" {
		if len(a.CAPEM) > 256<<10 || !x509.NewCertPool().AppendCertsFromPEM([]byte(a.CAPEM)) {
			return Invalid("auth.ca_pem", "must be PEM certificates (at most 256 KiB)")
		}
		if u.Scheme != "https" {
			return Invalid("url", "must be https:// when auth.ca_pem is set")
		}
	}
	return nil
}

// firstError returns the first error joined by errors.Join, or err itself.
func firstError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return err
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
	if err := CheckJSONText("data", ev.Data); err != nil {
		return err
	}
	if err := CheckText("external_reference", ev.ExternalReference); err != nil {
		return err
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
		if err := CheckText("metadata", k); err != nil {
			return err
		}
		if err := CheckText("/metadata/"+k, v); err != nil {
			return err
		}
		if k == "" || len(k) > 64 || len(v) > 500 {
			return Invalid("metadata", "keys must be 1 to 64 characters and values at most 500")
		}
	}
	return nil
}

// CheckText checks that s is text both stores keep as given: valid UTF-8 (else EINVALIDTEXT)
// without the NUL character, which PostgreSQL's text columns refuse (else EINVALID). Both name
// field.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return &Error{Code: EINVALIDTEXT, Field: field, Message: "is not valid UTF-8 text"}
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Invalid(field, "must not contain the NUL character (\\u0000)")
	}
	return nil
}

// CheckJSONText checks that b, JSON at field of a request ("" for the whole body, "data" for an
// event's data), is text both stores keep as given: valid UTF-8 and no lone UTF-16 surrogate
// escape such as "\ud800" (else EINVALIDJSON: PostgreSQL's jsonb refuses both, SQLite would
// serve them back as invalid JSON), and no "\u0000" in any string (else EINVALID naming the
// string's place, "name" or "/data/customer/name"). It does not check the rest of the syntax.
func CheckJSONText(field string, b []byte) error {
	if !utf8.Valid(b) {
		return &Error{Code: EINVALIDJSON, Field: field,
			Message: fmt.Sprintf("is not valid UTF-8 (at byte %d); send JSON text encoded as UTF-8", invalidAt(b))}
	}
	nul, surrogate := scanEscapes(b)
	if surrogate >= 0 {
		return &Error{Code: EINVALIDJSON, Field: field,
			Message: fmt.Sprintf("holds a lone UTF-16 surrogate escape at byte %d; escape characters outside the BMP as a pair, or send them as UTF-8", surrogate)}
	}
	if nul >= 0 {
		return Invalid(nulField(field, b), "must not contain the NUL character (\\u0000)")
	}
	return nil
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// scanEscapes returns the offsets of the first \u0000 escape and of the first lone surrogate
// escape in b's strings, -1 for none. It reads only strings and their escapes.
func scanEscapes(b []byte) (nul, surrogate int) {
	nul, surrogate = -1, -1
	hex := func(i int) (rune, bool) { // the 4 hex digits after "\u" at i
		if i+6 > len(b) || b[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	in := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u':
			r, ok := hex(i)
			switch {
			case !ok:
			case r == 0 && nul < 0:
				nul = i
			case r >= 0xd800 && r < 0xdc00:
				if lo, ok := hex(i + 6); ok && lo >= 0xdc00 && lo < 0xe000 {
					i += 6
				} else if surrogate < 0 {
					surrogate = i
				}
			case r >= 0xdc00 && r < 0xe000 && surrogate < 0:
				surrogate = i
			}
			i += 5
		case c == '\\':
			i++ // the escaped character
		}
	}
	return nul, surrogate
}

// nulField names the place of the first string holding a NUL in the JSON b, at field of the
// request: a top-level member by its name ("name"), anything deeper by its JSON pointer
// ("/metadata/plan", "/data/lines/0/sku").
func nulField(field string, b []byte) string {
	type frame struct {
		array   bool
		index   int
		key     string
		wantKey bool
	}
	var stack []*frame
	where := func() string {
		var parts []string
		if field != "" {
			parts = append(parts, field)
		}
		for _, f := range stack {
			if f.array {
				parts = append(parts, strconv.Itoa(f.index))
			} else {
				parts = append(parts, strings.NewReplacer("~", "~0", "/", "~1").Replace(f.key))
			}
		}
		switch len(parts) {
		case 0:
			return field
		case 1:
			return parts[0]
		}
		return "/" + strings.Join(parts, "/")
	}
	done := func() { // a value of the innermost container ended
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.array {
				f.index++
			} else {
				f.wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return where()
		}
		if len(stack) > 0 && stack[len(stack)-1].wantKey {
			f := stack[len(stack)-1]
			if k, ok := tok.(string); ok {
				f.key, f.wantKey = k, false
				if strings.IndexByte(k, 0) >= 0 {
					f.key = strings.ReplaceAll(k, "\x00", "\\u0000")
					return where()
				}
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{wantKey: true})
			case '[':
				stack = append(stack, &frame{array: true})
			default:
				stack = stack[:len(stack)-1]
				done()
			}
		case string:
			if strings.IndexByte(t, 0) >= 0 {
				return where()
			}
			done()
		default:
			done()
		}
	}
}

// RedactURL returns raw as it may be logged or put in an error: scheme://host/path, without
// userinfo, query string and fragment, where secrets ride (?token=…). A URL that does not parse
// is cut by its text: everything from "://" to the last '@' goes (a password may hold the
// characters that stop the parse, so no '@' is trusted to end the host), then everything from
// the first '?' or '#'. That may show a wrong host, never a password.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return u.String()
	}
	scheme, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	return scheme + rest
}
