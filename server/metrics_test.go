package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/metrics"
	"github.com/aviso-dev/aviso/server"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads GET /metrics and returns each sample as "name{label="v",…}" → value, labels
// sorted by name as the exposition writes them.
func scrape(t *testing.T, url, token string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// TestMetrics scrapes /metrics before and after real deliveries: one endpoint answers 204, one
// 500 with a one-retry schedule, so the counters of published events, attempts by outcome and
// status class, the duration histogram and the queue gauges must move by exactly what happened.
func TestMetrics(t *testing.T) {
	n := startNode(t, t.TempDir(), 10*time.Millisecond)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ok.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Webhook-Id") == "evt_m3" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent) // the subscription handshake
	}))
	defer broken.Close()

	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
	var good, bad aviso.Endpoint
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": ok.URL + "/ok", "event_types": []string{"invoice.created"}}, &good)
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": broken.URL + "/broken", "event_types": []string{"invoice.paid"}}, &bad)

	before := scrape(t, n.URL(), "")
	for _, name := range []string{"go_goroutines", "aviso_deliveries_queued{state=\"due\"}", "aviso_endpoints_disabled", "aviso_delivery_oldest_due_age_seconds"} {
		if _, found := before[name]; !found {
			t.Errorf("before: %s missing", name)
		}
	}

	var ev aviso.Event
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"id": "evt_m1", "type": "invoice.created", "data": map[string]any{"id": "F-1", "total": 1}}, &ev)
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"id": "evt_m2", "type": "invoice.created", "data": map[string]any{"id": "F-2", "total": 2}}, nil)
	mustCall(t, n, 200, "POST", "/v1/tenants/acme/events", map[string]any{"id": "evt_m2", "type": "invoice.created", "data": map[string]any{"id": "F-2", "total": 2}}, nil)
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"id": "evt_m3", "type": "invoice.paid", "data": map[string]any{"id": "F-3", "total": 3}}, nil)
	for _, id := range []string{"evt_m1", "evt_m2"} {
		d := eventDeliveries(t, n, "acme", id)
		waitDelivery(t, n, "acme", d[0].ID, aviso.StatusSucceeded, 1)
	}
	d := eventDeliveries(t, n, "acme", "evt_m3")
	waitDelivery(t, n, "acme", d[0].ID, aviso.StatusFailed, 2)

	after := scrape(t, n.URL(), "")
	diff := func(key string) float64 { return after[key] - before[key] }
	for key, want := range map[string]float64{
		`aviso_events_published_total{outcome="created"}`:                                3,
		`aviso_events_published_total{outcome="duplicate"}`:                              1,
		`aviso_delivery_attempts_total{outcome="succeeded",status_class="2xx"}`:          2,
		`aviso_delivery_attempts_total{outcome="retry",status_class="5xx"}`:              1,
		`aviso_delivery_attempts_total{outcome="failed",status_class="5xx"}`:             1,
		`aviso_delivery_attempt_duration_seconds{status_class="2xx"}_count`:              2,
		`aviso_delivery_attempt_duration_seconds{status_class="5xx"}_count`:              2,
		`aviso_deliveries_claimed_total`:                                                 4,
		`aviso_http_requests_total{code="202",route="POST /v1/tenants/{tenant}/events"}`: 3,
		`aviso_http_requests_total{code="200",route="POST /v1/tenants/{tenant}/events"}`: 1,
	} {
		if got := diff(key); got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	for _, key := range []string{`aviso_deliveries_queued{state="due"}`, `aviso_deliveries_queued{state="scheduled"}`, `aviso_delivery_attempts_in_flight`} {
		if after[key] != 0 {
			t.Errorf("%s = %v after every delivery finished, want 0", key, after[key])
		}
	}
	if diff("aviso_store_writer_busy_seconds_total") <= 0 || diff("aviso_store_writer_transactions_total") < 1 {
		t.Errorf("the SQLite writer's busy time and transactions did not move: %v, %v",
			diff("aviso_store_writer_busy_seconds_total"), diff("aviso_store_writer_transactions_total"))
	}
	// Every series the sample Grafana dashboard queries exists (the writer's busy time only on
	// a store with a single writer, the outbox's only with --outbox: outbox/metrics_test.go).
	dash, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	_, single := n.Store.(metrics.WriterStatser)
	for _, name := range regexp.MustCompile(`aviso_[a-z_]+`).FindAllString(string(dash), -1) {
		name = strings.TrimSuffix(name, "_bucket")
		if name == "aviso_store_writer_busy_seconds_total" && !single || strings.HasPrefix(name, "aviso_outbox_") {
			continue
		}
		found := false
		for key := range after {
			found = found || key == name || strings.HasPrefix(key, name+"{")
		}
		if !found {
			t.Errorf("docs/grafana-dashboard.json queries %s, which /metrics does not serve", name)
		}
	}
	for key := range after {
		if strings.Contains(key, "acme") || strings.Contains(key, good.ID) || strings.Contains(key, bad.ID) {
			t.Errorf("a series names a tenant or endpoint: %s", key)
		}
	}
}

// TestMetricsToken: with --metrics-token a scrape needs the token.
func TestMetricsToken(t *testing.T) {
	srv := runNode(t, server.Config{RootKey: rootKey, MetricsToken: "s3cret"})

	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret"} {
		req, _ := http.NewRequest("GET", srv.URL()+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", auth, res.StatusCode)
		}
	}
	if m := scrape(t, srv.URL(), "s3cret"); m[`aviso_deliveries_queued{state="due"}`] != 0 {
		t.Errorf("a new node has due deliveries: %v", m)
	}
}
