package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/aviso-dev/aviso"
)

// The statements of ClaimDeliveries and NextDueAt, run on the readers (see lease.go).
//
// The walks in due order have no LIMIT: they read an index in its order, one row a step, and
// the caller stops reading when it has enough (TestClaimPlans checks that no step sorts). A
// LIMIT bound to a parameter would cost more than it saves: SQLite (3.54 here) prepares such a
// statement again whenever the bound limit changes, and a claim's limit changes every claim.
const (
	// claimDue lists, oldest due first, the deliveries of enabled endpoints due at ?1 that no
	// earlier one holds (notHeld).
	claimDue = `SELECT c.next_attempt_at, c.id FROM deliveries c INDEXED BY deliveries_due JOIN endpoints e ON e.id = c.endpoint_id
		WHERE c.status = 'pending' AND c.next_attempt_at <= ?1 AND e.disabled = 0 AND (e.ordering = '' OR ` + notHeld + `)
		ORDER BY c.next_attempt_at, c.id`
	// claimEligible lists the enabled endpoints, but those in ?1 (a JSON array), that have a
	// delivery due at ?2, and whether they are ordered.
	claimEligible = `SELECT e.id, e.ordering <> '' FROM endpoints e
		WHERE e.disabled = 0 AND e.id NOT IN (SELECT value FROM json_each(?1))
			AND EXISTS (SELECT 1 FROM deliveries c INDEXED BY deliveries_endpoint_due
				WHERE c.endpoint_id = e.id AND c.status = 'pending' AND c.next_attempt_at <= ?2)`
	// claimOldestOf lists the deliveries of endpoint ?1 due at ?2 that no earlier one holds
	// (notHeld; ?3 is whether the endpoint is ordered), oldest due first.
	claimOldestOf = `SELECT next_attempt_at, id FROM deliveries c INDEXED BY deliveries_endpoint_due
		WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2 AND (NOT ?3 OR ` + notHeld + `)
		ORDER BY next_attempt_at, id`
	// nextDue is the earliest due of a pending delivery of an enabled endpoint. It walks
	// deliveries_due, which is in that order (left to itself the planner may prefer
	// deliveries_endpoint_due and sort the whole backlog).
	nextDue = `SELECT d.next_attempt_at FROM deliveries d INDEXED BY deliveries_due JOIN endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND e.disabled = 0 ORDER BY d.next_attempt_at LIMIT 1`
	claimEndpoints = `SELECT ` + endpointCols + ` FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`
)

// claimRows reads the deliveries ?1 (a JSON array) with their events, in due order.
const claimRows = `SELECT ` + deliveryCols + `, ev.id, ev.tenant_id, ev.type, ev.data, ev.external_reference, ev.created_at,
		ev.request_id, ev.traceparent FROM deliveries d JOIN events ev ON ev.seq = d.event_seq
		WHERE d.id IN (SELECT value FROM json_each(?1)) ORDER BY d.next_attempt_at, d.id`

// notHeld is the ordering rule of the claim (aviso.Store.ClaimDeliveries) for a delivery row c of
// an ordered endpoint: without a key, or with no earlier pending row of its endpoint and key (one
// probe of deliveries_ordering, which holds keyed pending rows only). Leases are in memory, but
// a leased delivery is a pending row all the same.
const notHeld = `(c.ordering_key = '' OR NOT EXISTS (SELECT 1 FROM deliveries p INDEXED BY deliveries_ordering
		WHERE p.endpoint_id = c.endpoint_id AND p.ordering_key = c.ordering_key AND p.ordering_key <> ''
			AND p.status = 'pending' AND p.event_seq < c.event_seq))`

// claimStatements lists the statements prepared on the readers.
func claimStatements() []string {
	return []string{claimDue, claimEligible, claimOldestOf, claimRows, claimEndpoints, nextDue}
}

