package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/jackc/pgx/v5"
)

// claimSQL leases due deliveries and returns them with their events and endpoints, in one
// statement. The inner SELECT locks the chosen rows FOR UPDATE SKIP LOCKED, so concurrent claims
// from other nodes pass over them instead of waiting; a row another node leased and committed
// after this statement's snapshot is re-checked against the WHERE clause when locked, and its
// valid lease excludes it.
const claimSQL = `WITH picked AS (
		SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND d.next_attempt_at <= $1
			AND (d.lease_until IS NULL OR d.lease_until <= $1)
			AND NOT e.disabled AND ` + notHeld + `
		ORDER BY d.next_attempt_at, d.id
		LIMIT $4
		FOR UPDATE OF d SKIP LOCKED
	` + claimLease

// notHeld is the ordering rule of both claims (aviso.Store.ClaimDeliveries) for a delivery d of
// an endpoint e: unordered, without a key, or with no earlier pending delivery of its endpoint
// and key, one probe of deliveries_ordering_idx (which holds keyed pending deliveries only; the
// subquery tests the key non-empty so that the planner may use it). An unordered endpoint's
// delivery stops at the first test. Snapshot reads make the rule conservative across nodes: a
// claim that cannot yet see an earlier delivery's completion leaves the next one, and one that
// sees it pending, leased to another node or not, never takes a later one.
const notHeld = `(e.ordering = '' OR d.ordering_key = '' OR NOT EXISTS (SELECT 1 FROM deliveries p
		WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.ordering_key <> ''
			AND p.status = 'pending' AND p.event_seq < d.event_seq))`

// claimLease ends both claim statements: it leases the rows of picked to $2 until $3 and returns
// them with their events and endpoints, in due order.
const claimLease = `), claimed AS (
		UPDATE deliveries d SET lease_owner = $2, lease_until = $3
		FROM picked WHERE d.id = picked.id
		RETURNING d.*
	)
	SELECT ` + deliveryCols + `, ` + eventCols + `, ` + endpointCols + `
	FROM claimed d
	JOIN events ev ON ev.tenant_id = d.tenant_id AND ev.id = d.event_id
	JOIN endpoints ep ON ep.id = d.endpoint_id
	ORDER BY d.next_attempt_at, d.id`

// claimOthersSQL is claimSQL when endpoints are capped (the endpoints $5 at most $6 each, 0 leaving
// one out): they are usually those with the most due work, and walking the due order past all of it
// would cost their whole backlog per claim. It lists the endpoints that have pending deliveries (a
// skip scan of deliveries_endpoint_due_idx, one probe per endpoint), takes up to its cap (else $4)
// of the oldest due of each, keeps the $4 oldest of those, and then locks them (SKIP LOCKED,
// conditions checked again on the locked rows), so only what is claimed is locked. Each candidate
// is locked by its own probe of the primary key: written "d.id IN (SELECT …)", the planner took a
// hash semi-join over every due delivery, the left-out endpoints' backlog included, with fresh
// statistics or none, so that a claim cost that backlog after all (TestClaimOthersPlan).
const claimOthersSQL = `WITH RECURSIVE pending_endpoints (id) AS (
		(SELECT endpoint_id FROM deliveries WHERE status = 'pending' ORDER BY endpoint_id LIMIT 1)
		UNION ALL
		SELECT (SELECT d.endpoint_id FROM deliveries d WHERE d.status = 'pending' AND d.endpoint_id > p.id
			ORDER BY d.endpoint_id LIMIT 1)
		FROM pending_endpoints p WHERE p.id IS NOT NULL
	), candidates AS (
		SELECT c.id FROM pending_endpoints p
		JOIN endpoints e ON e.id = p.id AND NOT e.disabled
		CROSS JOIN LATERAL (
			SELECT d.id, d.next_attempt_at FROM deliveries d
			WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= $1
				AND (d.lease_until IS NULL OR d.lease_until <= $1) AND ` + notHeld + `
			ORDER BY d.next_attempt_at, d.id
			LIMIT coalesce((SELECT n FROM unnest($5::text[], $6::int[]) AS cap (id, n) WHERE cap.id = e.id), $4)
		) c
		ORDER BY c.next_attempt_at, c.id
		LIMIT $4
	), picked AS (
		SELECT l.id FROM candidates c CROSS JOIN LATERAL (
			SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
			WHERE d.id = c.id AND d.status = 'pending' AND d.next_attempt_at <= $1
				AND (d.lease_until IS NULL OR d.lease_until <= $1) AND NOT e.disabled AND ` + notHeld + `
			FOR UPDATE OF d SKIP LOCKED
		) l
	` + claimLease

