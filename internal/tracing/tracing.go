// Package tracing is Aviso's OpenTelemetry tracing. Its invariant: a span exists only where a
// TracerProvider was passed in, and the W3C trace context of a publish travels with its events
// (aviso.Event.TraceParent), so the spans of their attempts, made later and perhaps on another
// node, are children of the publish's span.
//
// The spans, all from one tracer named after the module:
//
//	POST /v1/tenants/{tenant}/events[/batch]  server   the publish request (ServerHandler); continues
//	                                                   an incoming traceparent
//	publish                                   producer service.Publish: validation, matching, the store
//	store.InsertEvents                        internal the store's one transaction
//	attempt                                   client   each attempt of a delivery (Attempts, a
//	                                                   dispatch.Observer), a child of the publish
//
// Nothing here is global: no global TracerProvider or propagator is set or read; the W3C trace
// context propagator is used explicitly. Without a provider (nil, or a no-op one) no span is
// recorded and no goroutine runs, but a caller's traceparent still passes through: it is stored
// with the events and, where an endpoint asks for it, sent to the receiver.
//
// NewProvider builds the SDK's provider exporting by OTLP over HTTP, configured by the standard
// OTEL_* environment variables; Enabled says whether they ask for it.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aviso-dev/aviso"
)

// Name is the instrumentation scope of Aviso's tracer.
const Name = "github.com/aviso-dev/aviso"

// Attribute keys of Aviso's own vocabulary on its spans. None carries a secret or a URL.
const (
	TenantID       = attribute.Key("aviso.tenant.id")
	EndpointID     = attribute.Key("aviso.endpoint.id")
	EventID        = attribute.Key("aviso.event.id")
	EventType      = attribute.Key("aviso.event.type")
	DeliveryID     = attribute.Key("aviso.delivery.id")
	AttemptID      = attribute.Key("aviso.attempt.id")
	AttemptNumber  = attribute.Key("aviso.attempt.number")  // 1 for a delivery's first attempt
	DeliveryStatus = attribute.Key("aviso.delivery.status") // after the attempt: pending, succeeded, failed
	EventsCreated  = attribute.Key("aviso.events.created")  // of a publish: new events (the rest were repeats)
	Deliveries     = attribute.Key("aviso.deliveries")      // of a publish: deliveries queued
)

// Tracer returns Aviso's tracer of tp; nil for a nil tp, which Start takes as tracing off.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(Name, trace.WithInstrumentationVersion(aviso.Version))
}

// Start is tr.Start; with a nil tr (tracing off) it returns ctx and a span that records
// nothing, without allocating.
func Start(ctx context.Context, tr trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, trace.SpanFromContext(context.Background()) // the package's no-op span
	}
	return tr.Start(ctx, name, opts...)
}

// Inject writes the W3C trace context of ctx (traceparent, and tracestate when there is one)
// into h; nothing when ctx has none.
func Inject(ctx context.Context, h http.Header) {
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}

// Extract returns ctx with the trace context of h as its remote parent; ctx itself when h has
// no valid traceparent.
func Extract(ctx context.Context, h http.Header) context.Context {
	if _, ok := h["Traceparent"]; !ok { // as net/http stores it: no canonicalizing (an allocation) per request
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(h))
}

// Origin returns the trace context of ctx as an event stores it (aviso.Event.TraceParent): the
// traceparent header's value, then a space and the tracestate's when there is one. "" when ctx
// has no valid span context (cheap: no allocation then).
func Origin(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	if ts := c["tracestate"]; ts != "" {
		return c["traceparent"] + " " + ts
	}
	return c["traceparent"]
}

// WithOrigin returns ctx with the trace context an event stored (Origin) as its remote parent;
// ctx itself when the stored value is empty or malformed.
func WithOrigin(ctx context.Context, stored string) context.Context {
	if stored == "" {
		return ctx
	}
	parent, state, _ := strings.Cut(stored, " ")
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": parent, "tracestate": state})
}