// ClaimDeliveries leases up to Limit due deliveries of enabled endpoints, oldest due first; see
// aviso.Store. It reads in a read transaction and keeps the leases in memory (lease.go): the
// writer is not involved. Claims run one at a time. With caps it goes endpoint by endpoint
// (claimOthers).
func (s *Store) ClaimDeliveries(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, error) {
	claims := []*aviso.Claim{}
	if p.Limit <= 0 {
		return claims, nil
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	s.leases.startClaim(s.commit.commits.Load(), micros(p.Now))
	err := s.read(ctx, "claim deliveries", func(tx *sql.Tx) error {
		if s.claimReadHook != nil {
			s.claimReadHook(tx)
		}
		var dues []due
		var err error
		if len(p.Caps) == 0 {
			dues, err = s.claimOldest(ctx, tx, p)
		} else {
			dues, err = s.claimOthers(ctx, tx, p)
		}
		if err != nil || len(dues) == 0 {
			return err
		}
		claims, err = s.claimsOf(ctx, tx, dues)
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
	return claims, nil
}

// due is a claim's candidate.
type due struct {
	at int64
	id string
}

// dueOrder is the claim's order: oldest due first, then by ID.
func dueOrder(a, b due) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) }

// claimOldest walks the due deliveries in due order and returns the first p.Limit claimable
// ones.
func (s *Store) claimOldest(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]due, error) {
	rows, err := s.rstmt(ctx, tx, claimDue).QueryContext(ctx, micros(p.Now))
	if err != nil {
		return nil, err
	}
	return s.walkDue(rows, micros(p.Now), p.Limit)
}

// walkDue reads rows of (due time, ID) in due order and returns the first limit of them
// claimable at now. It steps over at most as many as the lease table holds.
func (s *Store) walkDue(rows *sql.Rows, now int64, limit int) ([]due, error) {
	defer rows.Close()
	var dues []due
	for walk := limit + s.leases.size(); len(dues) < limit && walk > 0 && rows.Next(); walk-- {
		var d due
		if err := rows.Scan(&d.at, &d.id); err != nil {
			return nil, err
		}
		if s.leases.claimable(d.id, now) {
			dues = append(dues, d)
		}
	}
	return dues, rows.Err()
}

// claimsOf reads the deliveries dues with their events and endpoints, in due order.
func (s *Store) claimsOf(ctx context.Context, tx *sql.Tx, dues []due) ([]*aviso.Claim, error) {
	ids := make([]string, len(dues))
	for i, d := range dues {
		ids[i] = d.id
	}
	claims, err := queryAll(ctx, s.rstmt(ctx, tx, claimRows), func(sc scanner) (*aviso.Claim, error) {
		var c aviso.Claim
		var err error
		c.Event = &aviso.Event{}
		c.Delivery, err = scanDelivery(sc, eventDest(c.Event)...)
		return &c, err
	}, idList(ids))
	if err != nil {
		return nil, err
	}
	// Each endpoint is read once, however many of its deliveries were claimed.
	var endpointIDs []string
	for _, c := range claims {
		if !slices.Contains(endpointIDs, c.Delivery.EndpointID) {
			endpointIDs = append(endpointIDs, c.Delivery.EndpointID)
		}
	}
	eps, err := queryAll(ctx, s.rstmt(ctx, tx, claimEndpoints), scanEndpoint, idList(endpointIDs))
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*aviso.Endpoint, len(eps))
	for _, e := range eps {
		byID[e.ID] = e
	}
	for _, c := range claims {
		c.Endpoint = byID[c.Delivery.EndpointID]
	}
	return claims, nil
}