// ClaimDeliveries leases up to Limit due deliveries of enabled endpoints to Owner until
// LeaseUntil, oldest due first. Safe to call from any number of nodes at once. With Caps it
// goes endpoint by endpoint (claimOthersSQL).
func (s *Store) ClaimDeliveries(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, error) {
	if p.Limit <= 0 {
		return []*aviso.Claim{}, nil
	}
	query, args := claimSQL, []any{p.Now, p.Owner, p.LeaseUntil, p.Limit}
	if len(p.Caps) > 0 {
		ids, caps := make([]string, 0, len(p.Caps)), make([]int32, 0, len(p.Caps))
		for id := range p.Caps {
			ids, caps = append(ids, id), append(caps, int32(p.CapOf(id)))
		}
		query, args = claimOthersSQL, append(args, ids, caps)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, dbError("claim deliveries", "delivery", err)
	}
	claims, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*aviso.Claim, error) {
		var d aviso.Delivery
		var ev aviso.Event
		var ep aviso.Endpoint
		var status, format string
		var seq int64
		var data []byte
		dest := deliveryDest(&d, &status)
		dest = append(dest, &seq, &ev.TenantID, &ev.ID, &ev.Type, &data, &ev.ExternalReference, &ev.CreatedAt, &ev.RequestID, &ev.TraceParent)
		dest = append(dest, endpointDest(&ep, &format)...)
		if err := r.Scan(dest...); err != nil {
			return nil, err
		}
		fixDelivery(&d, status)
		fixEndpoint(&ep, format)
		if data != nil {
			ev.Data = data
		}
		ev.CreatedAt = utc(ev.CreatedAt)
		return &aviso.Claim{Delivery: &d, Event: &ev, Endpoint: &ep}, nil
	})
	if err != nil {
		return nil, dbError("claim deliveries", "delivery", err)
	}
	if claims == nil {
		claims = []*aviso.Claim{}
	}
	return claims, nil
}

// completeSQL records one attempt: it updates the delivery (skipping the completion when the
// delivery is gone), inserts the attempt, and keeps the endpoint's run of consecutive failures
// (count and FailingSince), disabling it when the count reaches $13 (> 0) and the run is at
// least $14 microseconds old, or at once with reason $15 when that is set. It returns the
// endpoint's ID and whether this completion disabled it, or no row when there was nothing to
// change (the delivery is gone, or a success on an endpoint with no failures, the common case,
// which writes no endpoint row). The statements of a batch run in order, so several completions
// for one endpoint count up one after another.
const completeSQL = `WITH d AS (
		UPDATE deliveries SET status = $2, attempt_count = attempt_count + 1, round_attempts = round_attempts + 1,
			next_attempt_at = $3, last_response_status = $4, last_error = $5, updated_at = $6,
			lease_owner = NULL, lease_until = NULL
		WHERE id = $1
		RETURNING id, tenant_id, endpoint_id, event_id
	), a AS (
		INSERT INTO attempts (id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers,
			response_status, response_body, duration_ms, error)
		SELECT $7, d.id, d.tenant_id, d.endpoint_id, d.event_id, $6, $8, $9, $4, $10, $11, $5 FROM d
	), old AS (
		SELECT e.id, e.disabled, e.consecutive_failures, e.failing_since FROM endpoints e JOIN d ON e.id = d.endpoint_id
		FOR NO KEY UPDATE OF e
	), run AS (
		SELECT old.*, CASE WHEN $12 THEN 0 ELSE old.consecutive_failures + 1 END AS failures,
			CASE WHEN $12 THEN NULL ELSE coalesce(old.failing_since, $6) END AS since FROM old
	), x AS (
		SELECT run.*, (NOT run.disabled AND NOT $12 AND ($15 <> ''
			OR ($13 > 0 AND run.failures >= $13 AND $6 - run.since >= $14::bigint * interval '1 microsecond'))) AS off
		FROM run
	)
	UPDATE endpoints e SET consecutive_failures = x.failures, failing_since = x.since,
		disabled = x.disabled OR x.off,
		disabled_reason = CASE WHEN x.off THEN (CASE WHEN $15 <> '' THEN $15 ELSE 'consecutive_failures' END)
			ELSE e.disabled_reason END,
		updated_at = CASE WHEN x.off THEN $6 ELSE e.updated_at END
	FROM x WHERE e.id = x.id AND NOT ($12 AND x.consecutive_failures = 0)
	RETURNING e.id, x.off`

