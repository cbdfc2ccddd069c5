package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
)

// Header names. TokenHeader is kept in the exact spelling of the TusFacturas document: Build
// stores it under that non-canonical key so that it goes on the wire as "TF-WebhookToken" when
// the sender copies the map as is (PHP's getallheaders() is case-sensitive).
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
	HMACHeader      = "X-Webhook-Signature"
	TokenHeader     = "TF-WebhookToken"
)

// PingType is the event type of the handshake Aviso sends when an endpoint is created.
const PingType = "ping"

// Request is a rendered delivery: the exact body and headers an endpoint receives.
// Header keys are written on the wire exactly as stored (see TokenHeader): copy them with
// req.Header[k] = v, not Header.Set, which would canonicalise "TF-WebhookToken".
type Request struct {
	Body   []byte
	Header http.Header
}

// Build renders the request that delivers ev to ep at time now, in the endpoint's format, with
// the Standard Webhooks headers (signed with every live key), the endpoint's custom and secret headers
// and the format's own headers. It fails when the endpoint has no live secret.
func Build(ep *aviso.Endpoint, ev *aviso.Event, now time.Time) (*Request, error) {
	body, err := Body(ep.Format, ev)
	if err != nil {
		return nil, err
	}
	return build(ep, ev.ID, body, now, true)
}

func build(ep *aviso.Endpoint, id string, body []byte, now time.Time, withContentType bool) (*Request, error) {
	secrets := ep.LiveSecrets(now)
	if len(secrets) == 0 {
		return nil, fmt.Errorf("build request: endpoint %s has no live secret", ep.ID)
	}
	ts := now.Unix()
	sig, err := Sign(secrets, id, ts, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	h := make(http.Header, 8+len(ep.Headers)+len(ep.SecretHeaders))
	for k, v := range ep.Headers {
		h.Set(k, v)
	}
	for k, v := range ep.SecretHeaders {
		h.Set(k, v)
	}
	if withContentType {
		h["Content-Type"] = []string{"application/json"}
	}
	h["User-Agent"] = []string{aviso.UserAgent}
	h[HeaderID] = []string{id}
	h[HeaderTimestamp] = []string{strconv.FormatInt(ts, 10)}
	h[HeaderSignature] = []string{sig}
	switch ep.Format {
	case aviso.FormatFacturaScripts:
		for _, sc := range secrets { // the newest HMAC secret (an endpoint of this format signs with HMAC)
			if !strings.HasPrefix(sc, SigningKeyPrefix) {
				h[HMACHeader] = []string{SignHMACHex(sc, body)}
				break
			}
		}
	case aviso.FormatTusFacturas:
		h[TokenHeader] = []string{ep.Token}
	}
	return &Request{Body: body, Header: h}, nil
}

// Ping returns the event of the subscription handshake: type "ping", a fresh event id and a
// small data object naming the tenant.
func Ping(tenantID string, now time.Time) *aviso.Event {
	data, _ := json.Marshal(map[string]string{"message": "Aviso subscription handshake", "tenant_id": tenantID})
	return &aviso.Event{ID: aviso.NewID(aviso.PrefixEvent, now), TenantID: tenantID, Type: PingType,
		Data: data, CreatedAt: now.UTC()}
}

// HandshakeRequest returns the request that checks a new endpoint answers. For the alegra format
// it is a POST with an empty body and no Content-Type, as Alegra's document describes (still
// carrying the signed Standard Webhooks headers); for the other formats it is the ping event
// rendered by Build.
func HandshakeRequest(ep *aviso.Endpoint, now time.Time) (*Request, error) {
	ping := Ping(ep.TenantID, now)
	if ep.Format == aviso.FormatAlegra {
		return build(ep, ping.ID, []byte{}, now, false)
	}
	return Build(ep, ping, now)
}

// standardBody is the Standard Webhooks payload.
type standardBody struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Timestamp         string          `json:"timestamp"`
	ExternalReference string          `json:"external_reference,omitempty"`
	Data              json.RawMessage `json:"data"`
}

// tusFacturasBody is the Standard Webhooks payload with external_reference always present at the
// top level, where the TusFacturas receivers read it.
type tusFacturasBody struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Timestamp         string          `json:"timestamp"`
	ExternalReference string          `json:"external_reference"`
	Data              json.RawMessage `json:"data"`
}