// The statements of CompleteDeliveries.
var (
	// completeOwners reads what a batch's deliveries belong to, and their endpoints' failure
	// counts.
	completeOwners = `SELECT d.id, d.tenant_id, d.endpoint_id, d.event_id, e.consecutive_failures, e.failing_since,
			e.disabled, e.ordering <> ''
		FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id WHERE d.id IN (SELECT value FROM json_each(?))`
	insertAttempts = bulkStatement{
		head: `INSERT INTO attempts (` + attemptCols + `) VALUES `,
		row:  `(?,?,?,?,?,?,?,?,?,?,?,?)`,
	}
	// updateCompleted records outcomes on delivery rows.
	updateCompleted = bulkStatement{
		head: `WITH v (id, status, next_at, response_status, error, at) AS (VALUES `,
		row:  `(?,?,?,?,?,?)`,
		tail: `) UPDATE deliveries SET status = v.status, attempt_count = attempt_count + 1,
			round_attempts = round_attempts + 1, next_attempt_at = v.next_at,
			last_response_status = v.response_status, last_error = v.error, updated_at = v.at
		FROM v WHERE deliveries.id = v.id`,
	}
	updateEndpointFailures = bulkStatement{
		head: `WITH v (id, failures, since) AS (VALUES `,
		row:  `(?,?,?)`,
		tail: `) UPDATE endpoints SET consecutive_failures = v.failures, failing_since = v.since FROM v WHERE endpoints.id = v.id`,
	}
)

// claimOthers returns, as claimOldest does, the oldest claimable deliveries, endpoint by endpoint
// at most each one's cap (p.Caps): the capped endpoints are usually those with the most due work,
// and walking the due order past all of it would cost the whole backlog per claim. It finds the
// enabled endpoints with due work but those capped at 0 (one probe each of
// deliveries_endpoint_due), takes up to its cap of each one's oldest, and keeps the Limit oldest.
func (s *Store) claimOthers(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]due, error) {
	now := micros(p.Now)
	type eligibleEndpoint struct {
		id      string
		ordered bool
	}
	endpoints, err := queryAll(ctx, s.rstmt(ctx, tx, claimEligible), func(sc scanner) (e eligibleEndpoint, err error) {
		return e, sc.Scan(&e.id, &e.ordered)
	}, idList(p.LeftOut()), now)
	if err != nil || len(endpoints) == 0 {
		return nil, err
	}
	var dues []due
	oldest := s.rstmt(ctx, tx, claimOldestOf)
	for _, ep := range endpoints {
		rows, err := oldest.QueryContext(ctx, ep.id, now, ep.ordered)
		if err != nil {
			return nil, err
		}
		got, err := s.walkDue(rows, now, p.CapOf(ep.id))
		if err != nil {
			return nil, err
		}
		dues = append(dues, got...)
	}
	slices.SortFunc(dues, dueOrder)
	return dues[:min(len(dues), p.Limit)], nil
}

// CompleteDeliveries records attempts and their outcome in one transaction; see aviso.Store.
// Completions apply in order. A completion is recorded whoever holds the lease now: the attempt
// happened, and the at-least-once log keeps it.
//
// A batch is a handful of multi-row statements (completeRun): one read of what the deliveries
// belong to and their endpoints' failure counts, the rows updated, the attempts inserted, and each
// changed count written once; counts and disablings are computed here, in order. A batch that completes one delivery
// twice goes in runs that each complete a delivery once.
func (s *Store) CompleteDeliveries(ctx context.Context, cs []aviso.Completion) ([]string, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	// Encoded before joining the single writer, which every write waits for.
	headers := make([]string, len(cs))
	ids := make([]string, len(cs))
	for i, c := range cs {
		headers[i], ids[i] = mapText(c.Attempt.RequestHeaders), c.Attempt.DeliveryID
	}
	var disabled []string
	freed := false
	err := s.write(ctx, "complete deliveries", func(ctx context.Context, tx *sql.Tx) error {
		disabled, freed = nil, false
		var ordered []string // the deliveries of ordered endpoints completed
		for start := 0; start < len(cs); {
			end := start
			seen := make(map[string]bool)
			for end < len(cs) && !seen[cs[end].Attempt.DeliveryID] {
				seen[cs[end].Attempt.DeliveryID] = true
				end++
			}
			off, err := s.completeRun(ctx, tx, cs[start:end], headers[start:end], &ordered)
			if err != nil {
				return err
			}
			disabled = append(disabled, off...)
			start = end
		}
		var err error
		freed, err = followOrdering(ctx, tx, ordered)
		return err
	})
	if err != nil {
		return nil, err
	}
	if freed {
		s.wake()
	}
	// The leases end once the outcomes are committed; see lease.go.
	s.leases.end(ids, s.commit.commits.Load())
	return disabled, nil
}

