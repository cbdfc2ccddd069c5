// Package api is Aviso's JSON API, version 1, on net/http's ServeMux. Handlers decode the
// request, call the service (which authorizes and validates) and encode the answer; errors are
// turned into statuses in one place, errors.go, and written as
// {"error":{"code":"…","message":"…","field":"…"}}.
//
// Every /v1 route needs "Authorization: Bearer <key>": the root key, or a key scoped to one
// tenant (which sees only that tenant; other tenants answer 404). Request bodies are JSON objects;
// unknown fields are refused with 422 naming the field, malformed JSON with 400.
//
// Routes:
//
//	GET    /healthz                                       liveness
//	GET    /readyz                                        readiness: the store and outbox sources answer
//	GET    /v1/key                                        the calling key: {"id","tenant_id","root"}
//	GET    /v1/openapi.json                               the OpenAPI 3.1 document (no key needed)
//	POST   /v1/tenants                                    create a tenant (root)
//	GET    /v1/tenants                                    list tenants (root)
//	GET    /v1/tenants/{tenant}                           get
//	PATCH  /v1/tenants/{tenant}                           change name, metadata (root)
//	DELETE /v1/tenants/{tenant}                           delete with everything it owns (root)
//	POST   /v1/tenants/{tenant}/keys                      issue a tenant key: {"key"} shown once
//	POST   /v1/tenants/{tenant}/portal-link               {"ttl":"15m"} optional: {"url","expires_at"}
//	POST   /v1/event-types                                add to the catalog (root)
//	GET    /v1/event-types                                list the catalog
//	GET    /v1/event-types/{name}                         get
//	PATCH  /v1/event-types/{name}                         change (root)
//	DELETE /v1/event-types/{name}                         remove (root)
//	POST   /v1/tenants/{tenant}/endpoints                 create (after the handshake)
//	GET    /v1/tenants/{tenant}/endpoints                 list
//	GET    /v1/tenants/{tenant}/endpoints/{endpoint}      get
//	PATCH  /v1/tenants/{tenant}/endpoints/{endpoint}      change; {"disabled":true|false}
//	DELETE /v1/tenants/{tenant}/endpoints/{endpoint}      delete
//	POST   …/endpoints/{endpoint}/rotate-secret           new secret; old ones sign 24 h more
//	GET    …/endpoints/{endpoint}/secret                  {"secret","secrets","token"}
//	POST   …/endpoints/{endpoint}/test                    one synchronous attempt: the attempt
//	GET    …/endpoints/{endpoint}/deliveries?status=      the endpoint's deliveries
//	POST   …/endpoints/{endpoint}/replay                  {"since":"RFC 3339","status":"failed|all"}
//	POST   …/endpoints/{endpoint}/filter-test             {"filter","event_id" or "type","data"}: {"match"}
//	POST   /v1/tenants/{tenant}/events                    publish: 202 new, 200 idempotent repeat
//	POST   /v1/tenants/{tenant}/events/batch              {"events":[…]} up to 1,000: 202
//	GET    /v1/tenants/{tenant}/events?after=&limit=&types=&since=&external_reference=&wait=
//	                                                      the events feed, resumable (feed.go)
//	GET    /v1/tenants/{tenant}/events/stream             the feed as Server-Sent Events (feed.go)
//	GET    /v1/tenants/{tenant}/events/{event}            get
//	GET    /v1/tenants/{tenant}/events/{event}/deliveries the event's deliveries
//	GET    /v1/tenants/{tenant}/deliveries?status=&endpoint_id=&type=&external_reference=
//	                                                      the tenant's deliveries
//	GET    /v1/tenants/{tenant}/deliveries/{delivery}     get, with every attempt
//	POST   /v1/tenants/{tenant}/deliveries/{delivery}/retry  queue now
//	GET    /v1/tenants/{tenant}/documents/{external_reference}  see handleGetDocument
//	GET    /v1/outbox                                     outbox relay status per source (root)
//	GET    /v1/outbox/rejected?source=&after=&limit=      outbox rows moved aside (root)
//	…      /v1/operational-endpoints…, /v1/operational-deliveries…  see operationalRoutes
//
// Lists answer {"data":[…],"next_cursor":"…","has_more":bool}; pass next_cursor as ?after= for
// the next page, ?limit= (default 50, at most 500) for its size.
//
// The two publish routes are traced (Config.TracerProvider, internal/tracing): a request's W3C
// traceparent is continued, and stored with its events for their attempts.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/tracing"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/service"
)

