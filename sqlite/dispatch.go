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

// The statements of ClaimDeliveries and NextDueAt, run on the readers (see lease.go).
//
// The walks in due order have no LIMIT: they read an index in its order, one row a step, and
// the caller stops reading when it has enough (TestClaimPlans checks that no step sorts). A
// LIMIT bound to a parameter would cost more than it saves: SQLite (3.54 here) prepares such a
// statement again whenever the bound limit changes, and a claim's limit changes every claim.
const (
	// claimDue lists, oldest due first, the deliveries of enabled endpoints due at ?1.
	claimDue = `SELECT c.next_attempt_at, c.id FROM deliveries c INDEXED BY deliveries_due JOIN endpoints e ON e.id = c.endpoint_id
		WHERE c.status = 'pending' AND c.next_attempt_at <= ?1 AND e.disabled = 0
		ORDER BY c.next_attempt_at, c.id`
	// claimEligible lists the enabled endpoints, but those in ?1 (a JSON array), that have a
	// delivery due at ?2.
	claimEligible = `SELECT e.id FROM endpoints e
		WHERE e.disabled = 0 AND e.id NOT IN (SELECT value FROM json_each(?1))
			AND EXISTS (SELECT 1 FROM deliveries c INDEXED BY deliveries_endpoint_due
				WHERE c.endpoint_id = e.id AND c.status = 'pending' AND c.next_attempt_at <= ?2)`
	// claimOldestOf lists the deliveries of endpoint ?1 due at ?2, oldest due first.
	claimOldestOf = `SELECT next_attempt_at, id FROM deliveries INDEXED BY deliveries_endpoint_due
		WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2
		ORDER BY next_attempt_at, id`
	// nextDue is the earliest due of a pending delivery of an enabled endpoint. It walks
	// deliveries_due, which is in that order (left to itself the planner may prefer
	// deliveries_endpoint_due and sort the whole backlog).
	nextDue = `SELECT d.next_attempt_at FROM deliveries d INDEXED BY deliveries_due JOIN endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND e.disabled = 0 ORDER BY d.next_attempt_at LIMIT 1`
	// claimRows reads the deliveries ?1 (a JSON array).
	claimRows      = `SELECT ` + deliveryReturning + `, event_seq FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))`
	claimEvents    = `SELECT ` + eventCols + ` FROM events WHERE seq IN (SELECT value FROM json_each(?))`
	claimEndpoints = `SELECT ` + endpointCols + ` FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`
)

// claimStatements lists the statements prepared on the readers.
func claimStatements() []string {
	return []string{claimDue, claimEligible, claimOldestOf, claimRows, claimEvents, claimEndpoints, nextDue}
}

