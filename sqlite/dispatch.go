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

// The statements of ClaimDeliveries, run on the readers (see lease.go).
const (
	// claimDue lists, oldest due first, up to ?2 deliveries of enabled endpoints due at ?1.
	claimDue = `SELECT c.id FROM deliveries c INDEXED BY deliveries_due JOIN endpoints e ON e.id = c.endpoint_id
		WHERE c.status = 'pending' AND c.next_attempt_at <= ?1 AND e.disabled = 0
		ORDER BY c.next_attempt_at, c.id LIMIT ?2`
	// claimEligible lists the enabled endpoints, but those in ?1 (a JSON array), that have a
	// delivery due at ?2.
	claimEligible = `SELECT e.id FROM endpoints e
		WHERE e.disabled = 0 AND e.id NOT IN (SELECT value FROM json_each(?1))
			AND EXISTS (SELECT 1 FROM deliveries c INDEXED BY deliveries_endpoint_due
				WHERE c.endpoint_id = e.id AND c.status = 'pending' AND c.next_attempt_at <= ?2)`
	// claimOldestOf lists up to ?3 deliveries of endpoint ?1 due at ?2, oldest due first.
	claimOldestOf = `SELECT next_attempt_at, id FROM deliveries INDEXED BY deliveries_endpoint_due
		WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2
		ORDER BY next_attempt_at, id LIMIT ?3`
	// claimRows reads the deliveries ?1 (a JSON array).
	claimRows      = `SELECT ` + deliveryReturning + `, event_seq FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))`
	claimEvents    = `SELECT ` + eventCols + ` FROM events WHERE seq IN (SELECT value FROM json_each(?))`
	claimEndpoints = `SELECT ` + endpointCols + ` FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`
)

// claimStatements lists the statements prepared on the readers.
func claimStatements() []string {
	return []string{claimDue, claimEligible, claimOldestOf, claimRows, claimEvents, claimEndpoints}
}

// ClaimDeliveries leases up to Limit due deliveries of enabled endpoints, oldest due first; see
// aviso.Store. It reads in a read transaction and keeps the leases in memory (lease.go): the
// writer is not involved. Claims run one at a time. With ExcludeEndpoints it goes endpoint by
// endpoint (claimOthers).
func (s *Store) ClaimDeliveries(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, error) {
	if p.Limit <= 0 {
		return []*aviso.Claim{}, nil
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	now := micros(p.Now)
	s.leases.startClaim(s.commit.commits.Load(), now)
	var claims []*aviso.Claim
	err := s.read(ctx, "claim deliveries", func(tx *sql.Tx) error {
		if s.claimReadHook != nil {
			s.claimReadHook(tx)
		}
		var ids []string
		var err error
		if len(p.ExcludeEndpoints) == 0 {
			ids, err = s.claimOldest(ctx, tx, p)
		} else {
			ids, err = s.claimOthers(ctx, tx, p)
		}
		if err != nil || len(ids) == 0 {
			return err
		}
		claims, err = s.claimsOf(ctx, tx, ids)
		return err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(claims))
	for i, c := range claims {
		ids[i] = c.Delivery.ID
	}
	s.leases.take(ids, p.Owner, micros(p.LeaseUntil))
	if claims == nil {
		claims = []*aviso.Claim{}
	}
	return claims, nil
}

// claimOldest walks the due deliveries in due order and returns the first p.Limit claimable
// ones. It steps over at most as many as the lease table holds.
func (s *Store) claimOldest(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]string, error) {
	now := micros(p.Now)
	st, err := s.rstmt(ctx, tx, claimDue)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, now, p.Limit+s.leases.size())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for len(ids) < p.Limit && rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if s.leases.claimable(id, now) {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}

// claimsOf reads the deliveries ids with their events and endpoints, in due order.
func (s *Store) claimsOf(ctx context.Context, tx *sql.Tx, ids []string) ([]*aviso.Claim, error) {
	st, err := s.rstmt(ctx, tx, claimRows)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, idList(ids))
	if err != nil {
		return nil, err
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
		return nil, err
	}
	slices.SortFunc(got, func(a, b row) int {
		return cmp.Or(a.d.NextAttemptAt.Compare(*b.d.NextAttemptAt), cmp.Compare(a.d.ID, b.d.ID))
	})
	// Each endpoint is read once, however many of its deliveries were claimed.
	seqs := make([]string, 0, len(got))
	var endpointIDs []string
	seen := make(map[string]bool)
	for _, r := range got {
		seqs = append(seqs, strconv.FormatInt(r.seq, 10))
		if !seen[r.d.EndpointID] {
			seen[r.d.EndpointID] = true
			endpointIDs = append(endpointIDs, r.d.EndpointID)
		}
	}
	getEvents, err := s.rstmt(ctx, tx, claimEvents)
	if err != nil {
		return nil, err
	}
	rows, err = getEvents.QueryContext(ctx, idList(seqs))
	if err != nil {
		return nil, err
	}
	evs, err := collect(rows, scanSeqEvent)
	if err != nil {
		return nil, err
	}
	bySeq := make(map[int64]*aviso.Event, len(evs))
	for _, e := range evs {
		bySeq[e.seq] = e.e
	}
	getEndpoints, err := s.rstmt(ctx, tx, claimEndpoints)
	if err != nil {
		return nil, err
	}
	rows, err = getEndpoints.QueryContext(ctx, idList(endpointIDs))
	if err != nil {
		return nil, err
	}
	eps, err := collect(rows, scanEndpoint)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*aviso.Endpoint, len(eps))
	for _, e := range eps {
		byID[e.ID] = e
	}
	claims := make([]*aviso.Claim, len(got))
	for i, r := range got {
		claims[i] = &aviso.Claim{Delivery: r.d, Event: bySeq[r.seq], Endpoint: byID[r.d.EndpointID]}
		if claims[i].Event == nil || claims[i].Endpoint == nil {
			return nil, fmt.Errorf("delivery %s: its event or endpoint is missing", r.d.ID)
		}
	}
	return claims, nil
}

