package dispatch_test

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// BenchmarkDispatch measures end-to-end delivery on SQLite: each iteration publishes 250 events
// to 4 endpoints of a local receiver (1,000 deliveries) and waits until all of them succeeded.
func BenchmarkDispatch(b *testing.B) {
	s := sqliteBackend.open(b, sqliteBackend.newKey(b))
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
	if st := r.d.Stats(); st.Failed != 0 {
		b.Errorf("%d attempts failed", st.Failed)
	}
}