// ClaimDeliveries leases up to Limit due deliveries of enabled endpoints, oldest due first; see
// aviso.Store. It reads in a read transaction and keeps the leases in memory (lease.go): the
// writer is not involved. Claims run one at a time. With ExcludeEndpoints it goes endpoint by
// endpoint (claimOthers). Deferred deliveries (deferred.go) are claimed beside the rows, in the
// same due order.
//
// A deferred delivery found gone (its event or endpoint deleted) is dropped from memory, one
// found paused (its endpoint disabled) is failed there, and neither takes a claim's place: while
// a pass drops some and leaves the claim short, another pass claims the rest. Otherwise the
// leftovers of a deleted endpoint, older than everything else due, would fill claim after claim
// with nothing, and the delivery engine would wait a second (dispatch.Config.IdleWait) between
// them.
func (s *Store) ClaimDeliveries(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, error) {
	claims := []*aviso.Claim{}
	if p.Limit <= 0 {
		return claims, nil
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if err := s.loadSpill(ctx); err != nil { // if the set has room (spill.go)
		s.log.Warn("could not load spilled deliveries", "err", err)
	}
	for len(claims) < p.Limit {
		pass := p
		pass.Limit = p.Limit - len(claims)
		got, dropped, err := s.claimPass(ctx, pass)
		if err != nil {
			if len(claims) > 0 {
				break // leased already: return them; the next claim meets the error again
			}
			return nil, err
		}
		var latest int64
		for _, c := range got {
			if c.Delivery.NextAttemptAt != nil {
				latest = max(latest, micros(*c.Delivery.NextAttemptAt))
			}
		}
		if s.deferred.spillAhead(p.ExcludeEndpoints, len(got) < pass.Limit && dropped == 0, latest) {
			// Spilled deliveries may be due before some of these, or fill the claim: these are
			// given back, and the pass runs again once the spill has shrunk (spill.go).
			ids := make([]string, len(got))
			for i, c := range got {
				ids[i] = c.Delivery.ID
			}
			s.leases.release(p.Owner, ids)
			s.deferred.release(p.Owner, ids)
			shrank, err := s.consumeSomeSpill(ctx)
			if err != nil {
				s.log.Warn("could not load or write spilled deliveries", "err", err)
			}
			if shrank {
				continue
			}
			got, dropped, err = s.claimPass(ctx, pass)
			if err != nil {
				if len(claims) > 0 {
					break
				}
				return nil, err
			}
		}
		claims = append(claims, got...)
		if dropped == 0 {
			break
		}
	}
	return claims, nil
}

// claimPass is one pass of ClaimDeliveries: it returns the claims and how many deferred
// deliveries it dropped (gone, or paused and so failed). The caller holds claimMu.
func (s *Store) claimPass(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, int, error) {
	now := micros(p.Now)
	s.leases.startClaim(s.commit.commits.Load(), now)
	s.deferred.expire(now)
	exclude := make(map[string]bool, len(p.ExcludeEndpoints))
	for _, ep := range p.ExcludeEndpoints {
		exclude[ep] = true
	}
	// Taken before the read transaction starts: a deferred delivery is claimable once its
	// publish has committed, so the snapshot holds its event.
	deferred := s.deferred.due(now, exclude, p.Limit)
	var claims []*aviso.Claim
	var gone, paused []*deferredDelivery
	err := s.read(ctx, "claim deliveries", func(tx *sql.Tx) error {
		if s.claimReadHook != nil {
			s.claimReadHook(tx)
		}
		var dues []due
		var err error
		if len(p.ExcludeEndpoints) == 0 {
			dues, err = s.claimOldest(ctx, tx, p)
		} else {
			dues, err = s.claimOthers(ctx, tx, p)
		}
		if err != nil {
			return err
		}
		for _, d := range deferred {
			dues = append(dues, due{at: d.next, id: d.id, deferred: d})
		}
		if len(dues) == 0 {
			return nil
		}
		slices.SortFunc(dues, func(a, b due) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) })
		claims, gone, paused, err = s.claimsOf(ctx, tx, dues[:min(len(dues), p.Limit)])
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	// The deferred deliveries among the claims are leased now (the others picked lost their
	// place to older rows, or are gone or paused). One that a completion wrote meanwhile (its
	// lease had expired and it was queued again) is no longer queued, and is left out.
	until := micros(p.LeaseUntil)
	deferredByID := make(map[string]*deferredDelivery, len(deferred))
	for _, d := range deferred {
		deferredByID[d.id] = d
	}
	var chosen []*deferredDelivery
	for _, c := range claims {
		if d := deferredByID[c.Delivery.ID]; d != nil {
			chosen = append(chosen, d)
		}
	}
	taken := s.deferred.claim(chosen, p.Owner, until)
	ids := make([]string, 0, len(claims))
	kept := claims[:0]
	for _, c := range claims {
		if d := deferredByID[c.Delivery.ID]; d == nil || taken[d] {
			ids = append(ids, c.Delivery.ID)
			kept = append(kept, c)
		}
	}
	claims = kept
	s.leases.take(ids, p.Owner, until)
	s.deferred.forget(gone)
	if err := s.writeStaleDeferred(ctx, paused, p.Now); err != nil {
		s.log.Warn("could not write deferred deliveries", "err", err)
	}
	return claims, len(gone) + len(paused), nil
}

// writeStaleDeferred deals with the deferred deliveries that a claim should not keep claimable:
// those of endpoints found disabled are failed in memory (see deferredSet.fail), as disabling
// them failed their other pending deliveries (they were published in the same group commit as
// the disabling, just before it, or it was not this store's doing); and once a second, it writes
// those deferred more than deferSpan events ago, and the failing ones if the set is full.
func (s *Store) writeStaleDeferred(ctx context.Context, paused []*deferredDelivery, now time.Time) error {
	if len(paused) > 0 {
		endpoints := make(map[string]bool)
		for _, d := range paused {
			endpoints[d.endpointID] = true
		}
		s.deferred.fail(s.deferred.matching(func(d *deferredDelivery) bool { return endpoints[d.endpointID] }), micros(now))
	}
	if s.deferred.fullOfFailing() {
		err := s.writeAllDeferred(ctx, "write failed deferred deliveries", func(d *deferredDelivery) bool { return d.failedAt != 0 }, false)
		if err != nil {
			return err
		}
	}
	if !s.deferred.once(&s.deferred.lastAge, time.Now()) {
		return nil
	}
	oldest, ok := s.deferred.oldest(nil, false)
	newest := s.deferred.newestSeq()
	if !ok || newest-oldest <= s.deferSpan {
		return nil
	}
	floor := newest - s.deferSpan/2
	return s.writeAllDeferred(ctx, "write old deferred deliveries", func(d *deferredDelivery) bool { return d.seq < floor }, false)
}

// due is a claim's candidate: a delivery row, or a deferred delivery.
type due struct {
	at       int64
	id       string
	deferred *deferredDelivery
}

// claimable reports whether a claim at now may lease the delivery row id; see lease.go. A row
// whose delivery is also still deferred was just written, and is claimed as the latter.
func (s *Store) claimable(id string, now int64) bool {
	return s.leases.claimable(id, now) && !s.deferred.has(id)
}

// claimOldest walks the due deliveries in due order and returns the first p.Limit claimable
// ones. It steps over at most as many as the lease table holds.
func (s *Store) claimOldest(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]due, error) {
	now := micros(p.Now)
	st, err := s.rstmt(ctx, tx, claimDue)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var dues []due
	for walk := p.Limit + s.leases.size(); len(dues) < p.Limit && walk > 0 && rows.Next(); walk-- {
		var d due
		if err := rows.Scan(&d.at, &d.id); err != nil {
			return nil, err
		}
		if s.claimable(d.id, now) {
			dues = append(dues, d)
		}
	}
	return dues, rows.Err()
}

