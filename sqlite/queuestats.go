package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/aviso-dev/aviso"
)

// QueueStats counts the pending deliveries of enabled endpoints (through deliveries_due), in one
// read.
func (s *Store) QueueStats(ctx context.Context, now time.Time) (aviso.QueueStats, error) {
	var st aviso.QueueStats
	err := s.read(ctx, "queue stats", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT
				coalesce(sum(q.next_attempt_at <= ?1), 0), coalesce(sum(q.next_attempt_at > ?1), 0),
				min(CASE WHEN q.next_attempt_at <= ?1 THEN q.next_attempt_at END),
				(SELECT count(*) FROM endpoints WHERE disabled = 1)
			FROM deliveries q INDEXED BY deliveries_due JOIN endpoints e ON e.id = q.endpoint_id
			WHERE q.status = 'pending' AND e.disabled = 0`, micros(now)).Scan(&st.Due, &st.Scheduled, optTimeCol{&st.OldestDue}, &st.DisabledEndpoints)
	})
	return st, err
}
