package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/server"
)

// The caller's trace context on the publish request.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
	callerState  = "congo=t61rcWkgMzE"
)

// traceReceiver is a receiver that remembers, by event (Webhook-Id), the trace headers of the
// deliveries it got.
type traceReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]http.Header
}

func newTraceReceiver(t *testing.T, status int) *traceReceiver {
	t.Helper()
	rv := &traceReceiver{got: map[string]http.Header{}}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rv.mu.Lock()
		rv.got[r.Header.Get("Webhook-Id")] = http.Header{"Traceparent": r.Header.Values("Traceparent"),
			"Tracestate": r.Header.Values("Tracestate")}
		rv.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rv.Close)
	return rv
}

// headers waits until the receiver got the event, and returns its trace headers.
func (rv *traceReceiver) headers(t *testing.T, eventID string) http.Header {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rv.mu.Lock()
		h, ok := rv.got[eventID]
		rv.mu.Unlock()
		if ok {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver never got %s", eventID)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// publishTraced publishes body at path with extra request headers and returns the status.
func publishTraced(t *testing.T, n *node, path string, body any, header map[string]string) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", n.URL()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+rootKey)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", path, res.StatusCode, raw)
	}
	return res.StatusCode
}

// tracingEndpoints makes tenant acme with two endpoints, one sending traceparent (its receiver
// answers 200) and one not (500, retried in an hour: one attempt within the test).
func tracingEndpoints(t *testing.T, n *node) (on, off *traceReceiver, onID, offID string) {
	t.Helper()
	on, off = newTraceReceiver(t, http.StatusOK), newTraceReceiver(t, http.StatusInternalServerError)
	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
	var epOn, epOff aviso.Endpoint
	// The query stands for credentials a URL may carry: no span shows it.
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": on.URL + "/hook?key=hunter2",
		"verify": false, "send_traceparent": true}, &epOn)
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": off.URL + "/hook?token=hunter2",
		"verify": false, "retry_schedule": []string{"1h"}}, &epOff)
	if !epOn.SendTraceparent || epOff.SendTraceparent {
		t.Fatalf("send_traceparent %v and %v, want true and false", epOn.SendTraceparent, epOff.SendTraceparent)
	}
	return on, off, epOn.ID, epOff.ID
}

// waitSpans waits until the exporter holds at least n spans named name, and returns all spans.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, name string, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		spans := exp.GetSpans()
		if len(named(spans, name)) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %q spans, want %d", len(named(spans, name)), name, n)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

