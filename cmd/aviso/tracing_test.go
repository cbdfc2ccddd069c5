package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
)

// servingAddr returns the address of the "aviso serving" JSON log record, or "".
func servingAddr(t *testing.T, logs *testenv.LogBuffer) string {
	for _, r := range logs.Records(t) {
		if addr, ok := r["addr"].(string); ok && r["msg"] == "aviso serving" {
			return addr
		}
	}
	return ""
}

// TestServeExportsTraces: `aviso serve` with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP
// HTTP receiver (here a loopback one counting what it gets) exports the spans of a publish, at
// the latest when it stops.
func TestServeExportsTraces(t *testing.T) {
	var posts, spansBytes atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
			spansBytes.Add(int64(len(body)))
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse: all accepted
	}))
	defer collector.Close()
	// The SDK reads the OTEL_* variables from the process environment.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "aviso-test")
	t.Setenv("AVISO_LOG_FORMAT", "json")
	const key = "avk_tracing_test_root"
	t.Setenv("AVISO_ROOT_KEY", key)

	logs := &testenv.LogBuffer{}
	m := NewMain(io.Discard, logs, os.Getenv)
	if err := m.ParseFlags([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	addr := ""
	for addr == "" {
		if time.Now().After(deadline) {
			t.Fatal("the node never logged that it serves")
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a condition with a deadline
		addr = servingAddr(t, logs)
	}
	call := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
	}
	call("/v1/tenants", `{"id":"acme","name":"ACME"}`)
	call("/v1/tenants/acme/events", `{"type":"invoice.created","data":{"id":"FV-1","total":10}}`)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if posts.Load() == 0 || spansBytes.Load() == 0 {
		t.Fatalf("the OTLP receiver got %d POSTs to /v1/traces (%d bytes), want spans", posts.Load(), spansBytes.Load())
	}
}
