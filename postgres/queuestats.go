package postgres

import (
	"context"
	"time"

	"github.com/aviso-dev/aviso"
)

// QueueStats counts the pending deliveries of enabled endpoints through the partial index of
// pending deliveries, and the disabled endpoints, in one statement.
func (s *Store) QueueStats(ctx context.Context, now time.Time) (aviso.QueueStats, error) {
	var st aviso.QueueStats
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE d.next_attempt_at <= $1),
			count(*) FILTER (WHERE d.next_attempt_at > $1),
			min(d.next_attempt_at) FILTER (WHERE d.next_attempt_at <= $1),
			(SELECT count(*) FROM endpoints WHERE disabled)
		FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND NOT e.disabled`, now).Scan(&st.Due, &st.Scheduled, &oldest, &st.DisabledEndpoints)
	if err != nil {
		return st, dbError("queue stats", "delivery", err)
	}
	if oldest != nil {
		t := oldest.UTC()
		st.OldestDue = &t
	}
	return st, nil
}
