package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/aviso-dev/aviso"
)

// QueueStats counts the pending rows of enabled endpoints through deliveries_due, and adds the
// deferred deliveries queued or claimed in memory; spilled deliveries are not counted until
// they are loaded or written (the spill's start still counts for OldestDue).
func (s *Store) QueueStats(ctx context.Context, now time.Time) (aviso.QueueStats, error) {
	var st aviso.QueueStats
	var oldest sql.NullInt64
	at := micros(now)
	err := s.read(ctx, "queue stats", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT
				coalesce(sum(d.next_attempt_at <= ?1), 0), coalesce(sum(d.next_attempt_at > ?1), 0),
				min(CASE WHEN d.next_attempt_at <= ?1 THEN d.next_attempt_at END),
				(SELECT count(*) FROM endpoints WHERE disabled = 1)
			FROM deliveries d INDEXED BY deliveries_due JOIN endpoints e ON e.id = d.endpoint_id
			WHERE d.status = 'pending' AND e.disabled = 0`, at).Scan(&st.Due, &st.Scheduled, &oldest, &st.DisabledEndpoints)
	})
	if err != nil {
		return st, err
	}
	due, later, first, ok := s.deferred.queueStats(at)
	st.Due += due
	st.Scheduled += later
	if ok && (!oldest.Valid || first < oldest.Int64) {
		oldest = sql.NullInt64{Int64: first, Valid: true}
	}
	if first, ok := s.deferred.spillDue(); ok && first <= at && (!oldest.Valid || first < oldest.Int64) {
		oldest = sql.NullInt64{Int64: first, Valid: true}
	}
	if oldest.Valid {
		t := fromMicros(oldest.Int64)
		st.OldestDue = &t
	}
	return st, nil
}

// queueStats counts the deferred deliveries queued or claimed, due by now and later, and
// returns the earliest due time among those due.
func (s *deferredSet) queueStats(now int64) (due, later, oldest int64, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.byID {
		if d.state != deferQueued && d.state != deferClaimed {
			continue
		}
		if d.next > now {
			later++
			continue
		}
		due++
		if !found || d.next < oldest {
			oldest, found = d.next, true
		}
	}
	return due, later, oldest, found
}
