package dispatch_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
)

// BenchmarkDispatch measures end-to-end delivery on SQLite (synchronous=NORMAL, as a server
// tuned for throughput runs it): each iteration publishes 250 events
// to 4 endpoints of a local receiver (1,000 deliveries) and waits until all of them succeeded.
func BenchmarkDispatch(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "aviso.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ten := newTenant(b, s)
	rc := newReceiver(b, nil)
	var eps []*aviso.Endpoint
	for range 4 {
		eps = append(eps, newEndpoint(b, s, ten.ID, rc.srv.URL, nil))
	}
	r := start(b, config(s))
	var total int64
	for b.Loop() {
		publish(b, s, ten.ID, 250, time.Now(), eps...)
		total += 1000
		waitFor(b, "the deliveries to succeed", func() bool { return r.d.Stats().Succeeded >= total })
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "deliveries/s")
	r.stop(b)
	st := r.d.Stats()
	b.ReportMetric(float64(total)/float64(max(st.CompletionBatches, 1)), "completions/batch")
	if st.Failed != 0 {
		b.Errorf("%d attempts failed", st.Failed)
	}
}

// BenchmarkIsolation measures a healthy endpoint's deliveries on SQLite (synchronous=FULL, the
// server's default) alone and beside an endpoint of the same tenant that accepts connections and
// never answers (1 s timeout, never disabled), as the bench's isolation scenario does: each
// iteration publishes 500 events to the endpoints and waits until the healthy endpoint's
// deliveries succeeded. The dead endpoint's backlog grows meanwhile.
func BenchmarkIsolation(b *testing.B) {
	for _, bc := range []struct {
		name string
		dead bool
	}{{"solo", false}, {"beside_dead", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "aviso.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ten := newTenant(b, s)
			healthy := newEndpoint(b, s, ten.ID, newReceiver(b, nil).srv.URL, nil)
			eps := []*aviso.Endpoint{healthy}
			var gates []func()
			if bc.dead {
				hang, open := gate(b)
				gates = append(gates, open)
				dead := newReceiver(b, func(http.ResponseWriter, *http.Request, int) { <-hang })
				eps = append(eps, newEndpoint(b, s, ten.ID, dead.srv.URL, func(e *aviso.Endpoint) { e.TimeoutSeconds = 1 }))
			}
			cfg := config(s)
			cfg.DisableAfter = -1
			r := start(b, cfg, gates...)
			var total int64
			for b.Loop() {
				publish(b, s, ten.ID, 500, time.Now(), eps...)
				total += 500
				waitFor(b, "the healthy deliveries to succeed", func() bool { return r.d.Stats().Succeeded >= total })
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
