package outbox_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/outbox"
)

// metric returns the value of the /metrics sample name{source="…"} (-1 when absent).
func metric(t *testing.T, url, name, source string) float64 {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + name + `\{source="` + regexp.QuoteMeta(source) + `"\} (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOutboxMetrics: /metrics reports each source's lag, relayed rows and reachability, moving
// as rows are relayed.
func TestOutboxMetrics(t *testing.T) {
	src := openSource(t, "postgres", false)
	srv := startNode(t, src.url)
	apiCall(t, srv, rootKey, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME SA"}, nil)
	name := srv.Outbox.Sources()[0]
	if got := metric(t, srv.URL(), "aviso_outbox_source_up", name); got != 1 {
		t.Fatalf("aviso_outbox_source_up = %v, want 1", got)
	}
	before := metric(t, srv.URL(), "aviso_outbox_relayed_total", name)
	src.write(t, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: map[string]any{"id": "F-1", "total": 1}},
		outbox.Event{TenantID: "acme", Type: "invoice.created", Data: map[string]any{"id": "F-2", "total": 2}})
	waitFor(t, 15*time.Second, "two rows relayed", func() bool {
		return metric(t, srv.URL(), "aviso_outbox_relayed_total", name) == before+2
	})
	if lag := metric(t, srv.URL(), "aviso_outbox_lag_rows", name); lag != 0 {
		t.Errorf("aviso_outbox_lag_rows = %v after the rows were relayed, want 0", lag)
	}
	if lag := metric(t, srv.URL(), "aviso_outbox_lag_seconds", name); lag != 0 {
		t.Errorf("aviso_outbox_lag_seconds = %v after the rows were relayed, want 0", lag)
	}
}
