package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/aviso-dev/aviso"
)

// EndpointStats counts, per endpoint of the tenant with attempts since since, the attempts that
// succeeded (2xx) and failed, and reports the newest one.
func (s *Store) EndpointStats(ctx context.Context, tenantID string, since time.Time) (map[string]aviso.EndpointStats, error) {
	out := map[string]aviso.EndpointStats{}
	err := s.read(ctx, "endpoint stats", func(tx *sql.Tx) error {
		// With a single max() aggregate SQLite takes the bare columns (response_status, error)
		// from the row holding the maximum: the newest attempt.
		// The tenant's attempts are read endpoint by endpoint, through endpoints_tenant and
		// attempts_endpoint_at: an attempt's endpoint is one of its tenant's.
		rows, err := tx.QueryContext(ctx, `SELECT a.endpoint_id,
				sum(a.response_status BETWEEN 200 AND 299), sum(a.response_status NOT BETWEEN 200 AND 299),
				max(a.at), a.response_status, a.error
			FROM endpoints e JOIN attempts a ON a.endpoint_id = e.id
			WHERE e.tenant_id = ?1 AND a.tenant_id = ?1 AND a.at >= ?2 GROUP BY a.endpoint_id`, tenantID, micros(since))
		if err != nil {
			return err
		}
		_, err = collect(rows, func(sc scanner) (st aviso.EndpointStats, err error) {
			var id string
			err = sc.Scan(&id, &st.Succeeded, &st.Failed, optTimeCol{&st.LastAttemptAt}, &st.LastResponseStatus, &st.LastError)
			out[id] = st
			return st, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AttemptHistogram counts a tenant's attempts in [Since, Until) in buckets of Bucket, oldest
// first, every bucket present; the last bucket may be partial.
func (s *Store) AttemptHistogram(ctx context.Context, p aviso.HistogramParams) ([]aviso.HistogramBucket, error) {
	out, err := p.Buckets()
	if err != nil || len(out) == 0 {
		return out, err
	}
	// Without an endpoint the tenant's attempts are read endpoint by endpoint, as in EndpointStats.
	from, cond := `endpoints e JOIN attempts a ON a.endpoint_id = e.id`, `e.tenant_id = ?1`
	if p.EndpointID != "" {
		from, cond = `attempts a`, `a.endpoint_id = ?2`
	}
	err = s.read(ctx, "attempt histogram", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT (a.at - ?3) / ?5 AS bucket,
				sum(a.response_status BETWEEN 200 AND 299), sum(a.response_status NOT BETWEEN 200 AND 299)
			FROM `+from+` WHERE a.tenant_id = ?1 AND `+cond+` AND a.at >= ?3 AND a.at < ?4 GROUP BY bucket`,
			p.TenantID, p.EndpointID, micros(p.Since), micros(p.Until), p.Bucket.Microseconds())
		if err != nil {
			return err
		}
		_, err = collect(rows, func(sc scanner) (b int64, err error) {
			var ok, failed int
			if err = sc.Scan(&b, &ok, &failed); err == nil && b >= 0 && b < int64(len(out)) {
				out[b].Succeeded, out[b].Failed = ok, failed
			}
			return b, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Prune deletes up to limit of the oldest events created before before, with (by cascade) their
// deliveries and attempts. It walks events in publication order (seq, the table's own key, so no
// index is written for pruning's sake) and stops at the first event not created before before.
// Events are stamped by the publishing node's clock in publication order; should that clock have
// stepped back, an older event behind a newer one waits until the newer is old enough too, so
// pruning may come late, never early.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := s.write(ctx, "prune", func(ctx context.Context, tx *sql.Tx) error {
		if err := keepSeqs(ctx, tx); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq IN (
			SELECT seq FROM events WHERE seq < coalesce(
				(SELECT seq FROM (SELECT seq, created_at FROM events ORDER BY seq LIMIT ?2) WHERE created_at >= ?1 ORDER BY seq LIMIT 1),
				9223372036854775807)
			ORDER BY seq LIMIT ?2)`, micros(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// AttemptLatency reads the window's count, then the two nearest-rank durations through
// attempts_endpoint_at, in one read transaction.
func (s *Store) AttemptLatency(ctx context.Context, p aviso.LatencyParams) (aviso.Latency, error) {
	var l aviso.Latency
	err := s.read(ctx, "attempt latency", func(tx *sql.Tx) error {
		const where = ` FROM attempts WHERE endpoint_id = ?1 AND tenant_id = ?2 AND at >= ?3 AND at < ?4`
		args := []any{p.EndpointID, p.TenantID, micros(p.Since), micros(p.Until)}
		if err := tx.QueryRowContext(ctx, `SELECT count(*)`+where, args...).Scan(&l.Count); err != nil {
			return err
		}
		if l.Count == 0 {
			return nil
		}
		for _, q := range []struct {
			pct int
			dst *int64
		}{{50, &l.P50MS}, {95, &l.P95MS}} {
			rank := (q.pct*l.Count + 99) / 100 // ceil(pct% of count), 1-based
			if err := tx.QueryRowContext(ctx, `SELECT duration_ms`+where+` ORDER BY duration_ms LIMIT 1 OFFSET ?5`,
				append(args, rank-1)...).Scan(q.dst); err != nil {
				return err
			}
		}
		return nil
	})
	return l, err
}
