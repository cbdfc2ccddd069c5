// Package metrics exposes a node's Prometheus metrics at GET /metrics. Everything is registered
// on the registry a Metrics is given; nothing is global. No label carries a tenant or endpoint
// ID: every label has a small fixed set of values, so a node with a million endpoints has the
// same number of series as one with one.
//
// Three sources feed it: the delivery engine reports each attempt (Metrics is a
// dispatch.Observer), the store wrapper from WrapStore counts the events published, and the
// gauges read the store (Store.QueueStats), the engine's counters and, where the store has a
// single writer, its writer's busy time, at each scrape. A component with metrics of its own
// (the outbox relay, say) registers them on Registry().
//
// The series (README "Metrics"; a Grafana dashboard in docs/grafana-dashboard.json):
//
//	aviso_events_published_total{outcome="created|duplicate"}
//	aviso_delivery_attempts_total{outcome="succeeded|retry|failed", status_class="2xx|3xx|4xx|5xx|none"}
//	aviso_delivery_attempt_duration_seconds{status_class}      histogram
//	aviso_deliveries_claimed_total, aviso_deliveries_released_total
//	aviso_delivery_attempts_in_flight                          this node
//	aviso_deliveries_queued{state="due|scheduled"}             the whole store
//	aviso_delivery_oldest_due_age_seconds                      0 when nothing is due
//	aviso_endpoints_disabled
//	aviso_store_writer_busy_seconds_total                      SQLite: rate() is the busy ratio
//	aviso_store_writer_commit_seconds_total, aviso_store_writer_transactions_total
//	aviso_http_requests_total{route, code}                     route is the matched pattern
//	aviso_outbox_lag_seconds{source}, aviso_outbox_lag_rows{source}, aviso_outbox_rejected_rows{source},
//	aviso_outbox_relayed_total{source}, aviso_outbox_source_up{source}   with --outbox
//	aviso_metrics_store_errors_total                           scrapes whose store reads failed
//
// plus the Go runtime and process collectors.
package metrics

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures Metrics.
type Config struct {
	// Registry receives every metric. Default: a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Store is read at each scrape for the queue gauges. Optional.
	Store aviso.Store
	// DispatcherStats returns the engine's counters, read at each scrape. Optional.
	DispatcherStats func() dispatch.Stats
	// OutboxStatus returns the outbox relay's status per source, read at each scrape; it may
	// return nil when the node relays none. Optional.
	OutboxStatus func(ctx context.Context) ([]outbox.Status, error)
	// Token, when set, is the bearer token GET /metrics requires. Default: none.
	Token string
	// StoreTimeout bounds the store reads of one scrape. Default: 5 seconds.
	StoreTimeout time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// WriterStatser is implemented by stores that write through a single connection (SQLite). The
// rate of the writer's busy time is its busy ratio, the first sign that a node is at its write
// ceiling.
type WriterStatser interface {
	WriterStats() sqlite.WriterStats
}

// Metrics holds a node's collectors. Create it with New.
type Metrics struct {
	reg       *prometheus.Registry
	token     string
	published *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	requests  *prometheus.CounterVec
}

// New registers the node's metrics on cfg.Registry.
func New(cfg Config) (*Metrics, error) {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Metrics{
		reg:   cfg.Registry,
		token: cfg.Token,
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aviso_events_published_total",
			Help: "Events published: created (new, fanned out to deliveries) or duplicate (an id published before).",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aviso_delivery_attempts_total",
			Help: "Delivery attempts by outcome (succeeded, retry scheduled, failed for good) and response status class (none: no response).",
		}, []string{"outcome", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aviso_delivery_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, from the request to the end of the response body, by response status class.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"status_class"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aviso_http_requests_total",
			Help: "HTTP requests served, by matched route pattern and status code.",
		}, []string{"route", "code"}),
	}
	for _, o := range []string{"created", "duplicate"} {
		m.published.WithLabelValues(o)
	}
	for _, o := range []string{"succeeded", "retry", "failed"} {
		for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "none"} {
			m.attempts.WithLabelValues(o, c)
		}
	}
	cs := []prometheus.Collector{m.published, m.attempts, m.duration, m.requests}
	if stats := cfg.DispatcherStats; stats != nil {
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "aviso_deliveries_claimed_total",
				Help: "Deliveries this node claimed from the store."}, func() float64 { return float64(stats().Claimed) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "aviso_deliveries_released_total",
				Help: "Claims this node gave back unattempted (shutdown, waited too long, endpoint gone or disabled)."},
				func() float64 { return float64(stats().Released) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aviso_delivery_attempts_in_flight",
				Help: "Attempts under way on this node."}, func() float64 { return float64(stats().InFlight) }),
		)
	}
	if cfg.Store != nil {
		cs = append(cs, newStoreCollector(cfg.Store, cfg.StoreTimeout, cfg.Now))
		if w, ok := cfg.Store.(WriterStatser); ok {
			cs = append(cs,
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "aviso_store_writer_busy_seconds_total",
					Help: "Time the store's single writer spent running transactions, commits included; rate() of it is the writer's busy ratio."},
					func() float64 { return w.WriterStats().Busy.Seconds() }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "aviso_store_writer_commit_seconds_total",
					Help: "The part of the writer's busy time spent committing (WAL write, sync, checkpoints)."},
					func() float64 { return w.WriterStats().Commit.Seconds() }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "aviso_store_writer_transactions_total",
					Help: "Transactions the writer ran, each a group of write calls."},
					func() float64 { return float64(w.WriterStats().Groups) }),
			)
		}
	}
	if cfg.OutboxStatus != nil {
		cs = append(cs, newOutboxCollector(cfg.OutboxStatus, cfg.StoreTimeout))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Registry is where the metrics live; other components register theirs on it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format, behind the bearer token if one is
// configured.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	if m.token == "" {
		return h
	}
	want := []byte("Bearer " + m.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need \"Authorization: Bearer <token>\" (the server's --metrics-token)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Attempt implements dispatch.Observer: it counts the attempt and its duration.
func (m *Metrics) Attempt(ctx context.Context, _ *aviso.Claim) (context.Context, func(*aviso.Attempt, aviso.Completion)) {
	return ctx, m.observe
}

func (m *Metrics) observe(a *aviso.Attempt, c aviso.Completion) {
	class := StatusClass(a.ResponseStatus)
	outcome := "retry"
	switch c.Status {
	case aviso.StatusSucceeded:
		outcome = "succeeded"
	case aviso.StatusFailed:
		outcome = "failed"
	}
	m.attempts.WithLabelValues(outcome, class).Inc()
	m.duration.WithLabelValues(class).Observe(float64(a.DurationMS) / 1000)
}

// StatusClass is the label of an HTTP status: "2xx" … "5xx", or "none" when there was no
// response (0) or a status outside 100–599.
func StatusClass(code int) string {
	if code < 100 || code > 599 {
		return "none"
	}
	return strconv.Itoa(code/100) + "xx"
}

// Middleware counts the requests next serves, by the pattern of the route that matched them
// (http.Request.Pattern, set by the innermost ServeMux) and status code.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	})
}