// EndWith ends span, marking it with the error that ended its operation, if any: error.type is
// the error's code (aviso.ErrorCode), and the status is Error for a fault of the server's own
// (internal, unavailable, storage) rather than of the request.
func EndWith(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		code := aviso.ErrorCode(err)
		span.SetAttributes(semconv.ErrorTypeKey.String(code))
		switch code {
		case aviso.EINTERNAL, aviso.EUNAVAILABLE, aviso.ESTORAGE:
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// ServerHandler traces the requests next serves as server spans named route (a ServeMux
// pattern such as "POST /v1/tenants/{tenant}/events"), each a child of the request's incoming
// traceparent when it has one. With a nil tracer (or a no-op one) it only carries that
// traceparent into the request's context.
func ServerHandler(tr trace.Tracer, route string, next http.Handler) http.Handler {
	method, path, _ := strings.Cut(route, " ")
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)} // made once: no allocation per request
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parent := Extract(r.Context(), r.Header)
		ctx, span := Start(parent, tr, route, opts...)
		if !span.IsRecording() {
			if trace.SpanContextFromContext(ctx).IsValid() {
				r = r.WithContext(ctx) // a caller's trace passes through
			}
			next.ServeHTTP(w, r)
			return
		}
		defer span.End()
		span.SetAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(path),
			TenantID.String(r.PathValue("tenant")))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(sw.status))
		if sw.status >= 500 {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(sw.status)))
			span.SetStatus(codes.Error, "")
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Attempts is the delivery engine's dispatch.Observer that traces each attempt: a client span
// "attempt", a child of the event's stored trace context (WithOrigin), whose context the
// attempt runs in, so that an endpoint sending traceparent passes the attempt's own span on to
// the receiver.
type Attempts struct {
	tracer trace.Tracer // nil: no spans
	opts   []trace.SpanStartOption
}

// NewAttempts returns the observer tracing attempts with tp (nil: no spans, the stored trace
// context still carried into the attempt's context).
func NewAttempts(tp trace.TracerProvider) *Attempts {
	return &Attempts{tracer: Tracer(tp), opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}}
}

// Attempt starts the span of an attempt of c; done ends it with the attempt's outcome.
func (o *Attempts) Attempt(ctx context.Context, c *aviso.Claim) (context.Context, func(*aviso.Attempt, aviso.Completion)) {
	ctx = WithOrigin(ctx, c.Event.TraceParent)
	if o.tracer == nil {
		return ctx, nil
	}
	ctx, span := o.tracer.Start(ctx, "attempt", o.opts...)
	if !span.IsRecording() {
		return ctx, nil
	}
	span.SetAttributes(
		TenantID.String(c.Delivery.TenantID),
		EndpointID.String(c.Delivery.EndpointID),
		EventID.String(c.Delivery.EventID),
		EventType.String(c.Delivery.EventType),
		DeliveryID.String(c.Delivery.ID),
		AttemptNumber.Int(c.Delivery.AttemptCount+1),
		semconv.HTTPRequestMethodKey.String(http.MethodPost),
	)
	if u, err := url.Parse(c.Endpoint.URL); err == nil { // the host only: a URL may hold credentials
		span.SetAttributes(semconv.URLScheme(u.Scheme), semconv.ServerAddress(u.Hostname()))
		if p, err := strconv.Atoi(u.Port()); err == nil {
			span.SetAttributes(semconv.ServerPort(p))
		}
	}
	return ctx, func(a *aviso.Attempt, comp aviso.Completion) {
		span.SetAttributes(AttemptID.String(a.ID), DeliveryStatus.String(string(comp.Status)))
		if a.ResponseStatus != 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(a.ResponseStatus))
		}
		if !a.Succeeded() {
			if a.ResponseStatus != 0 {
				span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(a.ResponseStatus)))
				span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(a.ResponseStatus))
			} else {
				span.SetAttributes(semconv.ErrorTypeKey.String("_OTHER"))
				span.SetStatus(codes.Error, withoutURLs(a.Error))
			}
		}
		span.End()
	}
}

// withoutURLs shortens every URL in an attempt's error to its scheme and host (an OAuth2 token
// URL, say, may carry credentials in its query).
func withoutURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	words := strings.Split(s, " ")
	for i, w := range words {
		if !strings.Contains(w, "://") {
			continue
		}
		if u, err := url.Parse(w); err == nil && u.Host != "" {
			words[i] = u.Scheme + "://" + u.Hostname()
		} else {
			words[i] = "<url>"
		}
	}
	return strings.Join(words, " ")
}

// Enabled reports whether the environment (read with getenv) asks for traces to be exported:
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, OTEL_SDK_DISABLED
// is not "true" and OTEL_TRACES_EXPORTER is not "none". It fails when the variables ask for
// what Aviso does not do (OTLP over gRPC, another exporter).
func Enabled(getenv func(string) string) (bool, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return false, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "", "otlp":
	default:
		return false, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: Aviso exports traces by OTLP only (otlp, or none)", exp)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(name)); p != "" {
			if p != "http/protobuf" {
				return false, fmt.Errorf("tracing: %s=%q: Aviso exports OTLP over HTTP only (http/protobuf)", name, p)
			}
			break
		}
	}
	return true, nil
}

// NewProvider returns the SDK's TracerProvider exporting spans in batches by OTLP over HTTP,
// configured by the standard environment variables (OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS,
// _TIMEOUT, the sampler's OTEL_TRACES_SAMPLER, the batch's OTEL_BSP_*, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES); the service name defaults to "aviso". The caller shuts it down
// (which exports what is left) when the node stops.
func NewProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("aviso"), semconv.ServiceVersion(aviso.Version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
