package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
)

// ReceivedEvent is an event as a receiver got it, whatever the format it was sent in.
type ReceivedEvent struct {
	ID                string          // webhook-id (the same on every retry), else the body's id
	Type              string          // e.g. "invoice.created"; from the Alegra subject in that format
	Timestamp         time.Time       // webhook-timestamp, else the body's timestamp or created
	ExternalReference string          // top-level external_reference, when sent
	Data              json.RawMessage // the event's data (data.object, message.<noun>)
	Format            aviso.Format    // the format the body was recognised as
	Body              []byte          // the raw body as received
}

// ParseEvent reads an event from a request's headers and raw body in any of Aviso's formats.
func ParseEvent(h http.Header, body []byte) (*ReceivedEvent, error) {
	var b struct {
		ID                string                     `json:"id"`
		Type              string                     `json:"type"`
		Timestamp         string                     `json:"timestamp"`
		ExternalReference *string                    `json:"external_reference"`
		Data              json.RawMessage            `json:"data"`
		Subject           string                     `json:"subject"`
		Message           map[string]json.RawMessage `json:"message"`
		Event             string                     `json:"event"`
		Created           int64                      `json:"created"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("parse event: the body is not a JSON object: %w", err)
	}
	ev := &ReceivedEvent{ID: b.ID, Body: body}
	if b.ExternalReference != nil {
		ev.ExternalReference = *b.ExternalReference
	}
	switch {
	case b.Subject != "":
		ev.Format = aviso.FormatAlegra
		ev.Type = EventTypeFromAlegra(b.Subject)
		_, noun := AlegraSubject(ev.Type)
		ev.Data = b.Message[noun]
		if ev.Data == nil && len(b.Message) == 1 {
			for _, d := range b.Message {
				ev.Data = d
			}
		}
	case b.Event != "":
		ev.Format = aviso.FormatFacturaScripts
		ev.Type = b.Event
		var d struct {
			Object json.RawMessage `json:"object"`
		}
		if len(b.Data) > 0 && json.Unmarshal(b.Data, &d) == nil {
			ev.Data = d.Object
		}
		if b.Created != 0 {
			ev.Timestamp = time.Unix(b.Created, 0).UTC()
		}
	case b.Type != "":
		ev.Format = aviso.FormatStandard
		if TokenFrom(h) != "" {
			ev.Format = aviso.FormatTusFacturas
		}
		ev.Type = b.Type
		ev.Data = b.Data
		if t, err := time.Parse(time.RFC3339Nano, b.Timestamp); err == nil {
			ev.Timestamp = t
		}
	default:
		return nil, errors.New("parse event: the body has none of \"type\", \"event\" or \"subject\"; it is not an Aviso webhook")
	}
	if id := h.Get(HeaderID); id != "" {
		ev.ID = id
	}
	if ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64); err == nil {
		ev.Timestamp = time.Unix(ts, 0).UTC()
	}
	if ev.ID == "" {
		return nil, errors.New("parse event: no webhook-id header and no id in the body")
	}
	return ev, nil
}

// TokenFrom returns the TF-WebhookToken of a header, stored under its canonical key (as net/http
// stores what it receives) or under TokenHeader's exact spelling (as Build stores it).
func TokenFrom(h http.Header) string {
	if v := h.Get(TokenHeader); v != "" {
		return v
	}
	if v := h[TokenHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// DedupStore remembers the webhook-ids a receiver has handled, so a retried delivery is handled
// once. Implementations must be safe for concurrent use.
type DedupStore interface {
	// Seen records id and reports whether it was recorded already.
	Seen(ctx context.Context, id string) (bool, error)
	// Forget removes id, so that a delivery whose handling failed is handled again on retry.
	Forget(ctx context.Context, id string) error
}

// MemoryDedup is the in-memory DedupStore: it keeps at most Max ids, each for TTL.
type MemoryDedup struct {
	max   int
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	seen  map[string]time.Time
	order []dedupEntry // by insertion time, oldest first
}

type dedupEntry struct {
	id string
	at time.Time
}

// NewMemoryDedup returns an in-memory DedupStore keeping at most max ids (default 10000) for
// ttl each (default 24h), on the clock now (default time.Now).
func NewMemoryDedup(max int, ttl time.Duration, now func() time.Time) *MemoryDedup {
	if max <= 0 {
		max = 10000
	}
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryDedup{max: max, ttl: ttl, now: now, seen: make(map[string]time.Time)}
}

// Seen records id and reports whether it was recorded already and has not expired.
func (d *MemoryDedup) Seen(_ context.Context, id string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for len(d.order) > 0 && now.Sub(d.order[0].at) >= d.ttl {
		d.evictOldest()
	}
	if _, ok := d.seen[id]; ok {
		return true, nil
	}
	for len(d.order) > 0 && (len(d.seen) >= d.max || len(d.order) >= 2*d.max) {
		d.evictOldest()
	}
	d.seen[id] = now
	d.order = append(d.order, dedupEntry{id, now})
	return false, nil
}

func (d *MemoryDedup) evictOldest() {
	e := d.order[0]
	d.order = d.order[1:]
	if at, ok := d.seen[e.id]; ok && at.Equal(e.at) {
		delete(d.seen, e.id)
	}
}

// Forget removes id.
func (d *MemoryDedup) Forget(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, id)
	return nil
}

// HandlerFunc handles one verified, parsed, first-seen event. Answering with a status of 300 or
// more (or panicking) makes the middleware forget the event, so that Aviso's retry is handled.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, ev *ReceivedEvent)

// MiddlewareOptions configures Middleware. At least one of Secrets, HMACSecret and Token is set;
// every one that is set must pass.
type MiddlewareOptions struct {
	// Secrets are the endpoint's Standard Webhooks secrets ("whsec_…") or Ed25519 public keys
	// ("whpk_…"); when set, webhook-signature must match one of them (401 otherwise). Give both
	// during a rotation.
	Secrets []string
	// Tolerance is how far webhook-timestamp may be from Now. Default: 5 minutes.
	Tolerance time.Duration
	// HMACSecret is the endpoint's secret for the facturascripts X-Webhook-Signature header; when
	// set, the header must match (401 otherwise).
	HMACSecret string
	// Token is the endpoint's TF-WebhookToken; when set, the header must equal it (403 otherwise,
	// as in the TusFacturas document).
	Token string
	// Dedup remembers handled webhook-ids. Default: NewMemoryDedup(10000, 24h, Now).
	Dedup DedupStore
	// MaxBodyBytes bounds the body read. Default: 1 MiB.
	MaxBodyBytes int64
	// Logger receives one line per rejected or failed request. Default: discard.
	Logger *slog.Logger
	// Now is the receiver's clock. Default: time.Now.
	Now func() time.Time
}

// Middleware returns an http.Handler that verifies each POST as configured (401 for a bad or
// missing signature or timestamp, 403 for a wrong token, with a message saying what is wrong),
// answers 200 to the empty-body handshake and to "ping" events, parses the event (400 when it
// cannot), answers 200 without calling next for a webhook-id already handled, and otherwise calls
// next.
func Middleware(opts MiddlewareOptions, next HandlerFunc) (http.Handler, error) {
	if len(opts.Secrets) == 0 && opts.HMACSecret == "" && opts.Token == "" {
		return nil, errors.New("webhook middleware: set Secrets, HMACSecret or Token, or every request would be accepted")
	}
	if next == nil {
		return nil, errors.New("webhook middleware: next handler is nil")
	}
	for i, s := range opts.Secrets {
		var err error
		switch {
		case strings.HasPrefix(s, PublicKeyPrefix):
			_, err = publicKey(s)
		case strings.HasPrefix(s, SigningKeyPrefix):
			err = errors.New("a whsk_ signing key stays with the sender; give the middleware its whpk_ public key")
		default:
			_, err = SecretKey(s)
		}
		if err != nil {
			return nil, fmt.Errorf("webhook middleware: secret %d: %w", i, err)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dedup == nil {
		opts.Dedup = NewMemoryDedup(0, 0, opts.Now)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &receiver{opts: opts, next: next,
		verifier: Verifier{Secrets: opts.Secrets, Tolerance: opts.Tolerance, Now: opts.Now}}, nil
}

type receiver struct {
	opts     MiddlewareOptions
	verifier Verifier
	next     HandlerFunc
}

func (rc *receiver) reject(w http.ResponseWriter, r *http.Request, code int, err error) {
	rc.opts.Logger.WarnContext(r.Context(), "webhook rejected", "status", code,
		"webhook_id", r.Header.Get(HeaderID), "error", err)
	http.Error(w, err.Error(), code)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhooks are delivered with POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			rc.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", rc.opts.MaxBodyBytes))
			return
		}
		rc.reject(w, r, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return
	}
	if rc.opts.Token != "" {
		if err := VerifyToken(rc.opts.Token, TokenFrom(r.Header)); err != nil {
			rc.reject(w, r, http.StatusForbidden, err)
			return
		}
	}
	if len(rc.opts.Secrets) > 0 {
		if err := rc.verifier.Verify(r.Header, body); err != nil {
			rc.reject(w, r, http.StatusUnauthorized, err)
			return
		}
	}
	if rc.opts.HMACSecret != "" {
		if err := VerifyHMACHex(rc.opts.HMACSecret, body, r.Header.Get(HMACHeader)); err != nil {
			rc.reject(w, r, http.StatusUnauthorized, err)
			return
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		_, _ = io.WriteString(w, "OK") // the alegra handshake
		return
	}
	ev, err := ParseEvent(r.Header, body)
	if err != nil {
		rc.reject(w, r, http.StatusBadRequest, err)
		return
	}
	if ev.Type == PingType {
		_, _ = io.WriteString(w, "OK")
		return
	}
	seen, err := rc.opts.Dedup.Seen(r.Context(), ev.ID)
	if err != nil {
		rc.opts.Logger.ErrorContext(r.Context(), "webhook dedup", "webhook_id", ev.ID, "error", err)
		http.Error(w, "could not check for a duplicate; retry later", http.StatusServiceUnavailable)
		return
	}
	if seen {
		_, _ = io.WriteString(w, "OK (duplicate)")
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	handled := false
	defer func() {
		if !handled || sw.status >= 300 {
			if err := rc.opts.Dedup.Forget(context.WithoutCancel(r.Context()), ev.ID); err != nil {
				rc.opts.Logger.ErrorContext(r.Context(), "webhook dedup forget", "webhook_id", ev.ID, "error", err)
			}
		}
	}()
	rc.next(sw, r, ev)
	handled = true
}

// statusWriter records the status the next handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