// CompleteDeliveries records attempts in one transaction. The usual batch goes set-based
// (completeSet): a locking read of its endpoints and three statements whatever its size. A batch
// that disables an endpoint, completes a delivery twice, names a delivery that is gone or not of
// the attempt's endpoint, or retries a delivery of a disabled endpoint takes the general path:
// one pipelined batch with a statement per completion, in order, then, only if some endpoint
// reached its failure limit, the pending deliveries of the endpoints just disabled are failed,
// and so are those the batch retried whose endpoint is disabled.
func (s *Store) CompleteDeliveries(ctx context.Context, cs []aviso.Completion) ([]string, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	cs = slices.Clone(cs)
	slices.SortStableFunc(cs, func(a, b aviso.Completion) int {
		return cmp.Or(strings.Compare(a.Attempt.EndpointID, b.Attempt.EndpointID), strings.Compare(a.Attempt.DeliveryID, b.Attempt.DeliveryID))
	})
	var disabled []string
	freed := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		disabled, freed = nil, false
		done, ordered, err := completeSet(ctx, tx, cs)
		if err != nil {
			return err
		}
		if done {
			freed, err = followOrdering(ctx, tx, ordered)
			return err
		}
		b := &pgx.Batch{}
		for _, c := range cs {
			a := c.Attempt
			var next *time.Time
			if c.Status == aviso.StatusPending {
				next = c.NextAttemptAt
			}
			b.Queue(completeSQL, a.DeliveryID, string(c.Status), next, a.ResponseStatus, cleanText(a.Error), a.At,
				a.ID, a.URL, nonNilMap(a.RequestHeaders), cleanText(a.ResponseBody), a.DurationMS,
				c.Status == aviso.StatusSucceeded, c.DisableAfter, c.DisableMinSpan.Microseconds(), c.Disable)
		}
		res := tx.SendBatch(ctx, b)
		type disabling struct {
			id string
			at time.Time
		}
		var off []disabling
		for _, c := range cs {
			var id string
			var just bool
			err := res.QueryRow().Scan(&id, &just)
			switch {
			case errors.Is(err, pgx.ErrNoRows): // skipped, or no endpoint change
			case err != nil:
				res.Close()
				return err
			case just:
				off = append(off, disabling{id, c.Attempt.At})
				disabled = append(disabled, id)
			}
		}
		if err := res.Close(); err != nil {
			return err
		}
		for _, o := range off {
			if err := failPending(ctx, tx, o.id, o.at); err != nil {
				return err
			}
		}
		// A retry of a delivery whose endpoint was disabled while the attempt was in flight would
		// bring back a delivery that disabling failed.
		ids := make([]string, 0, len(cs))
		var at time.Time
		for _, c := range cs {
			if c.Status == aviso.StatusPending {
				ids = append(ids, c.Attempt.DeliveryID)
				if c.Attempt.At.After(at) {
					at = c.Attempt.At
				}
			}
		}
		if len(ids) > 0 {
			_, err = tx.Exec(ctx, `UPDATE deliveries d SET `+failedByDisable+`
				FROM endpoints e WHERE d.id = ANY($1::text[]) AND d.status = 'pending' AND e.id = d.endpoint_id AND e.disabled`,
				ids, at)
			if err != nil {
				return err
			}
		}
		all := make([]string, len(cs))
		for i, c := range cs {
			all[i] = c.Attempt.DeliveryID
		}
		freed, err = followOrdering(ctx, tx, all)
		return err
	})
	if err != nil {
		return nil, dbError("complete deliveries", "delivery", err)
	}
	if freed {
		s.signal()
	}
	return disabled, nil
}

