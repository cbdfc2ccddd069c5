package postgres

import (
	"context"
	"time"

	"github.com/aviso-dev/aviso"
)

// EndpointStats counts, per endpoint of the tenant with attempts since since, the attempts that
// succeeded (2xx) and failed, and reports the newest one.
func (s *Store) EndpointStats(ctx context.Context, tenantID string, since time.Time) (map[string]aviso.EndpointStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.endpoint_id,
			count(*) FILTER (WHERE a.response_status BETWEEN 200 AND 299),
			count(*) FILTER (WHERE a.response_status NOT BETWEEN 200 AND 299),
			(array_agg(a.at ORDER BY a.at DESC, a.id DESC))[1],
			(array_agg(a.response_status ORDER BY a.at DESC, a.id DESC))[1],
			(array_agg(a.error ORDER BY a.at DESC, a.id DESC))[1]
		FROM attempts a
		WHERE a.tenant_id = $1 AND a.at >= $2
		GROUP BY a.endpoint_id`, tenantID, since)
	if err != nil {
		return nil, dbError("endpoint stats", "endpoint", err)
	}
	defer rows.Close()
	out := map[string]aviso.EndpointStats{}
	for rows.Next() {
		var id string
		var st aviso.EndpointStats
		var last time.Time
		if err := rows.Scan(&id, &st.Succeeded, &st.Failed, &last, &st.LastResponseStatus, &st.LastError); err != nil {
			return nil, dbError("endpoint stats", "endpoint", err)
		}
		last = last.UTC()
		st.LastAttemptAt = &last
		out[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("endpoint stats", "endpoint", err)
	}
	return out, nil
}

// AttemptHistogram counts a tenant's attempts with Since ≤ At < Until in buckets of Bucket from
// Since, every bucket present, the last one possibly partial.
func (s *Store) AttemptHistogram(ctx context.Context, p aviso.HistogramParams) ([]aviso.HistogramBucket, error) {
	out, err := p.Buckets()
	if err != nil || len(out) == 0 {
		return out, err
	}
	// Bucket index from microseconds since Since; PostgreSQL keeps microseconds.
	rows, err := s.pool.Query(ctx, `SELECT
			floor(extract(epoch FROM (a.at - $3::timestamptz)) * 1000000 / $5)::bigint AS b,
			count(*) FILTER (WHERE a.response_status BETWEEN 200 AND 299),
			count(*) FILTER (WHERE a.response_status NOT BETWEEN 200 AND 299)
		FROM attempts a
		WHERE a.tenant_id = $1 AND ($2 = '' OR a.endpoint_id = $2) AND a.at >= $3 AND a.at < $4
		GROUP BY b`, p.TenantID, p.EndpointID, p.Since, p.Until, p.Bucket.Microseconds())
	if err != nil {
		return nil, dbError("attempt histogram", "attempt", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		var ok, failed int
		if err := rows.Scan(&b, &ok, &failed); err != nil {
			return nil, dbError("attempt histogram", "attempt", err)
		}
		if b >= 0 && b < int64(len(out)) {
			out[b].Succeeded += ok
			out[b].Failed += failed
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("attempt histogram", "attempt", err)
	}
	return out, nil
}

// AttemptLatency computes the nearest-rank percentiles with percentile_disc.
func (s *Store) AttemptLatency(ctx context.Context, p aviso.LatencyParams) (aviso.Latency, error) {
	var l aviso.Latency
	var p50, p95 *int64
	err := s.pool.QueryRow(ctx, `SELECT count(*),
			percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms),
			percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms)
		FROM attempts WHERE endpoint_id = $1 AND tenant_id = $2 AND at >= $3 AND at < $4`,
		p.EndpointID, p.TenantID, p.Since, p.Until).Scan(&l.Count, &p50, &p95)
	if err != nil {
		return aviso.Latency{}, dbError("attempt latency", "attempt", err)
	}
	if p50 != nil && p95 != nil {
		l.P50MS, l.P95MS = *p50, *p95
	}
	return l, nil
}