// completeRun records completions of distinct deliveries in tx; ordered collects those of
// ordered endpoints. It returns the endpoints it disabled. A completion is recorded with what
// its delivery belongs to (see aviso.Store): one of a delivery that is gone (deleted with its
// endpoint or event) is left out.
func (s *Store) completeRun(ctx context.Context, tx *sql.Tx, cs []aviso.Completion, headers []string,
	ordered *[]string) ([]string, error) {
	type endpointState struct {
		aviso.FailureRun
		was        int // the count before the run: a count that stays 0 is not written
		ordered    bool
		disabledAt *time.Time // disabled by this run
		reason     string
	}
	type owner struct{ tenant, endpoint, event string }
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Attempt.DeliveryID
	}
	owners := map[string]owner{}
	endpoints := map[string]*endpointState{}
	rows, err := s.query(ctx, tx, completeOwners, idList(ids))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var o owner
		var st endpointState
		var since sql.NullInt64
		if err := rows.Scan(&id, &o.tenant, &o.endpoint, &o.event, &st.Failures, &since, &st.Disabled, &st.ordered); err != nil {
			rows.Close()
			return nil, err
		}
		st.was, st.Since = st.Failures, fromMicrosPtr(since)
		owners[id], endpoints[o.endpoint] = o, &st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// The outcomes, in order, on the endpoints' counts.
	type outcome struct {
		c      aviso.Completion
		next   *time.Time
		err    string
		header string
	}
	var out []outcome
	var order []string // endpoints in first-seen order, so writes are deterministic
	for i, c := range cs {
		o, ok := owners[c.Attempt.DeliveryID]
		if !ok {
			continue // gone
		}
		if a := *c.Attempt; a.TenantID != o.tenant || a.EndpointID != o.endpoint || a.EventID != o.event {
			a.TenantID, a.EndpointID, a.EventID = o.tenant, o.endpoint, o.event
			c.Attempt = &a
		}
		st := endpoints[o.endpoint]
		if !slices.Contains(order, o.endpoint) {
			order = append(order, o.endpoint)
		}
		oc := outcome{c: c, err: c.Attempt.Error, header: headers[i]}
		var disable string
		if oc.c.Status, disable = st.Record(c); oc.c.Status != c.Status {
			oc.err = disabledError
		}
		if disable != "" {
			st.disabledAt, st.reason = &c.Attempt.At, disable
		}
		if oc.c.Status == aviso.StatusPending {
			oc.next = c.NextAttemptAt
		}
		if st.ordered {
			*ordered = append(*ordered, c.Attempt.DeliveryID)
		}
		out = append(out, oc)
	}
	err = s.exec(ctx, tx, updateCompleted, len(out), func(dst []any, i int) []any {
		o := out[i]
		return append(dst, o.c.Attempt.DeliveryID, string(o.c.Status), microsPtr(o.next), o.c.Attempt.ResponseStatus,
			o.err, micros(o.c.Attempt.At))
	})
	if err != nil {
		return nil, fmt.Errorf("update deliveries: %w", err)
	}
	err = s.exec(ctx, tx, insertAttempts, len(out), func(dst []any, i int) []any {
		a := out[i].c.Attempt
		return append(dst, a.ID, a.DeliveryID, a.TenantID, a.EndpointID, a.EventID, micros(a.At), a.URL,
			out[i].header, a.ResponseStatus, a.ResponseBody, a.DurationMS, a.Error)
	})
	if err != nil {
		return nil, fmt.Errorf("insert attempts: %w", err)
	}
	// Usually every attempt to an endpoint succeeds and its count stays 0: its row is left as it is.
	var changed, disabled []string
	for _, ep := range order {
		if st := endpoints[ep]; st != nil && (st.Failures > 0 || st.was > 0) {
			changed = append(changed, ep)
		}
	}
	err = s.exec(ctx, tx, updateEndpointFailures, len(changed), func(dst []any, i int) []any {
		st := endpoints[changed[i]]
		return append(dst, changed[i], st.Failures, microsPtr(st.Since))
	})
	if err != nil {
		return nil, fmt.Errorf("update endpoints: %w", err)
	}
	for _, ep := range order {
		st := endpoints[ep]
		if st == nil || st.disabledAt == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE id = ?`,
			st.reason, micros(*st.disabledAt), ep); err != nil {
			return nil, fmt.Errorf("disable endpoint %s: %w", ep, err)
		}
		if err := failEndpoint(ctx, tx, ep, *st.disabledAt); err != nil {
			return nil, err
		}
		disabled = append(disabled, ep)
		s.log.Warn("endpoint disabled", "endpoint_id", ep, "reason", st.reason, "failures", st.Failures)
	}
	return disabled, nil
}

// The statements of followOrdering, on the rows ?1 just completed (h).
const (
	// orderingPush: a retry of a keyed delivery moves the later pending rows of its key to its
	// next attempt where they are due before it, since none can go before it: a claim then does
	// not walk past them while it waits.
	orderingPush = `UPDATE deliveries AS n SET next_attempt_at = h.next_attempt_at
		FROM deliveries AS h
		WHERE h.id IN (SELECT value FROM json_each(?1)) AND h.status = 'pending' AND h.ordering_key <> ''
			AND n.endpoint_id = h.endpoint_id AND n.ordering_key = h.ordering_key AND n.ordering_key <> ''
			AND n.status = 'pending' AND n.event_seq > h.event_seq AND n.next_attempt_at < h.next_attempt_at`
	// orderingPull: a keyed delivery finished (succeeded or failed) brings the next pending row of
	// its key back to the time of the finishing attempt, if it was pushed: due later although not
	// attempted in this round.
	orderingPull = `UPDATE deliveries AS n SET next_attempt_at = h.updated_at
		FROM deliveries AS h
		WHERE h.id IN (SELECT value FROM json_each(?1)) AND h.status <> 'pending' AND h.ordering_key <> ''
			AND n.id = (SELECT x.id FROM deliveries x INDEXED BY deliveries_ordering WHERE x.endpoint_id = h.endpoint_id
				AND x.ordering_key = h.ordering_key AND x.ordering_key <> '' AND x.status = 'pending'
				AND x.event_seq > h.event_seq ORDER BY x.event_seq LIMIT 1)
			AND n.round_attempts = 0 AND n.next_attempt_at > h.updated_at`
)

// followOrdering keeps the due times of the rows that ids (just completed, of ordered endpoints)
// hold behind them (orderingPush, orderingPull), and reports whether the dispatchers must be
// woken: when ids holds any, the next delivery of a reference may be claimable now. The due
// times help the claim, which then does not walk past rows that cannot go; the rule itself is
// notHeld's.
func followOrdering(ctx context.Context, tx *sql.Tx, ids []string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	for _, q := range []string{orderingPush, orderingPull} {
		if _, err := tx.ExecContext(ctx, q, idList(ids)); err != nil {
			return false, fmt.Errorf("ordering: %w", err)
		}
	}
	return true, nil
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

// NextDueAt returns the earliest NextAttemptAt of a pending delivery of an enabled endpoint.
func (s *Store) NextDueAt(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.read(ctx, "next due", func(tx *sql.Tx) error {
		err := s.rstmt(ctx, tx, nextDue).QueryRowContext(ctx).Scan(&next)
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