// ReleaseDeliveries gives up Owner's leases on ids so that any node can claim them at once.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	var n int64
	err := retry(ctx, func() error { // one statement: a transaction of its own
		tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
			WHERE id = ANY($1::text[]) AND lease_owner = $2`, ids, owner)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return dbError("release deliveries", "delivery", err)
	}
	if n > 0 {
		s.signal()
	}
	return nil
}

var _ aviso.LeaseKeeper = (*Store)(nil)

// RenewLeases extends Owner's leases on ids to until, one statement. A delivery completed or
// released meanwhile has no owner any more, and one another node took after this one's lease ran
// out has another: neither is touched.
func (s *Store) RenewLeases(ctx context.Context, owner string, ids []string, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE deliveries SET lease_until = $3
		WHERE id = ANY($1::text[]) AND lease_owner = $2 AND status = 'pending'`, ids, owner, until)
	return dbError("renew leases", "delivery", err)
}

// releaseOwnedSQL gives back the leases of owner ($1). It reads the owner's leased deliveries
// only, through deliveries_lease_owner_idx (TestReleaseOwnedPlan checks the plan).
const releaseOwnedSQL = `UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
		WHERE status = 'pending' AND lease_owner = $1`

// ReleaseOwned gives up every lease owner holds (a node starting again under the same ID: what it
// held is in flight nowhere), once per start.
func (s *Store) ReleaseOwned(ctx context.Context, owner string) (int, error) {
	tag, err := s.pool.Exec(ctx, releaseOwnedSQL, owner)
	if err != nil {
		return 0, dbError("release owned leases", "delivery", err)
	}
	if tag.RowsAffected() > 0 {
		s.signal()
	}
	return int(tag.RowsAffected()), nil
}

// nextDueSQL is NextDueAt's statement. Written as ORDER BY … LIMIT 1, it walks
// deliveries_due_idx from its start and stops at the first delivery of an enabled endpoint;
// written as min(), the planner, without statistics, read every pending delivery and joined them
// all (TestClaimOthersPlan).
const nextDueSQL = `SELECT d.next_attempt_at FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND d.next_attempt_at IS NOT NULL AND NOT e.disabled
		ORDER BY d.next_attempt_at LIMIT 1`

// NextDueAt returns the earliest NextAttemptAt of a pending delivery of an enabled endpoint,
// leased or not (as the conformance suite decides): a dispatcher that finds nothing to claim at
// that time must not poll again at once.
func (s *Store) NextDueAt(ctx context.Context) (time.Time, bool, error) {
	var t time.Time
	err := s.pool.QueryRow(ctx, nextDueSQL).Scan(&t)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, dbError("next due at", "delivery", err)
	}
	return t.UTC(), true, nil
}