// Config configures the API handler.
type Config struct {
	// Service does the work. Required.
	Service *service.Service
	// Logger receives internal errors. Default: discard.
	Logger *slog.Logger
	// MaxBodyBytes caps a request body (413 beyond). Default: 16 MiB, or twice the service's
	// MaxPayloadBytes when that is larger.
	MaxBodyBytes int64
	// Portal makes the signed links of POST /v1/tenants/{tenant}/portal-link (the dashboard's
	// web.Handler). Nil: that route answers 404.
	Portal PortalLinker
	// Outbox is the node's outbox relay (GET /v1/outbox…, and /readyz checks its sources).
	// Nil: the node relays no outbox.
	Outbox *outbox.Relay
	// Shutdown, when it is done, ends the event streams and long-polls in progress (feed.go), so
	// that http.Server.Shutdown, which waits for them, can finish: pass a context cancelled from
	// http.Server.RegisterOnShutdown. Default: never.
	Shutdown context.Context
	// StreamKeepAlive is how often an idle event stream gets a comment line. Default 15s
	// (DefaultStreamKeepAlive); at most 30s.
	StreamKeepAlive time.Duration
	// TracerProvider traces the publish requests (internal/tracing), each continuing the
	// caller's traceparent. Default nil: no spans, an incoming traceparent still stored with
	// the events.
	TracerProvider trace.TracerProvider
}

// PortalLinker makes a short-lived signed URL that opens the dashboard scoped to one tenant.
type PortalLinker interface {
	PortalLink(ctx context.Context, p aviso.Principal, tenantID string, ttl time.Duration) (string, time.Time, error)
}

// handler is an API handler: it returns an error instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request, p aviso.Principal) error

type api struct {
	portal  PortalLinker
	outbox  *outbox.Relay
	svc     *service.Service
	log     *slog.Logger
	maxBody int64
	// shutdown and keepAlive are Config.Shutdown and Config.StreamKeepAlive (feed.go).
	shutdown  context.Context
	keepAlive time.Duration
	tracer    trace.Tracer
}