type facturaScriptsBody struct {
	ID      string `json:"id"`
	Event   string `json:"event"`
	Created int64  `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// Body renders an event's body in a format. The body is the same on every attempt. The event's
// data must be valid JSON, as every stored event's is (the service checks it at publication).
func Body(f aviso.Format, ev *aviso.Event) ([]byte, error) {
	ts := ev.CreatedAt.UTC().Format(time.RFC3339Nano)
	if b, ok := plainBody(f, ev, ts); ok {
		return b, nil
	}
	return marshalBody(f, ev, ts)
}

// marshalBody renders the body with json.Marshal; ts is the event's RFC 3339 timestamp.
func marshalBody(f aviso.Format, ev *aviso.Event, ts string) ([]byte, error) {
	var v any
	switch f {
	case aviso.FormatStandard, "":
		v = standardBody{ID: ev.ID, Type: ev.Type, Timestamp: ts, ExternalReference: ev.ExternalReference,
			Data: ev.Data}
	case aviso.FormatTusFacturas:
		v = tusFacturasBody{ID: ev.ID, Type: ev.Type, Timestamp: ts,
			ExternalReference: externalReference(ev), Data: ev.Data}
	case aviso.FormatFacturaScripts:
		b := facturaScriptsBody{ID: ev.ID, Event: ev.Type, Created: ev.CreatedAt.Unix()}
		b.Data.Object = ev.Data
		v = b
	case aviso.FormatAlegra:
		subject, noun := AlegraSubject(ev.Type)
		data, err := stringifyID(ev.Data)
		if err != nil {
			return nil, fmt.Errorf("render alegra body of %s: %w", ev.ID, err)
		}
		v = struct {
			Subject string                     `json:"subject"`
			Message map[string]json.RawMessage `json:"message"`
		}{subject, map[string]json.RawMessage{noun: data}}
	default:
		return nil, fmt.Errorf("render body: unknown format %q", f)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("render %s body of %s: %w", f, ev.ID, err)
	}
	return b, nil
}

// externalReference is the event's external_reference, or else a string "external_reference"
// at the top of its data, or else "".
func externalReference(ev *aviso.Event) string {
	if ev.ExternalReference != "" {
		return ev.ExternalReference
	}
	var d struct {
		ExternalReference any `json:"external_reference"`
	}
	if json.Unmarshal(ev.Data, &d) == nil {
		if s, ok := d.ExternalReference.(string); ok {
			return s
		}
	}
	return ""
}

// Alegra's nouns and verbs for Aviso's catalog nouns and verbs.
var (
	alegraNoun = map[string]string{"customer": "client", "product": "item"}
	alegraVerb = map[string]string{"created": "new", "updated": "edit", "deleted": "delete"}
)

// AlegraSubject returns the Alegra subject and message key of an event type: the noun is the
// type's first segment (customer → client, product → item, others unchanged) and the verb the
// rest (created → new, updated → edit, deleted → delete, others unchanged, dots kept), so
// "invoice.created" is ("new-invoice", "invoice"), "customer.updated" is ("edit-client",
// "client"), and types Alegra has no subject for get one derived the same way: "invoice.paid"
// is ("paid-invoice", "invoice"), "receipt.paid" is ("paid-receipt", "receipt"). A type with one
// segment ("ping") is its own subject and key.
func AlegraSubject(eventType string) (subject, noun string) {
	noun, verb, ok := strings.Cut(eventType, ".")
	if n, ok := alegraNoun[noun]; ok {
		noun = n
	}
	if !ok {
		return noun, noun
	}
	if v, ok := alegraVerb[verb]; ok {
		verb = v
	}
	return verb + "-" + noun, noun
}

// EventTypeFromAlegra is the inverse of AlegraSubject: "new-client" is "customer.created". It
// splits the subject at its first '-', so a custom type whose verb holds a '-' does not round-trip.
func EventTypeFromAlegra(subject string) string {
	verb, noun, ok := strings.Cut(subject, "-")
	if !ok {
		return subject
	}
	for k, v := range alegraNoun {
		if v == noun {
			noun = k
		}
	}
	for k, v := range alegraVerb {
		if v == verb {
			verb = k
		}
	}
	return noun + "." + verb
}

// stringifyID returns data with a numeric top-level "id" turned into a string, as in Alegra's
// examples ("id": "774"). Anything else is returned compacted and unchanged.
func stringifyID(data json.RawMessage) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("data is not JSON: %w", err)
	}
	b := buf.Bytes()
	if len(b) == 0 || b[0] != '{' {
		return b, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("data is not JSON: %w", err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("data is not JSON: %w", err)
		}
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("data is not JSON: %w", err)
		}
		end := dec.InputOffset()
		if key != "id" || len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
			continue
		}
		out := make([]byte, 0, len(b)+2)
		out = append(out, b[:start]...)
		out = append(out, ':', '"')
		out = append(out, raw...)
		out = append(out, '"')
		return append(out, b[end:]...), nil
	}
	return b, nil
}
