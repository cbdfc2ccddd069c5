package outbox_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/outbox"
)

// BenchmarkRelay measures the relay draining a pre-filled PostgreSQL or MariaDB outbox into an
// SQLite store with one endpoint-less tenant: b.N rows, reported as rows/s. aviso bench's outbox
// scenario measures the whole node, deliveries included.
func BenchmarkRelay(b *testing.B) {
	for _, kind := range []string{"postgres", "mariadb"} {
		b.Run(kind, func(b *testing.B) {
			src := openSource(b, kind, false)
			svc := newService(b, nil)
			total := max(b.N, 1000)
			for lo := 0; lo < total; lo += 1000 {
				var values []string
				for i := lo; i < min(lo+1000, total); i++ {
					values = append(values, fmt.Sprintf("('acme', 'invoice.created', '%s')", invoice(i)))
				}
				if _, err := src.db.Exec("INSERT INTO aviso_outbox (tenant_id, type, data) VALUES " + strings.Join(values, ", ")); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			r := startRelay(b, outbox.Config{Sources: []string{src.url}, Service: svc})
			for {
				if st, _ := r.Status(context.Background(), root); st[0].Relayed >= int64(total) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