// The statements of CompleteDeliveries' bulk path.
var (
	// completeSavepoint and completeRelease bracket the deliveries' update, which the batch
	// rolls back to go one completion at a time.
	completeSavepoint = `SAVEPOINT complete_bulk`
	completeRelease   = `RELEASE complete_bulk`
	// completeEndpoints reads the failure counts of a batch's endpoints.
	completeEndpoints = `SELECT id, consecutive_failures, disabled FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`
	insertAttempts    = bulkStatement{
		head: `INSERT INTO attempts (` + attemptCols + `) VALUES `,
		row:  `(?,?,?,?,?,?,?,?,?,?,?,?)`,
	}
	updateCompleted = bulkStatement{
		head: `WITH v (id, endpoint_id, status, next_at, response_status, error, at) AS (VALUES `,
		row:  `(?,?,?,?,?,?,?)`,
		tail: `) UPDATE deliveries SET status = v.status, attempt_count = attempt_count + 1,
			round_attempts = round_attempts + 1, next_attempt_at = v.next_at,
			last_response_status = v.response_status, last_error = v.error,
			lease_owner = NULL, lease_until = NULL, updated_at = v.at
		FROM v WHERE deliveries.id = v.id AND deliveries.endpoint_id = v.endpoint_id`,
	}
	updateEndpointFailures = bulkStatement{
		head: `WITH v (id, failures) AS (VALUES `,
		row:  `(?,?)`,
		tail: `) UPDATE endpoints SET consecutive_failures = v.failures FROM v WHERE endpoints.id = v.id`,
	}
)