// claimsOf reads the deliveries dues (in due order) with their events and endpoints. It leaves
// out, and returns, the deferred deliveries whose event or endpoint is gone, and those whose
// endpoint is disabled.
func (s *Store) claimsOf(ctx context.Context, tx *sql.Tx, dues []due) (claims []*aviso.Claim, gone, paused []*deferredDelivery, err error) {
	type row struct {
		d        *aviso.Delivery
		seq      int64
		deferred *deferredDelivery
	}
	got := make([]row, 0, len(dues))
	var ids []string
	for _, d := range dues {
		if d.deferred != nil {
			got = append(got, row{d: d.deferred.delivery(), seq: d.deferred.seq, deferred: d.deferred})
		} else {
			ids = append(ids, d.id)
		}
	}
	if len(ids) > 0 {
		st, err := s.rstmt(ctx, tx, claimRows)
		if err != nil {
			return nil, nil, nil, err
		}
		rows, err := st.QueryContext(ctx, idList(ids))
		if err != nil {
			return nil, nil, nil, err
		}
		stored, err := collect(rows, func(sc scanner) (row, error) {
			var r row
			var err error
			r.d, err = scanDelivery(sc, &r.seq)
			return r, err
		})
		if err != nil {
			return nil, nil, nil, err
		}
		got = append(got, stored...)
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
		return nil, nil, nil, err
	}
	rows, err := getEvents.QueryContext(ctx, idList(seqs))
	if err != nil {
		return nil, nil, nil, err
	}
	evs, err := collect(rows, scanSeqEvent)
	if err != nil {
		return nil, nil, nil, err
	}
	bySeq := make(map[int64]*aviso.Event, len(evs))
	for _, e := range evs {
		bySeq[e.seq] = e.e
	}
	getEndpoints, err := s.rstmt(ctx, tx, claimEndpoints)
	if err != nil {
		return nil, nil, nil, err
	}
	rows, err = getEndpoints.QueryContext(ctx, idList(endpointIDs))
	if err != nil {
		return nil, nil, nil, err
	}
	eps, err := collect(rows, scanEndpoint)
	if err != nil {
		return nil, nil, nil, err
	}
	byID := make(map[string]*aviso.Endpoint, len(eps))
	for _, e := range eps {
		byID[e.ID] = e
	}
	claims = make([]*aviso.Claim, 0, len(got))
	for _, r := range got {
		c := &aviso.Claim{Delivery: r.d, Event: bySeq[r.seq], Endpoint: byID[r.d.EndpointID]}
		if r.deferred != nil {
			switch {
			case c.Event == nil || c.Event.ID != r.d.EventID || c.Endpoint == nil:
				gone = append(gone, r.deferred) // deleted since: no delivery is owed
				continue
			case c.Endpoint.Disabled:
				paused = append(paused, r.deferred)
				continue
			}
		}
		if c.Event == nil || c.Endpoint == nil {
			return nil, nil, nil, fmt.Errorf("delivery %s: its event or endpoint is missing", r.d.ID)
		}
		claims = append(claims, c)
	}
	return claims, gone, paused, nil
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
func (s *Store) claimOthers(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]due, error) {
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
	var dues []due
	oldest, err := s.rstmt(ctx, tx, claimOldestOf)
	if err != nil {
		return nil, err
	}
	walk := p.Limit + s.leases.size()
	for _, ep := range endpoints {
		rows, err := oldest.QueryContext(ctx, ep, now)
		if err != nil {
			return nil, err
		}
		taken := 0
		for left := walk; taken < p.Limit && left > 0 && rows.Next(); left-- {
			var d due
			if err := rows.Scan(&d.at, &d.id); err != nil {
				rows.Close()
				return nil, err
			}
			if s.claimable(d.id, now) {
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
	return dues[:min(len(dues), p.Limit)], nil
}

// CompleteDeliveries records attempts and their outcome in one transaction; see aviso.Store.
// Completions apply in order. A completion is recorded whoever holds the lease now: the attempt
// happened, and the at-least-once log keeps it.
//
// The usual batch is written with a handful of multi-row statements: one lookup of the
// endpoints' failure counts, the deliveries updated, the attempts inserted, and each endpoint's
// failure count written once if it changed, computed here in order; a retry of a delivery of an
// endpoint disabled meanwhile is written failed, as completeRows leaves it. A batch in which an
// endpoint reaches DisableAfter, which completes one delivery twice, or one of whose deliveries
// is gone, is applied one completion at a time instead (completeEach), so its order-dependent
// effects stay exactly as specified.
func (s *Store) CompleteDeliveries(ctx context.Context, cs []aviso.Completion) error {
	if len(cs) == 0 {
		return nil
	}
	// Encoded before joining the single writer, which every write waits for.
	headers := make([]string, len(cs))
	for i, c := range cs {
		headers[i] = mapText(c.Attempt.RequestHeaders)
	}
	// The deferred deliveries whose rows the body wrote: forgotten once they are committed; and
	// those of endpoints it disabled: failed once it has committed.
	var written []*deferredDelivery
	var failed []failure
	err := s.write(ctx, "complete deliveries", func(ctx context.Context, tx *sql.Tx) error {
		written, failed = nil, nil
		each := func() (err error) {
			written, failed, err = s.completeEach(ctx, tx, cs)
			return err
		}
		type endpointState struct {
			failures int
			was      int // failures before the batch: an unchanged count is not written
			disabled bool
		}
		endpoints := map[string]*endpointState{}
		var order []string // endpoints in first-seen order, so writes are deterministic
		seen := make(map[string]bool, len(cs))
		ids := make([]string, len(cs))
		for i, c := range cs {
			ids[i] = c.Attempt.DeliveryID
		}
		deferredOf := s.deferred.lookup(ids)
		for _, c := range cs {
			if seen[c.Attempt.DeliveryID] {
				return each()
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
		// would be disabled or is gone. A retry on an endpoint disabled while the attempt was in
		// flight fails the delivery instead, as completeRows does: written as that outcome.
		outcomes := make([]aviso.Completion, len(cs))
		errs := make([]string, len(cs))
		for i, c := range cs {
			st := endpoints[c.Attempt.EndpointID]
			if st == nil {
				return each()
			}
			if c.Status == aviso.StatusSucceeded {
				st.failures = 0
			} else {
				st.failures++
				if !st.disabled && c.DisableAfter > 0 && st.failures >= c.DisableAfter {
					return each()
				}
			}
			outcomes[i], errs[i] = c, c.Attempt.Error
			if st.disabled && c.Status == aviso.StatusPending {
				outcomes[i].Status, outcomes[i].NextAttemptAt, errs[i] = aviso.StatusFailed, nil, disabledError
			}
		}

		// The deliveries are written first: the rows updated, and the deferred deliveries' rows
		// inserted (deferred.go). If one is gone (deleted with its endpoint or event meanwhile)
		// or not the attempt's endpoint's, the replay above did not hold and the batch goes one
		// at a time after all.
		var stored, deferred []int // indexes in cs
		var fresh []*deferredDelivery
		for i, c := range cs {
			if d := deferredOf[c.Attempt.DeliveryID]; d != nil {
				if d.endpointID != c.Attempt.EndpointID {
					return each()
				}
				deferred, fresh = append(deferred, i), append(fresh, d)
			} else {
				stored = append(stored, i)
			}
		}
		if err := s.execStmt(ctx, tx, completeSavepoint); err != nil {
			return err
		}
		nextOf := func(c aviso.Completion) *time.Time {
			if c.Status == aviso.StatusPending {
				return c.NextAttemptAt
			}
			return nil
		}
		updated, err := s.execCount(ctx, tx, updateCompleted, len(stored), func(dst []any, i int) []any {
			c := outcomes[stored[i]]
			return append(dst, c.Attempt.DeliveryID, c.Attempt.EndpointID, string(c.Status), microsPtr(nextOf(c)),
				c.Attempt.ResponseStatus, errs[stored[i]], micros(c.Attempt.At))
		})
		if err != nil {
			return fmt.Errorf("update deliveries: %w", err)
		}
		// An error here is an endpoint gone (the rows' foreign key): one at a time, too.
		inserted, ierr := s.execCount(ctx, tx, insertAttempted, len(deferred), func(dst []any, i int) []any {
			c, d := outcomes[deferred[i]], fresh[i]
			return append(dst, d.id, d.tenantID, d.seq, d.eventID, d.endpointID, d.eventType, string(c.Status),
				microsPtr(nextOf(c)), c.Attempt.ResponseStatus, errs[deferred[i]], d.created, micros(c.Attempt.At))
		})
		if ierr != nil || updated != int64(len(stored)) || inserted != int64(len(deferred)) {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO complete_bulk; RELEASE complete_bulk`); err != nil {
				return err
			}
			return each()
		}
		if err := s.execStmt(ctx, tx, completeRelease); err != nil {
			return err
		}
		written = fresh
		s.deferred.writing(written)
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
		return s.moveMark(ctx, tx, false, written)
	})
	if err != nil {
		s.deferred.unwritten(written)
		return err
	}
	s.deferred.forget(written)
	for _, f := range failed {
		s.deferred.fail(f.ds, micros(f.at))
	}
	for _, f := range failed {
		if f.more {
			if err := s.failRest(ctx, f.endpointID, f.at); err != nil {
				// Committed: the outcomes stand. The rest stay pending on the disabled endpoint.
				s.log.Error("fail the pending deliveries of a disabled endpoint", "endpoint_id", f.endpointID, "error", err)
			}
		}
	}
	// The leases end once the outcomes are committed; see lease.go.
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Attempt.DeliveryID
	}
	s.leases.end(ids, s.commit.commits.Load())
	return nil
}

// failure is an endpoint disabled at at: whether pending rows may be left to fail (see
// failPending), and its deferred deliveries.
type failure struct {
	endpointID string
	at         time.Time
	more       bool
	ds         []*deferredDelivery
}

// completeEach applies completions one at a time, in order, within tx. It first writes the
// deferred deliveries among them as rows. It returns the deferred deliveries it wrote, and those
// of the endpoints it disabled, for the caller to fail once tx has committed.
func (s *Store) completeEach(ctx context.Context, tx *sql.Tx, cs []aviso.Completion) (written []*deferredDelivery, failed []failure, err error) {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Attempt.DeliveryID
	}
	for _, d := range s.deferred.lookup(ids) {
		if d.state != deferTentative {
			written = append(written, d)
		}
	}
	s.deferred.writing(written)
	if _, err := s.writeDeferred(ctx, tx, written); err != nil {
		return written, nil, err
	}
	err = s.completeRows(ctx, tx, cs, func(endpointID string, at time.Time, more bool) {
		failed = append(failed, failure{endpointID, at, more,
			s.deferred.matching(func(d *deferredDelivery) bool { return d.endpointID == endpointID })})
	})
	if err != nil {
		return written, nil, err
	}
	return written, failed, s.moveMark(ctx, tx, false, written)
}

// completeRows applies completions one at a time, in order, within tx, to delivery rows.
// disabling runs when an endpoint is disabled at at, once a first chunk of its pending rows is
// failed; more reports whether some may be left (see failPending).
func (s *Store) completeRows(ctx context.Context, tx *sql.Tx, cs []aviso.Completion, disabling func(endpointID string, at time.Time, more bool)) error {
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
			more, err := s.failPending(ctx, tx, endpointID, a.At)
			if err != nil {
				return err
			}
			disabling(endpointID, a.At, more)
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
	if s.leases.release(owner, ids)+s.deferred.release(owner, ids) > 0 {
		s.wake()
	}
	return nil
}

// NextDueAt returns the earliest NextAttemptAt of a pending delivery of an enabled endpoint, or
// of a deferred or spilled one.
func (s *Store) NextDueAt(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.read(ctx, "next due", func(tx *sql.Tx) error {
		st, err := s.rstmt(ctx, tx, nextDue)
		if err != nil {
			return err
		}
		err = st.QueryRowContext(ctx).Scan(&next)
		if err == sql.ErrNoRows {
			return nil
		}
		return err
	})
	if err != nil {
		return time.Time{}, false, err
	}
	// A deferred delivery of a disabled endpoint counts too, once: the claim that finds it
	// writes it as a row. So does a spilled one: the claim loads or writes it (spill.go).
	if at, ok := s.deferred.nextDue(); ok && (!next.Valid || at < next.Int64) {
		next = sql.NullInt64{Int64: at, Valid: true}
	}
	if at, ok := s.deferred.spillDue(); ok && (!next.Valid || at < next.Int64) {
		next = sql.NullInt64{Int64: at, Valid: true}
	}
	if !next.Valid {
		return time.Time{}, false, nil
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