// statusWriter records the status code written. It passes Flush on, and Unwrap lets
// http.ResponseController reach the connection's other features.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK // flushing commits the header
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WrapStore returns s counting the events its InsertEvents stores (created) and finds
// already stored (duplicate). Every other method is s's own.
func (m *Metrics) WrapStore(s aviso.Store) aviso.Store { return &countingStore{Store: s, m: m} }

type countingStore struct {
	aviso.Store
	m *Metrics
}

func (s *countingStore) InsertEvents(ctx context.Context, events []aviso.NewEvent) ([]aviso.InsertedEvent, error) {
	res, err := s.Store.InsertEvents(ctx, events)
	if err == nil {
		created := 0
		for _, r := range res {
			if r.Created {
				created++
			}
		}
		s.m.published.WithLabelValues("created").Add(float64(created))
		s.m.published.WithLabelValues("duplicate").Add(float64(len(res) - created))
	}
	return res, err
}

// storeCollector reads Store.QueueStats at each scrape.
type storeCollector struct {
	store   aviso.Store
	timeout time.Duration
	now     func() time.Time
	queued  *prometheus.Desc
	oldest  *prometheus.Desc
	disab   *prometheus.Desc
	errs    prometheus.Counter
}

func newStoreCollector(s aviso.Store, timeout time.Duration, now func() time.Time) *storeCollector {
	return &storeCollector{
		store: s, timeout: timeout, now: now,
		queued: prometheus.NewDesc("aviso_deliveries_queued",
			"Pending deliveries of enabled endpoints in the store: due now, or scheduled for later (retries waiting).", []string{"state"}, nil),
		oldest: prometheus.NewDesc("aviso_delivery_oldest_due_age_seconds",
			"How long the longest-waiting due delivery has been due; 0 when none is.", nil, nil),
		disab: prometheus.NewDesc("aviso_endpoints_disabled", "Endpoints disabled, by hand or after consecutive failures.", nil, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: "aviso_metrics_store_errors_total",
			Help: "Scrapes whose store reads failed (their store gauges were left out)."}),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queued
	ch <- c.oldest
	ch <- c.disab
	c.errs.Describe(ch)
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errs.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := c.now()
	st, err := c.store.QueueStats(ctx, now)
	if err != nil {
		c.errs.Inc()
		return
	}
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Due), "due")
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Scheduled), "scheduled")
	age := 0.0
	if st.OldestDue != nil {
		age = max(0, now.Sub(*st.OldestDue).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(c.disab, prometheus.GaugeValue, float64(st.DisabledEndpoints))
}

// outboxCollector reads the outbox relay's status at each scrape. Sources are the node's
// configured outbox databases (named without credentials): a small fixed set.
type outboxCollector struct {
	status                          func(context.Context) ([]outbox.Status, error)
	timeout                         time.Duration
	lag, lagRows, rejected, relayed *prometheus.Desc
	up                              *prometheus.Desc
}

func newOutboxCollector(status func(context.Context) ([]outbox.Status, error), timeout time.Duration) *outboxCollector {
	l := []string{"source"}
	return &outboxCollector{status: status, timeout: timeout,
		lag:      prometheus.NewDesc("aviso_outbox_lag_seconds", "Age of the oldest row waiting in the source's aviso_outbox table; 0 when none waits.", l, nil),
		lagRows:  prometheus.NewDesc("aviso_outbox_lag_rows", "Rows waiting in the source's aviso_outbox table.", l, nil),
		rejected: prometheus.NewDesc("aviso_outbox_rejected_rows", "Rows the relay moved aside to aviso_outbox_rejected.", l, nil),
		relayed:  prometheus.NewDesc("aviso_outbox_relayed_total", "Rows this node relayed from the source since it started.", l, nil),
		up:       prometheus.NewDesc("aviso_outbox_source_up", "1 when the source answered the status read, 0 when it did not (its other series are then left out).", l, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.lagRows, c.rejected, c.relayed, c.up} {
		ch <- d
	}
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	sts, err := c.status(ctx)
	if err != nil {
		return
	}
	for _, st := range sts {
		up := 0.0
		if st.Reachable {
			up = 1
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.LagSeconds, st.Source)
			ch <- prometheus.MustNewConstMetric(c.lagRows, prometheus.GaugeValue, float64(st.LagRows), st.Source)
			ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.GaugeValue, float64(st.Rejected), st.Source)
		}
		ch <- prometheus.MustNewConstMetric(c.relayed, prometheus.CounterValue, float64(st.Relayed), st.Source)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, st.Source)
	}
}