// Prune deletes up to limit of the oldest events created before before; the foreign keys
// cascade to their deliveries and attempts. Each call is one short statement over a small batch:
// events another pruner has locked are skipped, and the cascade waits at most for the row locks
// of a claim or completion in flight, which last one statement.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM events WHERE seq IN (
			SELECT seq FROM events WHERE created_at < $1 ORDER BY created_at, seq LIMIT $2
			FOR UPDATE SKIP LOCKED)`, before, limit)
	if err != nil {
		return 0, dbError("prune", "event", err)
	}
	return int(tag.RowsAffected()), nil
}

// The statements of completeSet.
const (
	// completeLockEndpoints locks the batch's endpoints, in ID order as every completion does, and
	// reads their failure counts.
	completeLockEndpoints = `SELECT id, consecutive_failures, failing_since, disabled, ordering <> '' FROM endpoints
		WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE`
	completeSetDeliveries = `UPDATE deliveries d SET status = v.status, attempt_count = d.attempt_count + 1,
			round_attempts = d.round_attempts + 1, next_attempt_at = v.next, last_response_status = v.code,
			last_error = v.err, updated_at = v.at, lease_owner = NULL, lease_until = NULL
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int[], $6::text[], $7::timestamptz[])
			AS v (id, endpoint_id, status, next, code, err, at)
		WHERE d.id = v.id AND d.endpoint_id = v.endpoint_id`
	completeSetAttempts = `INSERT INTO attempts (id, delivery_id, tenant_id, endpoint_id, event_id, at, url,
			request_headers, response_status, response_body, duration_ms, error)
		SELECT v.id, d.id, d.tenant_id, d.endpoint_id, d.event_id, v.at, v.url, v.headers::jsonb, v.code, v.body,
			v.ms, v.err
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], $7::text[],
			$8::bigint[], $9::text[]) AS v (id, delivery_id, at, url, headers, code, body, ms, err)
		JOIN deliveries d ON d.id = v.delivery_id`
	completeSetEndpoints = `UPDATE endpoints e SET consecutive_failures = v.failures, failing_since = v.since
		FROM unnest($1::text[], $2::int[], $3::timestamptz[]) AS v (id, failures, since) WHERE e.id = v.id`
)

// completeSet applies cs, sorted by endpoint, with three set-based statements after locking the
// endpoints: it replays the failure counts in Go, updates the deliveries from arrays, inserts the
// attempts, and writes each changed count once. It reports false, having changed nothing, when
// the batch needs the general path: an endpoint that is gone or would be disabled, a delivery
// completed twice, or one that is gone or not of the attempt's endpoint. Done, it returns the
// deliveries of ordered endpoints among cs, for followOrdering.
func completeSet(ctx context.Context, tx pgx.Tx, cs []aviso.Completion) (bool, []string, error) {
	type state struct {
		aviso.FailureRun
		was     int
		ordered bool
	}
	endpoints := map[string]*state{}
	var ids []string
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		if seen[c.Attempt.DeliveryID] {
			return false, nil, nil
		}
		seen[c.Attempt.DeliveryID] = true
		if _, ok := endpoints[c.Attempt.EndpointID]; !ok {
			endpoints[c.Attempt.EndpointID] = nil
			ids = append(ids, c.Attempt.EndpointID)
		}
	}
	rows, err := tx.Query(ctx, completeLockEndpoints, ids)
	if err != nil {
		return false, nil, err
	}
	for rows.Next() {
		var id string
		var st state
		if err := rows.Scan(&id, &st.Failures, &st.Since, &st.Disabled, &st.ordered); err != nil {
			rows.Close()
			return false, nil, err
		}
		st.was = st.Failures
		endpoints[id] = &st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, nil, err
	}
	for _, c := range cs {
		st := endpoints[c.Attempt.EndpointID]
		if st == nil {
			return false, nil, nil
		}
		// A disabling, or a retry on a disabled endpoint: see CompleteDeliveries.
		if status, disable := st.Record(c); status != c.Status || disable != "" {
			return false, nil, nil
		}
	}

	n := len(cs)
	var (
		dIDs, eIDs, statuses, errs, aIDs, urls, headers, bodies = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		nexts, ats = make([]*time.Time, n), make([]time.Time, n)
		codes      = make([]int32, n)
		durations  = make([]int64, n)
	)
	for i, c := range cs {
		a := c.Attempt
		dIDs[i], eIDs[i], statuses[i], errs[i] = a.DeliveryID, a.EndpointID, string(c.Status), cleanText(a.Error)
		if c.Status == aviso.StatusPending {
			nexts[i] = c.NextAttemptAt
		}
		ats[i], codes[i], durations[i] = a.At, int32(a.ResponseStatus), a.DurationMS
		h, err := json.Marshal(nonNilMap(a.RequestHeaders))
		if err != nil {
			return false, nil, err
		}
		aIDs[i], urls[i], headers[i], bodies[i] = a.ID, a.URL, string(h), cleanText(a.ResponseBody)
	}
	var changedIDs []string
	var changedCounts []int32
	var changedSince []*time.Time
	for _, id := range ids {
		if st := endpoints[id]; st.Failures != st.was || st.Failures > 0 {
			changedIDs = append(changedIDs, id)
			changedCounts = append(changedCounts, int32(st.Failures))
			changedSince = append(changedSince, st.Since)
		}
	}

	// In a savepoint: a delivery that is gone or not of its attempt's endpoint undoes the batch.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, nil, err
	}
	defer func() { _ = sp.Rollback(ctx) }()
	tag, err := sp.Exec(ctx, completeSetDeliveries, dIDs, eIDs, statuses, nexts, codes, errs, ats)
	if err != nil {
		return false, nil, err
	}
	if tag.RowsAffected() != int64(n) {
		return false, nil, sp.Rollback(ctx)
	}
	b := &pgx.Batch{}
	b.Queue(completeSetAttempts, aIDs, dIDs, ats, urls, headers, codes, bodies, durations, errs)
	if len(changedIDs) > 0 {
		b.Queue(completeSetEndpoints, changedIDs, changedCounts, changedSince)
	}
	if err := sp.SendBatch(ctx, b).Close(); err != nil {
		return false, nil, err
	}
	var ordered []string
	for _, c := range cs {
		if endpoints[c.Attempt.EndpointID].ordered {
			ordered = append(ordered, c.Attempt.DeliveryID)
		}
	}
	return true, ordered, sp.Commit(ctx)
}

// The statements of followOrdering, on the deliveries $1 just completed (h).
const (
	// orderingPush: a retry of a keyed delivery of an ordered endpoint moves the later pending
	// deliveries of its key to its next attempt, where they are due before it, since none can go
	// before it: a claim then does not walk past them while it waits.
	orderingPush = `UPDATE deliveries n SET next_attempt_at = h.next_attempt_at
		FROM deliveries h JOIN endpoints e ON e.id = h.endpoint_id AND e.ordering <> ''
		WHERE h.id = ANY($1::text[]) AND h.status = 'pending' AND h.ordering_key <> ''
			AND n.endpoint_id = h.endpoint_id AND n.ordering_key = h.ordering_key AND n.ordering_key <> ''
			AND n.status = 'pending' AND n.event_seq > h.event_seq AND n.next_attempt_at < h.next_attempt_at`
	// orderingPull: a keyed delivery finished (succeeded or failed) brings the next pending one of
	// its key back to the time of the finishing attempt, if it was pushed: due later although
	// not attempted in this round.
	orderingPull = `UPDATE deliveries n SET next_attempt_at = h.updated_at
		FROM deliveries h
		WHERE h.id = ANY($1::text[]) AND h.status <> 'pending' AND h.ordering_key <> ''
			AND n.id = (SELECT x.id FROM deliveries x WHERE x.endpoint_id = h.endpoint_id
				AND x.ordering_key = h.ordering_key AND x.ordering_key <> '' AND x.status = 'pending'
				AND x.event_seq > h.event_seq ORDER BY x.event_seq LIMIT 1)
			AND n.round_attempts = 0 AND n.next_attempt_at > h.updated_at`
)

// followOrdering keeps the due times of the deliveries that ids (just completed) hold behind them
// (orderingPush, orderingPull), and reports whether the dispatchers must be woken: when ids holds
// any, the next delivery of a reference may be claimable now. The due times help the claim,
// which then does not walk past deliveries that cannot go; the rule itself is notHeld's.
func followOrdering(ctx context.Context, tx pgx.Tx, ids []string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	b := &pgx.Batch{}
	b.Queue(orderingPush, ids)
	b.Queue(orderingPull, ids)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("ordering: %w", err)
	}
	return true, nil
}