// New returns the API's http.Handler. It panics if cfg.Service is nil, a programming error.
func New(cfg Config) http.Handler {
	if cfg.Service == nil {
		panic("api: Config.Service is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = max(16<<20, 2*int64(cfg.Service.MaxPayloadBytes()))
	}
	if cfg.Shutdown == nil {
		cfg.Shutdown = context.Background()
	}
	if cfg.StreamKeepAlive <= 0 {
		cfg.StreamKeepAlive = DefaultStreamKeepAlive
	}
	a := &api{portal: cfg.Portal, outbox: cfg.Outbox, svc: cfg.Service, log: cfg.Logger, maxBody: cfg.MaxBodyBytes,
		shutdown: cfg.Shutdown, keepAlive: cfg.StreamKeepAlive, tracer: tracing.Tracer(cfg.TracerProvider)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(a.log, w, r, aviso.Errorf(aviso.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
	})
	a.routes(mux.Handle)
	return mux
}

// Route is one route of the API, as net/http's ServeMux pattern reads it.
type Route struct {
	Method string // GET, POST, PATCH, DELETE
	Path   string // e.g. /v1/tenants/{tenant}/events/{event}
}

// Routes returns every route of the API in registration order: the table that tests read to
// check the OpenAPI document (openapi.json) and tenant isolation against the router itself.
func Routes() []Route {
	var out []Route
	(&api{}).routes(func(pattern string, _ http.Handler) {
		method, path, _ := strings.Cut(pattern, " ")
		out = append(out, Route{Method: method, Path: path})
	})
	return out
}

// routes registers every route with handle. A new route goes here and in openapi.json
// (TestOpenAPIRoutes fails until both agree).
func (a *api) routes(handle func(pattern string, h http.Handler)) {
	handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.svc.Ping(r.Context()); err != nil {
			writeError(a.log, w, r, err)
			return
		}
		if a.outbox != nil {
			if err := a.outbox.Ping(r.Context()); err != nil {
				writeError(a.log, w, r, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	handle("GET /v1/openapi.json", http.HandlerFunc(serveOpenAPI))

	route := func(pattern string, h handler) { handle(pattern, a.wrap(h)) }
	const t = "/v1/tenants/{tenant}"
	route("GET /v1/key", a.whoami)
	route("POST /v1/tenants", a.createTenant)
	route("GET /v1/tenants", a.listTenants)
	route("GET "+t, a.getTenant)
	route("PATCH "+t, a.updateTenant)
	route("DELETE "+t, a.deleteTenant)
	route("POST "+t+"/keys", a.createKey)
	route("POST "+t+"/portal-link", a.portalLink)

	route("POST /v1/event-types", a.createEventType)
	route("GET /v1/event-types", a.listEventTypes)
	route("GET /v1/event-types/{name}", a.getEventType)
	route("PATCH /v1/event-types/{name}", a.updateEventType)
	route("DELETE /v1/event-types/{name}", a.deleteEventType)

	const ep = t + "/endpoints/{endpoint}"
	route("POST "+t+"/endpoints", a.createEndpoint)
	route("GET "+t+"/endpoints", a.listEndpoints)
	route("GET "+ep, a.getEndpoint)
	route("PATCH "+ep, a.updateEndpoint)
	route("DELETE "+ep, a.deleteEndpoint)
	route("POST "+ep+"/rotate-secret", a.rotateSecret)
	route("GET "+ep+"/secret", a.getSecret)
	route("POST "+ep+"/test", a.sendTest)
	route("GET "+ep+"/deliveries", a.listEndpointDeliveries)
	route("POST "+ep+"/replay", a.replay)
	route("POST "+ep+"/filter-test", a.testFilter)

	// The publish requests are traced (a batch is one span; its events' attempts descend from it).
	traced := func(pattern string, h handler) { handle(pattern, tracing.ServerHandler(a.tracer, pattern, a.wrap(h))) }
	traced("POST "+t+"/events", a.publish)
	traced("POST "+t+"/events/batch", a.publishBatch)
	route("GET "+t+"/events", a.listEvents)
	route("GET "+t+"/events/stream", a.streamEvents)
	route("GET "+t+"/events/{event}", a.getEvent)
	route("GET "+t+"/events/{event}/deliveries", a.listEventDeliveries)
	route("GET "+t+"/deliveries", a.listDeliveries)
	route("GET "+t+"/deliveries/{delivery}", a.getDelivery)
	route("POST "+t+"/deliveries/{delivery}/retry", a.retryDelivery)
	route("GET "+t+"/documents/{ref...}", a.getDocument)
	route("GET /v1/outbox", a.outboxStatus)
	route("GET /v1/outbox/rejected", a.outboxRejected)
	a.operationalRoutes(route)
}

// wrap authenticates the caller, caps the body and writes the handler's error.
func (a *api) wrap(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err == nil {
			err = checkRequestText(r)
		}
		if err == nil {
			r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
			err = h(w, r, p)
		}
		if err != nil {
			writeError(a.log, w, r, err)
		}
	})
}

const authHint = `pass your API key as the header "Authorization: Bearer <key>"`

func (a *api) authenticate(r *http.Request) (aviso.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return aviso.Principal{}, aviso.Errorf(aviso.EUNAUTHORIZED, "an API key is required: %s", authHint)
	}
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return aviso.Principal{}, aviso.Errorf(aviso.EUNAUTHORIZED, "malformed Authorization header: %s", authHint)
	}
	p, err := a.svc.Authenticate(r.Context(), strings.TrimSpace(key))
	if aviso.ErrorCode(err) == aviso.EUNAUTHORIZED {
		return aviso.Principal{}, aviso.Errorf(aviso.EUNAUTHORIZED, "unknown API key: %s", authHint)
	}
	return p, err
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away: nothing left to tell it
}

const emptyBody = "the request body is empty; send a JSON object"

// checkRequestText refuses a path or query that is not UTF-8 text, or holds a NUL: 400
// EINVALIDTEXT naming the parameter. Stores never see such text (PostgreSQL would refuse it).
func checkRequestText(r *http.Request) error {
	if aviso.CheckText("path", r.URL.Path) != nil {
		return &aviso.Error{Code: aviso.EINVALIDTEXT, Field: "path",
			Message: "the path is not valid UTF-8 text or holds a NUL character; percent-encode UTF-8 text"}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return aviso.Errorf(aviso.EINVALIDTEXT, "the query string is malformed (%v); percent-encode its parameters", err)
	}
	for k, vs := range q {
		for _, v := range vs {
			if aviso.CheckText(k, k+v) != nil {
				return &aviso.Error{Code: aviso.EINVALIDTEXT, Field: strings.ToValidUTF8(strings.ReplaceAll(k, "\x00", ""), "\uFFFD"),
					Message: "the query parameter is not valid UTF-8 text or holds a NUL character; percent-encode UTF-8 text"}
			}
		}
	}
	return nil
}

// decode reads a JSON object into v, refusing unknown fields and trailing data. Malformed JSON
// — bad syntax, text that is not UTF-8, a lone surrogate escape — is EINVALIDJSON; a "\u0000" in
// any string, a field of the wrong type or an unknown field is EINVALID naming it; a body over
// the limit is ETOOLARGE. The body is read whole first: the text checks (aviso.CheckJSONText)
// need it, and a request body is at most the server's body limit.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge(mbe)
	case err != nil:
		return aviso.Errorf(aviso.EBADREQUEST, "reading the body failed: %v", err)
	case len(bytes.TrimSpace(body)) == 0:
		return aviso.Errorf(aviso.EBADREQUEST, emptyBody)
	}
	if err := aviso.CheckJSONText("", body); err != nil {
		if aviso.ErrorCode(err) == aviso.EINVALIDJSON {
			return aviso.Errorf(aviso.EINVALIDJSON, "invalid JSON: the body %s", aviso.ErrorMessage(err))
		}
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if dec.More() {
			return aviso.Errorf(aviso.EINVALIDJSON, "invalid JSON: the body holds more than one value")
		}
		if _, err := dec.Token(); err != io.EOF {
			return aviso.Errorf(aviso.EINVALIDJSON, "invalid JSON: unexpected data after the object")
		}
		return nil
	}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	var ae *aviso.Error // from a type's own UnmarshalJSON, e.g. an endpoint's headers
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, io.EOF):
		return aviso.Errorf(aviso.EBADREQUEST, emptyBody)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return aviso.Errorf(aviso.EINVALIDJSON, "invalid JSON: the body ends too early")
	case errors.As(err, &syn):
		return aviso.Errorf(aviso.EINVALIDJSON, "invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ) && typ.Type == reflect.TypeFor[aviso.Duration]() && typ.Field != "":
		return aviso.Invalid(typ.Field, "must be a duration such as \"25s\" or \"10m\", not %s", typ.Value)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return aviso.Errorf(aviso.EBADREQUEST, "the body must be a JSON object, not %s", typ.Value)
		}
		return aviso.Invalid(typ.Field, "must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; its text is documented and stable.
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return aviso.Invalid(name, "is not a known field")
	}
	return aviso.Errorf(aviso.EINVALIDJSON, "invalid JSON: %v", err)
}

func tooLarge(e *http.MaxBytesError) error {
	return aviso.Errorf(aviso.ETOOLARGE, "the request body is over %d bytes", e.Limit)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	if strings.HasPrefix(goKind, "int") || strings.HasPrefix(goKind, "uint") || strings.HasPrefix(goKind, "float") {
		return "a number"
	}
	return "another type"
}

// listParams reads ?after= and ?limit=. The cursor is decoded by the service, which knows the
// list (aviso.CursorKind).
func listParams(r *http.Request) (aviso.ListParams, error) {
	q := r.URL.Query()
	lp := aviso.ListParams{After: q.Get("after")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > aviso.MaxLimit {
			return lp, aviso.Invalid("limit", "must be a whole number from 1 to %d", aviso.MaxLimit)
		}
		lp.Limit = n
	}
	return lp, nil
}