func named(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attrs(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// TestTracing: with a TracerProvider, a publish carrying the caller's traceparent is a server
// span continuing the caller's trace, with the publish and its store transaction beneath; each
// attempt is a client span, a child of the publish, with its outcome and no credentials; the
// endpoint that asks for it receives the attempt's traceparent and the caller's tracestate, the
// other neither. A batch is one request and one publish span, parent of every event's attempt.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	n := runNode(t, server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), RootKey: rootKey, AllowPrivateNetworks: true,
		Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard, TracerProvider: tp})
	on, off, onID, offID := tracingEndpoints(t, n)

	publishTraced(t, n, "/v1/tenants/acme/events", map[string]any{"id": "evt_traced", "type": "invoice.created",
		"data": map[string]any{"id": "FV-1", "total": 10}},
		map[string]string{"traceparent": callerParent, "tracestate": callerState})
	onGot, offGot := on.headers(t, "evt_traced"), off.headers(t, "evt_traced")
	spans := waitSpans(t, exp, "attempt", 2)

	req := named(spans, "POST /v1/tenants/{tenant}/events")
	if len(req) != 1 {
		t.Fatalf("%d request spans, want 1", len(req))
	}
	r := req[0]
	if r.SpanKind != trace.SpanKindServer || r.SpanContext.TraceID().String() != callerTrace ||
		r.Parent.SpanID().String() != callerSpan || !r.Parent.IsRemote() {
		t.Fatalf("request span kind %v, trace %s, parent %v: want a server span continuing the caller's", r.SpanKind,
			r.SpanContext.TraceID(), r.Parent)
	}
	if a := attrs(r); a["http.response.status_code"] != "202" || a["http.route"] != "/v1/tenants/{tenant}/events" ||
		a["http.request.method"] != "POST" || a["aviso.tenant.id"] != "acme" {
		t.Errorf("request span attributes %v", a)
	}
	pub := childOf(t, spans, "publish", r)
	if a := attrs(pub); a["aviso.events.created"] != "1" || a["aviso.deliveries"] != "2" || a["messaging.batch.message_count"] != "1" {
		t.Errorf("publish span attributes %v", a)
	}
	childOf(t, spans, "store.InsertEvents", pub)

	byEndpoint := map[string]tracetest.SpanStub{}
	for _, s := range named(spans, "attempt") {
		if s.Parent.SpanID() != pub.SpanContext.SpanID() || s.SpanContext.TraceID().String() != callerTrace {
			t.Errorf("attempt span's parent %v, want the publish span %v", s.Parent, pub.SpanContext)
		}
		if s.SpanKind != trace.SpanKindClient {
			t.Errorf("attempt span kind %v", s.SpanKind)
		}
		byEndpoint[attrs(s)["aviso.endpoint.id"]] = s
	}
	ok, failed := byEndpoint[onID], byEndpoint[offID]
	if a := attrs(ok); a["http.response.status_code"] != "200" || a["aviso.event.id"] != "evt_traced" ||
		a["aviso.event.type"] != "invoice.created" || a["aviso.attempt.number"] != "1" || a["aviso.delivery.status"] != "succeeded" ||
		a["server.address"] != "127.0.0.1" || a["url.scheme"] != "http" || a["aviso.delivery.id"] == "" || a["aviso.attempt.id"] == "" ||
		ok.Status.Code.String() != "Unset" {
		t.Errorf("successful attempt: attributes %v, status %v", a, ok.Status)
	}
	if a := attrs(failed); a["http.response.status_code"] != "500" || a["error.type"] != "500" ||
		a["aviso.delivery.status"] != "pending" || failed.Status.Code.String() != "Error" {
		t.Errorf("failed attempt: attributes %v, status %v", a, failed.Status)
	}
	for _, s := range spans {
		for k, v := range attrs(s) {
			if strings.Contains(v, "hunter2") || strings.Contains(v, "/hook") {
				t.Errorf("span %s: attribute %s=%q shows the endpoint's URL", s.Name, k, v)
			}
		}
		if strings.Contains(s.Status.Description, "hunter2") {
			t.Errorf("span %s: status %q shows a credential", s.Name, s.Status.Description)
		}
	}

	wantParent := "00-" + callerTrace + "-" + ok.SpanContext.SpanID().String() + "-01"
	if got := onGot.Values("Traceparent"); len(got) != 1 || got[0] != wantParent {
		t.Errorf("the receiver that asked got traceparent %q, want %q (the attempt's span)", got, wantParent)
	}
	if got := onGot.Values("Tracestate"); len(got) != 1 || got[0] != callerState {
		t.Errorf("the receiver that asked got tracestate %q, want the caller's %q", got, callerState)
	}
	if len(offGot["Traceparent"]) != 0 || len(offGot["Tracestate"]) != 0 {
		t.Errorf("the receiver that did not ask got %v", offGot)
	}
	// The attempt log shows what was sent.
	logged := false
	for _, d := range eventDeliveries(t, n, "acme", "evt_traced") {
		if d.EndpointID != onID {
			continue
		}
		logged = true
		full := waitDelivery(t, n, "acme", d.ID, aviso.StatusSucceeded, 1) // its completion is written in a batch
		if len(full.Attempts) != 1 || full.Attempts[0].RequestHeaders["Traceparent"] != wantParent {
			t.Errorf("the attempt log of the delivery: %+v", full.Attempts)
		}
	}
	if !logged {
		t.Error("no delivery of evt_traced to the endpoint that sends traceparent")
	}

	t.Run("batch", func(t *testing.T) {
		exp.Reset()
		var events []map[string]any
		for _, id := range []string{"evt_b1", "evt_b2", "evt_b3"} {
			events = append(events, map[string]any{"id": id, "type": "invoice.created",
				"data": map[string]any{"id": id, "total": 1}})
		}
		publishTraced(t, n, "/v1/tenants/acme/events/batch", map[string]any{"events": events}, nil)
		spans := waitSpans(t, exp, "attempt", 6)
		req := named(spans, "POST /v1/tenants/{tenant}/events/batch")
		pubs := named(spans, "publish")
		if len(req) != 1 || len(pubs) != 1 {
			t.Fatalf("%d request spans and %d publish spans for one batch, want 1 and 1", len(req), len(pubs))
		}
		if req[0].Parent.IsValid() {
			t.Errorf("a request without traceparent has parent %v, want a new trace", req[0].Parent)
		}
		pub := childOf(t, spans, "publish", req[0])
		if a := attrs(pub); a["messaging.batch.message_count"] != "3" || a["aviso.events.created"] != "3" || a["aviso.deliveries"] != "6" {
			t.Errorf("batch publish span attributes %v", a)
		}
		seen := map[string]int{}
		for _, s := range named(spans, "attempt") {
			seen[attrs(s)["aviso.event.id"]]++
			if s.Parent.SpanID() != pub.SpanContext.SpanID() {
				t.Errorf("attempt of %s: parent %v, want the batch's publish span", attrs(s)["aviso.event.id"], s.Parent)
			}
		}
		if seen["evt_b1"] != 2 || seen["evt_b2"] != 2 || seen["evt_b3"] != 2 {
			t.Errorf("attempt spans by event %v, want two each", seen)
		}
		if got := on.headers(t, "evt_b2").Get("Traceparent"); !strings.HasPrefix(got, "00-"+pub.SpanContext.TraceID().String()+"-") {
			t.Errorf("batch event's traceparent %q, want one of the batch's trace", got)
		}
	})
}

