package dispatch_test

import (
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
