package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/aviso-dev/aviso"
)

// BenchmarkPublishPath measures what tracing adds to a publish, with what api and service do
// around the real work (which is left out: a store commit would hide the difference): the
// request span, the publish span, the event's trace context and the store span. "untraced" is
// the bare handler, "off" the default (no provider), "noop" a no-op provider, "on" the SDK
// recording every span (no exporter). go test -bench PublishPath -benchmem ./internal/tracing/
func BenchmarkPublishPath(b *testing.B) {
	publish := func(tr trace.Tracer) http.Handler {
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)} // as service.New makes it
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := Start(r.Context(), tr, "publish", opts...)
			_ = Origin(ctx)
			_, store := Start(ctx, tr, "store.InsertEvents")
			EndWith(store, nil)
			EndWith(span, nil)
			w.WriteHeader(http.StatusAccepted)
		})
	}
	const route = "POST /v1/tenants/{tenant}/events"
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"untraced", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })},
		{"off", ServerHandler(Tracer(nil), route, publish(Tracer(nil)))},
		{"noop", ServerHandler(Tracer(noop.NewTracerProvider()), route, publish(Tracer(noop.NewTracerProvider())))},
		{"on", ServerHandler(Tracer(sdktrace.NewTracerProvider()), route, publish(Tracer(sdktrace.NewTracerProvider())))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mux := http.NewServeMux()
			mux.Handle(route, bc.h)
			req := httptest.NewRequest("POST", "/v1/tenants/acme/events", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				mux.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkAttempt measures the attempt observer: off (no provider, no stored trace context)
// it should cost next to nothing.
func BenchmarkAttempt(b *testing.B) {
	c := &aviso.Claim{Delivery: &aviso.Delivery{ID: "dl_1", TenantID: "acme", EndpointID: "ep_1", EventID: "evt_1",
		EventType: "invoice.created"}, Event: &aviso.Event{ID: "evt_1"}, Endpoint: &aviso.Endpoint{URL: "https://example.com/hook"}}
	a := &aviso.Attempt{ID: "att_1", ResponseStatus: 200}
	for _, bc := range []struct {
		name string
		tp   trace.TracerProvider
	}{{"off", nil}, {"noop", noop.NewTracerProvider()}, {"on", sdktrace.NewTracerProvider()}} {
		b.Run(bc.name, func(b *testing.B) {
			o := NewAttempts(bc.tp)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, done := o.Attempt(ctx, c)
				if done != nil {
					done(a, aviso.Completion{Status: aviso.StatusSucceeded})
				}
			}
		})
	}
}