// childOf returns the one span named name whose parent is parent.
func childOf(t *testing.T, spans tracetest.SpanStubs, name string, parent tracetest.SpanStub) tracetest.SpanStub {
	t.Helper()
	var out []tracetest.SpanStub
	for _, s := range named(spans, name) {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() && s.SpanContext.TraceID() == parent.SpanContext.TraceID() {
			out = append(out, s)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d %q spans under %q, want 1", len(out), name, parent.Name)
	}
	return out[0]
}

// TestTraceparentWithoutTracing: a node without a TracerProvider records no span but passes a
// caller's trace context on to the endpoints that ask for it, unchanged; without one, nothing
// is sent.
func TestTraceparentWithoutTracing(t *testing.T) {
	n := runNode(t, server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), RootKey: rootKey, AllowPrivateNetworks: true,
		Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard})
	on, off, _, offID := tracingEndpoints(t, n)
	data := map[string]any{"id": "FV-1", "total": 10}
	publishTraced(t, n, "/v1/tenants/acme/events", map[string]any{"id": "evt_passed", "type": "invoice.created", "data": data},
		map[string]string{"traceparent": callerParent, "tracestate": callerState})
	publishTraced(t, n, "/v1/tenants/acme/events", map[string]any{"id": "evt_plain", "type": "invoice.created", "data": data}, nil)
	if h := on.headers(t, "evt_passed"); h.Get("Traceparent") != callerParent || h.Get("Tracestate") != callerState {
		t.Errorf("passed through: %v, want the caller's %s %s", h, callerParent, callerState)
	}
	if h := on.headers(t, "evt_plain"); len(h["Traceparent"]) != 0 || len(h["Tracestate"]) != 0 {
		t.Errorf("without a caller's trace context the receiver got %v", h)
	}
	for _, id := range []string{"evt_passed", "evt_plain"} {
		if h := off.headers(t, id); len(h["Traceparent"]) != 0 || len(h["Tracestate"]) != 0 {
			t.Errorf("%s: the receiver that did not ask got %v", id, h)
		}
	}

	// Turned on by a PATCH, the other endpoint gets it from then on.
	var ep aviso.Endpoint
	mustCall(t, n, 200, "PATCH", "/v1/tenants/acme/endpoints/"+offID, map[string]any{"send_traceparent": true}, &ep)
	if !ep.SendTraceparent {
		t.Fatalf("PATCH send_traceparent true: %+v", ep)
	}
	publishTraced(t, n, "/v1/tenants/acme/events", map[string]any{"id": "evt_after", "type": "invoice.created", "data": data},
		map[string]string{"traceparent": callerParent})
	if h := off.headers(t, "evt_after"); h.Get("Traceparent") != callerParent || len(h["Tracestate"]) != 0 {
		t.Errorf("after the PATCH: %v, want the caller's traceparent alone", h)
	}
}
