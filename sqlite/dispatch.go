package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aviso-dev/aviso"
)

// ClaimDeliveries leases up to Limit due deliveries of enabled endpoints, oldest due first, in one
// UPDATE … RETURNING inside an IMMEDIATE transaction; see aviso.Store.
func (s *Store) ClaimDeliveries(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, error) {
	if p.Limit <= 0 {
		return []*aviso.Claim{}, nil
	}
	var claims []*aviso.Claim
	err := s.write(ctx, "claim deliveries", func(tx *sql.Tx) error {
		now := micros(p.Now)
		rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET lease_owner = ?1, lease_until = ?2
			WHERE id IN (
				SELECT c.id FROM deliveries c JOIN endpoints e ON e.id = c.endpoint_id
				WHERE c.status = 'pending' AND c.next_attempt_at <= ?3 AND e.disabled = 0
					AND (c.lease_until IS NULL OR c.lease_until <= ?3)
					AND c.endpoint_id NOT IN (SELECT value FROM json_each(?4))
				ORDER BY c.next_attempt_at, c.id LIMIT ?5)
			RETURNING `+deliveryReturning+`, event_seq`,
			p.Owner, micros(p.LeaseUntil), now, idList(p.ExcludeEndpoints), p.Limit)
		if err != nil {
			return err
		}
		type row struct {
			d   *aviso.Delivery
			seq int64
		}
		got, err := collect(rows, func(sc scanner) (row, error) {
			var r row
			var err error
			r.d, err = scanDelivery(sc, &r.seq)
			return r, err
		})
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return nil
		}
		// RETURNING gives no order: put the oldest due first again.
		slices.SortFunc(got, func(a, b row) int {
			return cmp.Or(a.d.NextAttemptAt.Compare(*b.d.NextAttemptAt), cmp.Compare(a.d.ID, b.d.ID))
		})
		var seqs, endpointIDs []string
		for _, r := range got {
			seqs = append(seqs, strconv.FormatInt(r.seq, 10))
			endpointIDs = append(endpointIDs, r.d.EndpointID)
		}
		rows, err = tx.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE seq IN (SELECT value FROM json_each(?))`, idList(seqs))
		if err != nil {
			return err
		}
		evs, err := collect(rows, scanSeqEvent)
		if err != nil {
			return err
		}
		bySeq := make(map[int64]*aviso.Event, len(evs))
		for _, e := range evs {
			bySeq[e.seq] = e.e
		}
		rows, err = tx.QueryContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`, idList(endpointIDs))
		if err != nil {
			return err
		}
		eps, err := collect(rows, scanEndpoint)
		if err != nil {
			return err
		}
		byID := make(map[string]*aviso.Endpoint, len(eps))
		for _, e := range eps {
			byID[e.ID] = e
		}
		claims = make([]*aviso.Claim, len(got))
		for i, r := range got {
			claims[i] = &aviso.Claim{Delivery: r.d, Event: bySeq[r.seq], Endpoint: byID[r.d.EndpointID]}
			if claims[i].Event == nil || claims[i].Endpoint == nil {
				return fmt.Errorf("delivery %s: its event or endpoint is missing", r.d.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if claims == nil {
		claims = []*aviso.Claim{}
	}
	return claims, nil
}

// CompleteDeliveries records attempts and their outcome in one transaction; see aviso.Store.
// Completions apply in order. A completion is recorded whoever holds the lease now: the attempt
// happened, and the at-least-once log keeps it.
func (s *Store) CompleteDeliveries(ctx context.Context, cs []aviso.Completion) error {
	if len(cs) == 0 {
		return nil
	}
	return s.write(ctx, "complete deliveries", func(tx *sql.Tx) error {
		find, err := tx.PrepareContext(ctx, `SELECT endpoint_id FROM deliveries WHERE id = ?`)
		if err != nil {
			return err
		}
		defer find.Close()
		insAttempt, err := tx.PrepareContext(ctx, `INSERT INTO attempts (`+attemptCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insAttempt.Close()
		update, err := tx.PrepareContext(ctx, `UPDATE deliveries SET status = ?, attempt_count = attempt_count + 1,
			round_attempts = round_attempts + 1, next_attempt_at = ?, last_response_status = ?, last_error = ?,
			lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer update.Close()
		succeeded, err := tx.PrepareContext(ctx, `UPDATE endpoints SET consecutive_failures = 0 WHERE id = ? RETURNING disabled`)
		if err != nil {
			return err
		}
		defer succeeded.Close()
		failed, err := tx.PrepareContext(ctx, `UPDATE endpoints SET consecutive_failures = consecutive_failures + 1
			WHERE id = ? RETURNING consecutive_failures, disabled`)
		if err != nil {
			return err
		}
		defer failed.Close()

		for _, c := range cs {
			a := c.Attempt
			var endpointID string
			switch err := find.QueryRowContext(ctx, a.DeliveryID).Scan(&endpointID); err {
			case nil:
			case sql.ErrNoRows:
				continue // deleted with its endpoint or event meanwhile
			default:
				return fmt.Errorf("delivery %s: %w", a.DeliveryID, err)
			}
			if _, err := insAttempt.ExecContext(ctx, a.ID, a.DeliveryID, a.TenantID, endpointID, a.EventID, micros(a.At), a.URL,
				mapText(a.RequestHeaders), a.ResponseStatus, a.ResponseBody, a.DurationMS, a.Error); err != nil {
				return fmt.Errorf("attempt %s: %w", a.ID, err)
			}
			var next *time.Time
			if c.Status == aviso.StatusPending {
				next = c.NextAttemptAt
			}
			if _, err := update.ExecContext(ctx, string(c.Status), microsPtr(next), a.ResponseStatus, a.Error, micros(a.At), a.DeliveryID); err != nil {
				return fmt.Errorf("delivery %s: %w", a.DeliveryID, err)
			}
			var failures int
			var disabled bool
			if c.Status == aviso.StatusSucceeded {
				err = succeeded.QueryRowContext(ctx, endpointID).Scan(&disabled)
			} else {
				err = failed.QueryRowContext(ctx, endpointID).Scan(&failures, &disabled)
			}
			if err != nil {
				return fmt.Errorf("endpoint %s: %w", endpointID, err)
			}
			if !disabled && c.DisableAfter > 0 && failures >= c.DisableAfter {
				if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE id = ?`,
					aviso.DisabledConsecutiveFailed, micros(a.At), endpointID); err != nil {
					return fmt.Errorf("disable endpoint %s: %w", endpointID, err)
				}
				if err := failPending(ctx, tx, endpointID, a.At); err != nil {
					return err
				}
				s.log.Warn("endpoint disabled after consecutive failures", "endpoint_id", endpointID, "failures", failures)
			}
		}
		return nil
	})
}

// ReleaseDeliveries gives up owner's leases on the given deliveries.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	var n int64
	err := s.write(ctx, "release deliveries", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
			WHERE lease_owner = ? AND id IN (SELECT value FROM json_each(?))`, owner, idList(ids))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n > 0 {
		s.wake()
	}
	return err
}

// NextDueAt returns the earliest NextAttemptAt of a pending delivery of an enabled endpoint.
func (s *Store) NextDueAt(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.read(ctx, "next due", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT d.next_attempt_at FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
			WHERE d.status = 'pending' AND e.disabled = 0 ORDER BY d.next_attempt_at LIMIT 1`).Scan(&next)
		if err == sql.ErrNoRows {
			return nil
		}
		return err
	})
	if err != nil || !next.Valid {
		return time.Time{}, false, err
	}
	return fromMicros(next.Int64), true, nil
}
