package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	callerParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	callerState  = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

// TestOrigin: the trace context of a context is stored as one string and read back to the same
// span context, tracestate included; no context, no string; a malformed one is ignored.
func TestOrigin(t *testing.T) {
	if got := Origin(context.Background()); got != "" {
		t.Fatalf("Origin of a context without a span: %q", got)
	}
	h := http.Header{}
	h.Set("traceparent", callerParent)
	h.Set("tracestate", callerState)
	ctx := Extract(context.Background(), h)
	stored := Origin(ctx)
	if want := callerParent + " " + callerState; stored != want {
		t.Fatalf("Origin %q, want %q", stored, want)
	}
	back := trace.SpanContextFromContext(WithOrigin(context.Background(), stored))
	if !back.Equal(trace.SpanContextFromContext(ctx)) || !back.IsRemote() {
		t.Fatalf("WithOrigin read %+v back, want %+v (remote)", back, trace.SpanContextFromContext(ctx))
	}
	if got := Origin(WithOrigin(context.Background(), callerParent)); got != callerParent {
		t.Fatalf("without tracestate: %q", got)
	}
	for _, bad := range []string{"", "00-xyz", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if sc := trace.SpanContextFromContext(WithOrigin(context.Background(), bad)); sc.IsValid() {
			t.Errorf("WithOrigin(%q) gave a valid span context %+v", bad, sc)
		}
	}
	out := http.Header{}
	Inject(WithOrigin(context.Background(), stored), out)
	if out.Get("traceparent") != callerParent || out.Get("tracestate") != callerState {
		t.Fatalf("Inject wrote %v", out)
	}
	none := http.Header{}
	Inject(context.Background(), none)
	if len(none) != 0 {
		t.Fatalf("Inject without a trace context wrote %v", none)
	}
}

// TestServerHandler: a request's span continues its traceparent, is named by its route and
// records the status; without a provider the traceparent still reaches the handler.
func TestServerHandler(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var seen trace.SpanContext
	h := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = trace.SpanContextFromContext(r.Context())
			w.WriteHeader(status)
		})
	}
	serve := func(tr trace.Tracer, status int, traceparent string) {
		t.Helper()
		mux := http.NewServeMux()
		const route = "POST /v1/tenants/{tenant}/events"
		mux.Handle(route, ServerHandler(tr, route, h(status)))
		req := httptest.NewRequest("POST", "/v1/tenants/acme/events", nil)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		mux.ServeHTTP(httptest.NewRecorder(), req)
	}

	serve(Tracer(tp), http.StatusServiceUnavailable, callerParent)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != "POST /v1/tenants/{tenant}/events" || s.SpanKind != trace.SpanKindServer ||
		s.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("span %s kind %v parent %v", s.Name, s.SpanKind, s.Parent)
	}
	if !seen.Equal(s.SpanContext) {
		t.Fatalf("the handler ran in %v, not the request's span %v", seen, s.SpanContext)
	}
	attrs := attrMap(s.Attributes)
	if attrs["http.response.status_code"] != "503" || attrs["http.route"] != "/v1/tenants/{tenant}/events" ||
		attrs["aviso.tenant.id"] != "acme" || attrs["error.type"] != "503" || s.Status.Code.String() != "Error" {
		t.Fatalf("attributes %v, status %v", attrs, s.Status)
	}

	serve(Tracer(nil), http.StatusAccepted, callerParent)
	if seen.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || seen.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("without a provider the handler saw %v, want the caller's span context", seen)
	}
	serve(Tracer(nil), http.StatusAccepted, "")
	if seen.IsValid() {
		t.Fatalf("without a provider or traceparent the handler saw %v", seen)
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// TestWithoutURLs: an attempt's error keeps its words but no URL beyond scheme and host.
func TestWithoutURLs(t *testing.T) {
	for in, want := range map[string]string{
		"connection refused": "connection refused",
		"OAuth2 token request to https://u:p@auth.example.com/token?client_secret=s3 failed: timeout": "OAuth2 token request to https://auth.example.com failed: timeout",
		"redirect 302 not followed (Location: http://x.example/a?b=c)":                                "redirect 302 not followed (Location: http://x.example",
	} {
		got := withoutURLs(in)
		if !strings.HasPrefix(got, want) || strings.Contains(got, "s3") || strings.Contains(got, "b=c") {
			t.Errorf("withoutURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnabled: the OTLP endpoint variables turn export on; OTEL_SDK_DISABLED and
// OTEL_TRACES_EXPORTER=none turn it off; a protocol or exporter Aviso lacks is an error.
func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		want    bool
		wantErr bool
	}{
		{nil, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "zipkin"}, false, true},
	} {
		got, err := Enabled(func(k string) string { return tc.env[k] })
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Enabled(%v) = %v, %v; want %v, error %v", tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}