// claimOthers returns, as claimOldest does, the oldest claimable deliveries of the endpoints not
// in p.ExcludeEndpoints, endpoint by endpoint: the endpoints left out are usually those with the
// most due work, and walking the due order past all of it would cost the whole backlog per claim.
// It finds the enabled endpoints with due work (one probe each of deliveries_endpoint_due), takes
// up to Limit claimable of each one's oldest, and keeps the Limit oldest of those.
func (s *Store) claimOthers(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]string, error) {
	now := micros(p.Now)
	eligible, err := s.rstmt(ctx, tx, claimEligible)
	if err != nil {
		return nil, err
	}
	rows, err := eligible.QueryContext(ctx, idList(p.ExcludeEndpoints), now)
	if err != nil {
		return nil, err
	}
	endpoints, err := collect(rows, func(sc scanner) (id string, err error) { return id, sc.Scan(&id) })
	if err != nil || len(endpoints) == 0 {
		return nil, err
	}
	type due struct {
		at int64
		id string
	}
	var dues []due
	oldest, err := s.rstmt(ctx, tx, claimOldestOf)
	if err != nil {
		return nil, err
	}
	walk := p.Limit + s.leases.size()
	for _, ep := range endpoints {
		rows, err := oldest.QueryContext(ctx, ep, now, walk)
		if err != nil {
			return nil, err
		}
		taken := 0
		for taken < p.Limit && rows.Next() {
			var d due
			if err := rows.Scan(&d.at, &d.id); err != nil {
				rows.Close()
				return nil, err
			}
			if s.leases.claimable(d.id, now) {
				dues = append(dues, d)
				taken++
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(dues, func(a, b due) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) })
	ids := make([]string, 0, min(len(dues), p.Limit))
	for _, d := range dues[:min(len(dues), p.Limit)] {
		ids = append(ids, d.id)
	}
	return ids, nil
}

// CompleteDeliveries records attempts and their outcome in one transaction; see aviso.Store.
// Completions apply in order. A completion is recorded whoever holds the lease now: the attempt
// happened, and the at-least-once log keeps it.
//
// The usual batch is written with a handful of multi-row statements: one lookup of the
// endpoints' failure counts, the deliveries updated, the attempts inserted, and each endpoint's
// failure count written once if it changed, computed here in order. A batch in which an endpoint
// reaches DisableAfter, which completes one delivery twice, one of whose deliveries is gone, or
// which retries a delivery of a disabled endpoint, is applied one completion at a time instead
// (completeEach), so its order-dependent effects stay exactly as specified.
func (s *Store) CompleteDeliveries(ctx context.Context, cs []aviso.Completion) error {
	if len(cs) == 0 {
		return nil
	}
	// Encoded before joining the single writer, which every write waits for.
	headers := make([]string, len(cs))
	for i, c := range cs {
		headers[i] = mapText(c.Attempt.RequestHeaders)
	}
	err := s.write(ctx, "complete deliveries", func(ctx context.Context, tx *sql.Tx) error {
		type endpointState struct {
			failures int
			was      int // failures before the batch: an unchanged count is not written
			disabled bool
		}
		endpoints := map[string]*endpointState{}
		var order []string // endpoints in first-seen order, so writes are deterministic
		seen := make(map[string]bool, len(cs))
		for _, c := range cs {
			if seen[c.Attempt.DeliveryID] {
				return s.completeEach(ctx, tx, cs)
			}
			seen[c.Attempt.DeliveryID] = true
			if _, ok := endpoints[c.Attempt.EndpointID]; !ok {
				endpoints[c.Attempt.EndpointID] = nil
				order = append(order, c.Attempt.EndpointID)
			}
		}
		lookup, err := s.stmt(ctx, tx, completeEndpoints)
		if err != nil {
			return err
		}
		rows, err := lookup.QueryContext(ctx, idList(order))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var st endpointState
			if err := rows.Scan(&id, &st.failures, &st.disabled); err != nil {
				rows.Close()
				return err
			}
			st.was = st.failures
			endpoints[id] = &st
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()

		// Replay the batch on the endpoints' counts; fall back to one at a time if an endpoint
		// would be disabled or is gone.
		for _, c := range cs {
			st := endpoints[c.Attempt.EndpointID]
			if st == nil {
				return s.completeEach(ctx, tx, cs)
			}
			if c.Status == aviso.StatusSucceeded {
				st.failures = 0
			} else {
				st.failures++
				if !st.disabled && c.DisableAfter > 0 && st.failures >= c.DisableAfter {
					return s.completeEach(ctx, tx, cs)
				}
			}
			if st.disabled && c.Status == aviso.StatusPending {
				return s.completeEach(ctx, tx, cs) // a retry on a disabled endpoint: see completeEach
			}
		}

		// The deliveries are updated first: if one is gone (deleted with its endpoint or event
		// meanwhile) or not the attempt's endpoint's, the replay above did not hold and the batch
		// goes one at a time after all.
		if err := s.execStmt(ctx, tx, completeSavepoint); err != nil {
			return err
		}
		updated, err := s.execCount(ctx, tx, updateCompleted, len(cs), func(dst []any, i int) []any {
			c := cs[i]
			var next *time.Time
			if c.Status == aviso.StatusPending {
				next = c.NextAttemptAt
			}
			return append(dst, c.Attempt.DeliveryID, c.Attempt.EndpointID, string(c.Status), microsPtr(next),
				c.Attempt.ResponseStatus, c.Attempt.Error, micros(c.Attempt.At))
		})
		if err != nil {
			return fmt.Errorf("update deliveries: %w", err)
		}
		if updated != int64(len(cs)) {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO complete_bulk; RELEASE complete_bulk`); err != nil {
				return err
			}
			return s.completeEach(ctx, tx, cs)
		}
		if err := s.execStmt(ctx, tx, completeRelease); err != nil {
			return err
		}
		err = s.exec(ctx, tx, insertAttempts, len(cs), func(dst []any, i int) []any {
			a := cs[i].Attempt
			return append(dst, a.ID, a.DeliveryID, a.TenantID, a.EndpointID, a.EventID, micros(a.At), a.URL,
				headers[i], a.ResponseStatus, a.ResponseBody, a.DurationMS, a.Error)
		})
		if err != nil {
			return fmt.Errorf("insert attempts: %w", err)
		}
		// Usually every attempt to an endpoint succeeds and its count stays 0: its row is left as
		// it is.
		changed := order[:0]
		for _, ep := range order {
			if st := endpoints[ep]; st.failures != st.was {
				changed = append(changed, ep)
			}
		}
		err = s.exec(ctx, tx, updateEndpointFailures, len(changed), func(dst []any, i int) []any {
			return append(dst, changed[i], endpoints[changed[i]].failures)
		})
		if err != nil {
			return fmt.Errorf("update endpoints: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The leases end once the outcomes are committed; see lease.go.
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Attempt.DeliveryID
	}
	s.leases.end(ids, s.commit.commits.Load())
	return nil
}

// completeEach applies completions one at a time, in order, within tx.
func (s *Store) completeEach(ctx context.Context, tx *sql.Tx, cs []aviso.Completion) error {
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
		} else if disabled && c.Status == aviso.StatusPending {
			// Disabled while this attempt was in flight: the retry would bring back a delivery
			// that disabling failed.
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET `+failedByDisable+` WHERE id = ?`,
				micros(a.At), a.DeliveryID); err != nil {
				return fmt.Errorf("delivery %s: %w", a.DeliveryID, err)
			}
		}
	}
	return nil
}

// ReleaseDeliveries gives up owner's leases on the given deliveries. Leases are in memory
// (lease.go): nothing is written.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	if err := ctx.Err(); err != nil {
		return storeErr("release deliveries", err)
	}
	if s.leases.release(owner, ids) > 0 {
		s.wake()
	}
	return nil
}

// NextDueAt returns the earliest NextAttemptAt of a pending delivery of an enabled endpoint. It
// walks deliveries_due, which is in that order (left to itself the planner may prefer
// deliveries_endpoint_due and sort the whole backlog).
func (s *Store) NextDueAt(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.read(ctx, "next due", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT d.next_attempt_at FROM deliveries d INDEXED BY deliveries_due JOIN endpoints e ON e.id = d.endpoint_id
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

// execStmt runs a statement without arguments, prepared if it is a hot one.
func (s *Store) execStmt(ctx context.Context, tx *sql.Tx, query string) error {
	st, err := s.stmt(ctx, tx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx)
	return err
}
