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
	// claimRows reads the deliveries ?1 (a JSON array).
	claimRows      = `SELECT ` + deliveryReturning + `, event_seq FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))`
	claimEvents    = `SELECT ` + eventCols + ` FROM events WHERE seq IN (SELECT value FROM json_each(?))`
	claimEndpoints = `SELECT ` + endpointCols + ` FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`
)

// notHeld is the ordering rule of the claim (aviso.Store.ClaimDeliveries) for a delivery row c of
// an ordered endpoint: without a key, or with no earlier pending row of its endpoint and key (one
// probe of deliveries_ordering, which holds keyed pending rows only). A keyed delivery is always
// a row: InsertEvents and CreateMissedDeliveries write one, turning ordering on writes the
// endpoint's unwritten ones, and a claim forgets an ordered endpoint's window entries (claimsOf).
// Leases are in memory, but a leased delivery is a pending row all the same.
const notHeld = `(c.ordering_key = '' OR NOT EXISTS (SELECT 1 FROM deliveries p INDEXED BY deliveries_ordering
		WHERE p.endpoint_id = c.endpoint_id AND p.ordering_key = c.ordering_key AND p.ordering_key <> ''
			AND p.status = 'pending' AND p.event_seq < c.event_seq))`

// claimStatements lists the statements prepared on the readers.
func claimStatements() []string {
	return []string{claimDue, claimEligible, claimOldestOf, claimRows, claimEvents, claimEndpoints, nextDue, loadSQL}
}

// ClaimDeliveries leases up to Limit due deliveries of enabled endpoints, oldest due first; see
// aviso.Store. It reads in a read transaction and keeps the leases in memory (lease.go): the
// writer is not involved. Claims run one at a time. With ExcludeEndpoints it goes endpoint by
// endpoint (claimOthers). Unwritten deliveries (unwritten.go) are loaded into the window first,
// as far as it has room, and claimed beside the rows, in the same due order.
//
// An entry found gone (its event or endpoint deleted) or paused (its endpoint disabled) is
// forgotten, and takes no claim's place: while a pass forgets some and leaves the claim short,
// another pass claims the rest. When the window is full, the claim still comes up short, and
// the log beyond the window holds deliveries of endpoints the claim does not leave out, the
// window's entries that no claim holds are written as rows (writeIdle), which frees it for the
// log's next deliveries, and the claim goes on. (When the log holds only more of the endpoints
// left out, writing would not help: their entries wait in the window for those endpoints.)
func (s *Store) ClaimDeliveries(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, error) {
	claims := []*aviso.Claim{}
	if p.Limit <= 0 {
		return claims, nil
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	now := micros(p.Now)
	flushed := false
	for len(claims) < p.Limit {
		if err := s.load(ctx); err != nil {
			return nil, err
		}
		pass := p
		pass.Limit = p.Limit - len(claims)
		got, dropped, err := s.claimPass(ctx, pass)
		if err != nil {
			if len(claims) > 0 {
				break // leased already: return them; the next claim meets the error again
			}
			return nil, err
		}
		claims = append(claims, got...)
		_, backlogged := s.window.backlogged()
		switch {
		case len(claims) == p.Limit:
		case dropped > 0, len(got) > 0 && backlogged:
			continue // room was made for the log's next deliveries
		case !flushed && backlogged && s.window.room() <= 0 && s.window.aheadFor(excluded(p)):
			flushed = true
			if err := s.writeIdle(ctx, now); err != nil {
				s.log.Warn("could not write unwritten deliveries", "error", err)
				return claims, nil
			}
			continue
		}
		break
	}
	return claims, nil
}

// excluded is p.ExcludeEndpoints as a set.
func excluded(p aviso.ClaimParams) map[string]bool {
	exclude := make(map[string]bool, len(p.ExcludeEndpoints))
	for _, ep := range p.ExcludeEndpoints {
		exclude[ep] = true
	}
	return exclude
}

// claimPass is one pass of ClaimDeliveries: it returns the claims and how many window entries
// it forgot (gone or paused). The caller holds claimMu.
func (s *Store) claimPass(ctx context.Context, p aviso.ClaimParams) ([]*aviso.Claim, int, error) {
	now := micros(p.Now)
	s.leases.startClaim(s.commit.commits.Load(), now)
	entries := s.window.due(now, excluded(p), p.Limit)
	var claims []*aviso.Claim
	var dropped []string
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
		for _, e := range entries {
			dues = append(dues, due{at: e.next, id: e.id, entry: e})
		}
		if len(dues) == 0 {
			return nil
		}
		slices.SortFunc(dues, dueOrder)
		claims, dropped, err = s.claimsOf(ctx, tx, dues[:min(len(dues), p.Limit)])
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	// The entries among the claims are leased now; one forgotten meanwhile (its row written by
	// a retry or a disabling) is left out.
	until := micros(p.LeaseUntil)
	byID := make(map[string]*entry, len(entries))
	for _, e := range entries {
		byID[e.id] = e
	}
	var chosen []*entry
	for _, c := range claims {
		if e := byID[c.Delivery.ID]; e != nil {
			chosen = append(chosen, e)
		}
	}
	taken := s.window.lease(chosen, p.Owner, now, until)
	ids := make([]string, 0, len(claims))
	kept := claims[:0]
	for _, c := range claims {
		if e := byID[c.Delivery.ID]; e == nil || taken[e] {
			if e == nil {
				ids = append(ids, c.Delivery.ID)
			}
			kept = append(kept, c)
		}
	}
	s.leases.take(ids, p.Owner, until)
	s.window.forgetIDs(dropped)
	return kept, len(dropped), nil
}

// due is a claim's candidate: a delivery row, or a window entry.
type due struct {
	at    int64
	id    string
	entry *entry
}

// dueOrder is the claim's order: oldest due first, then by ID.
func dueOrder(a, b due) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) }

// claimable reports whether a claim at now may lease the delivery row id; see lease.go. A row
// whose delivery is also in the window was just written, and is claimed as the entry.
func (s *Store) claimable(id string, now int64) bool {
	return s.leases.claimable(id, now) && !s.window.has(id)
}

// claimOldest walks the due deliveries in due order and returns the first p.Limit claimable
// ones.
func (s *Store) claimOldest(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]due, error) {
	rows, err := s.rstmt(ctx, tx, claimDue).QueryContext(ctx, micros(p.Now))
	if err != nil {
		return nil, err
	}
	return s.walkDue(rows, p)
}

// walkDue reads rows of (due time, ID) in due order and returns the first p.Limit of them
// claimable at p.Now. It steps over at most as many as the lease table holds.
func (s *Store) walkDue(rows *sql.Rows, p aviso.ClaimParams) ([]due, error) {
	defer rows.Close()
	var dues []due
	for walk := p.Limit + s.leases.size(); len(dues) < p.Limit && walk > 0 && rows.Next(); walk-- {
		var d due
		if err := rows.Scan(&d.at, &d.id); err != nil {
			return nil, err
		}
		if s.claimable(d.id, micros(p.Now)) {
			dues = append(dues, d)
		}
	}
	return dues, rows.Err()
}

// claimsOf reads the deliveries dues (in due order) with their events and endpoints. It leaves
// out, and returns, the window entries whose event or endpoint is gone or whose endpoint is
// disabled or ordered (its disabling, or turning ordering on, wrote their rows).
func (s *Store) claimsOf(ctx context.Context, tx *sql.Tx, dues []due) (claims []*aviso.Claim, dropped []string, err error) {
	type row struct {
		d     *aviso.Delivery
		seq   int64
		entry *entry
	}
	got := make([]row, 0, len(dues))
	var ids []string
	for _, d := range dues {
		if d.entry != nil {
			got = append(got, row{d: d.entry.delivery(), seq: d.entry.seq, entry: d.entry})
		} else {
			ids = append(ids, d.id)
		}
	}
	if len(ids) > 0 {
		stored, err := queryAll(ctx, s.rstmt(ctx, tx, claimRows), func(sc scanner) (row, error) {
			var r row
			var err error
			r.d, err = scanDelivery(sc, &r.seq)
			return r, err
		}, idList(ids))
		if err != nil {
			return nil, nil, err
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
	evs, err := queryAll(ctx, s.rstmt(ctx, tx, claimEvents), scanSeqEvent, idList(seqs))
	if err != nil {
		return nil, nil, err
	}
	bySeq := make(map[int64]*aviso.Event, len(evs))
	for _, e := range evs {
		bySeq[e.seq] = e.e
	}
	eps, err := queryAll(ctx, s.rstmt(ctx, tx, claimEndpoints), scanEndpoint, idList(endpointIDs))
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]*aviso.Endpoint, len(eps))
	for _, e := range eps {
		byID[e.ID] = e
	}
	claims = make([]*aviso.Claim, 0, len(got))
	for _, r := range got {
		c := &aviso.Claim{Delivery: r.d, Event: bySeq[r.seq], Endpoint: byID[r.d.EndpointID]}
		if r.entry != nil && (c.Event == nil || c.Event.ID != r.d.EventID || c.Endpoint == nil || c.Endpoint.Disabled ||
			c.Endpoint.Ordering != aviso.OrderingNone && c.Event.ExternalReference != "") {
			dropped = append(dropped, r.d.ID)
			continue
		}
		if c.Event == nil || c.Endpoint == nil {
			return nil, nil, fmt.Errorf("delivery %s: its event or endpoint is missing", r.d.ID)
		}
		claims = append(claims, c)
	}
	return claims, dropped, nil
}

// The statements of CompleteDeliveries.
var (
	// completeEndpoints reads the failure counts of a batch's endpoints.
	completeEndpoints = `SELECT id, consecutive_failures, failing_since, disabled, ordering <> '' FROM endpoints
		WHERE id IN (SELECT value FROM json_each(?))`
	insertAttempts = bulkStatement{
		head: `INSERT INTO attempts (` + attemptCols + `) VALUES `,
		row:  `(?,?,?,?,?,?,?,?,?,?,?,?)`,
	}
	// updateCompleted records outcomes on delivery rows and returns the IDs of those it found.
	updateCompleted = bulkStatement{
		head: `WITH v (id, endpoint_id, status, next_at, response_status, error, at) AS (VALUES `,
		row:  `(?,?,?,?,?,?,?)`,
		tail: `) UPDATE deliveries SET status = v.status, attempt_count = attempt_count + 1,
			round_attempts = round_attempts + 1, next_attempt_at = v.next_at,
			last_response_status = v.response_status, last_error = v.error, updated_at = v.at
		FROM v WHERE deliveries.id = v.id AND deliveries.endpoint_id = v.endpoint_id RETURNING deliveries.id`,
	}
	// insertAttempted writes the rows of window entries with the outcome of their first attempt
	// (or records it on a row written meanwhile, by a retry or a disabling), and returns the IDs
	// of those whose event still exists.
	insertAttempted = bulkStatement{
		head: `WITH v (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, next_at, response_status, error,
			created_at, at) AS (VALUES `,
		row: `(?,?,?,?,?,?,?,?,?,?,?,?)`,
		tail: `) INSERT INTO deliveries (id, tenant_id, event_seq, event_id, endpoint_id, event_type, status, attempt_count,
			round_attempts, next_attempt_at, last_response_status, last_error, created_at, updated_at)
		SELECT v.id, v.tenant_id, v.event_seq, v.event_id, v.endpoint_id, v.event_type, v.status, 1, 1, v.next_at,
			v.response_status, v.error, v.created_at, v.at FROM v
		WHERE EXISTS (SELECT 1 FROM events e WHERE e.seq = v.event_seq AND e.id = v.event_id)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempt_count = attempt_count + 1,
			round_attempts = round_attempts + 1, next_attempt_at = excluded.next_attempt_at,
			last_response_status = excluded.last_response_status, last_error = excluded.last_error,
			updated_at = excluded.updated_at
		RETURNING id`,
	}
	updateEndpointFailures = bulkStatement{
		head: `WITH v (id, failures, since) AS (VALUES `,
		row:  `(?,?,?)`,
		tail: `) UPDATE endpoints SET consecutive_failures = v.failures, failing_since = v.since FROM v WHERE endpoints.id = v.id`,
	}
)

// claimOthers returns, as claimOldest does, the oldest claimable deliveries of the endpoints not
// in p.ExcludeEndpoints, endpoint by endpoint: the endpoints left out are usually those with the
// most due work, and walking the due order past all of it would cost the whole backlog per claim.
// It finds the enabled endpoints with due work (one probe each of deliveries_endpoint_due), takes
// up to Limit claimable of each one's oldest, and keeps the Limit oldest of those.
func (s *Store) claimOthers(ctx context.Context, tx *sql.Tx, p aviso.ClaimParams) ([]due, error) {
	now := micros(p.Now)
	type eligibleEndpoint struct {
		id      string
		ordered bool
	}
	endpoints, err := queryAll(ctx, s.rstmt(ctx, tx, claimEligible), func(sc scanner) (e eligibleEndpoint, err error) {
		return e, sc.Scan(&e.id, &e.ordered)
	}, idList(p.ExcludeEndpoints), now)
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
		got, err := s.walkDue(rows, p)
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
// A batch is written with a handful of multi-row statements (completeRun): one lookup of the
// endpoints' failure counts, the delivery rows updated and the window entries' rows inserted,
// the attempts inserted, and each endpoint's failure count written once if it changed, computed
// here in order, as are the endpoints the batch disables. A batch that completes one delivery
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
	var written map[string]*entry // the window entries given rows
	var disabled []string
	freed := false
	err := s.write(ctx, "complete deliveries", func(ctx context.Context, tx *sql.Tx) error {
		written, disabled, freed = make(map[string]*entry), nil, false
		entries := s.window.get(ids)
		var ordered []string // the deliveries of ordered endpoints completed
		for start := 0; start < len(cs); {
			end := start
			seen := make(map[string]bool)
			for end < len(cs) && !seen[cs[end].Attempt.DeliveryID] {
				seen[cs[end].Attempt.DeliveryID] = true
				end++
			}
			off, err := s.completeRun(ctx, tx, cs[start:end], headers[start:end], entries, written, &ordered)
			if err != nil {
				return err
			}
			disabled = append(disabled, off...)
			start = end
		}
		var err error
		if freed, err = followOrdering(ctx, tx, ordered); err != nil {
			return err
		}
		return s.moveMark(ctx, tx, false, written)
	})
	if err != nil {
		return nil, err
	}
	if freed {
		s.wake()
	}
	done := make([]string, 0, len(written))
	for id := range written {
		done = append(done, id)
	}
	s.window.forgetIDs(done)
	if len(disabled) > 0 {
		s.window.forget(func(e *entry) bool { return slices.Contains(disabled, e.endpointID) })
	}
	// The leases end once the outcomes are committed; see lease.go.
	s.leases.end(ids, s.commit.commits.Load())
	return disabled, nil
}

// completeRun records completions of distinct deliveries in tx; entries are the window's
// among them, written collects those it gives rows, and ordered those of ordered endpoints. It
// returns the endpoints it disabled. When a completion is not recorded, the run is undone and
// done again: without it if its delivery is gone (deleted with its endpoint or event), with the
// delivery's own endpoint if it named another.
func (s *Store) completeRun(ctx context.Context, tx *sql.Tx, cs []aviso.Completion, headers []string,
	entries, written map[string]*entry, ordered *[]string) ([]string, error) {
	type endpointState struct {
		aviso.FailureRun
		was        int // the count before the run: a count that stays 0 is not written
		ordered    bool
		disabledAt *time.Time // disabled by this run
		reason     string
	}
	endpoints := map[string]*endpointState{}
	var order []string // endpoints in first-seen order, so writes are deterministic
	for _, c := range cs {
		if _, ok := endpoints[c.Attempt.EndpointID]; !ok {
			endpoints[c.Attempt.EndpointID] = nil
			order = append(order, c.Attempt.EndpointID)
		}
	}
	rows, err := s.query(ctx, tx, completeEndpoints, idList(order))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var st endpointState
		var since sql.NullInt64
		if err := rows.Scan(&id, &st.Failures, &since, &st.Disabled, &st.ordered); err != nil {
			rows.Close()
			return nil, err
		}
		st.was, st.Since = st.Failures, fromMicrosPtr(since)
		endpoints[id] = &st
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
		entry  *entry
	}
	var out []outcome
	for i, c := range cs {
		st := endpoints[c.Attempt.EndpointID]
		if st == nil {
			continue // deleted with its endpoint, or not the delivery's
		}
		o := outcome{c: c, err: c.Attempt.Error, header: headers[i]}
		if e := entries[c.Attempt.DeliveryID]; e != nil && written[e.id] == nil && e.endpointID == c.Attempt.EndpointID {
			o.entry = e
		}
		var disable string
		if o.c.Status, disable = st.Record(c); o.c.Status != c.Status {
			o.err = disabledError
		}
		if disable != "" {
			st.disabledAt, st.reason = &c.Attempt.At, disable
		}
		if o.c.Status == aviso.StatusPending {
			o.next = c.NextAttemptAt
		}
		out = append(out, o)
	}

	// The deliveries first: rows updated, entries' rows inserted. One not found is gone.
	if _, err := tx.ExecContext(ctx, `SAVEPOINT complete_run`); err != nil {
		return nil, err
	}
	var stored, fresh []outcome
	for _, o := range out {
		if o.entry != nil {
			fresh = append(fresh, o)
		} else {
			stored = append(stored, o)
		}
	}
	found, err := s.queryIDs(ctx, tx, updateCompleted, len(stored), func(dst []any, i int) []any {
		o := stored[i]
		return append(dst, o.c.Attempt.DeliveryID, o.c.Attempt.EndpointID, string(o.c.Status), microsPtr(o.next),
			o.c.Attempt.ResponseStatus, o.err, micros(o.c.Attempt.At))
	})
	if err != nil {
		return nil, fmt.Errorf("update deliveries: %w", err)
	}
	inserted, err := s.queryIDs(ctx, tx, insertAttempted, len(fresh), func(dst []any, i int) []any {
		o, e := fresh[i], fresh[i].entry
		return append(dst, e.id, e.tenantID, e.seq, e.eventID, e.endpointID, e.eventType, string(o.c.Status),
			microsPtr(o.next), o.c.Attempt.ResponseStatus, o.err, e.created, micros(o.c.Attempt.At))
	})
	if err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	if len(found)+len(inserted) < len(cs) {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO complete_run; RELEASE complete_run`); err != nil {
			return nil, err
		}
		// A completion not recorded names a delivery that is gone, or an endpoint other than its
		// delivery's: then it is recorded with the delivery's own (see aviso.Store).
		var missing []string
		for _, c := range cs {
			if id := c.Attempt.DeliveryID; !found[id] && !inserted[id] {
				missing = append(missing, id)
			}
		}
		owners, err := deliveryOwners(ctx, tx, missing, entries, written)
		if err != nil {
			return nil, err
		}
		var kept []aviso.Completion
		var keptHeaders []string
		for i, c := range cs {
			if id := c.Attempt.DeliveryID; !found[id] && !inserted[id] {
				o, ok := owners[id]
				if !ok || o.endpoint == c.Attempt.EndpointID {
					continue // gone
				}
				a := *c.Attempt
				a.TenantID, a.EndpointID, a.EventID = o.tenant, o.endpoint, o.event
				c.Attempt = &a
			}
			kept, keptHeaders = append(kept, c), append(keptHeaders, headers[i])
		}
		return s.completeRun(ctx, tx, kept, keptHeaders, entries, written, ordered)
	}
	if _, err := tx.ExecContext(ctx, `RELEASE complete_run`); err != nil {
		return nil, err
	}
	for _, o := range fresh {
		written[o.entry.id] = o.entry
	}
	for _, o := range out {
		if endpoints[o.c.Attempt.EndpointID].ordered {
			*ordered = append(*ordered, o.c.Attempt.DeliveryID)
		}
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

// deliveryOwner is what a delivery belongs to.
type deliveryOwner struct{ tenant, endpoint, event string }

// deliveryOwners returns the owners of those of ids that exist: unwritten (entries not yet in
// written) or rows.
func deliveryOwners(ctx context.Context, tx *sql.Tx, ids []string, entries, written map[string]*entry) (map[string]deliveryOwner, error) {
	out := make(map[string]deliveryOwner)
	for _, id := range ids {
		if e := entries[id]; e != nil && written[id] == nil {
			out[id] = deliveryOwner{e.tenantID, e.endpointID, e.eventID}
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, tenant_id, endpoint_id, event_id FROM deliveries
		WHERE id IN (SELECT value FROM json_each(?))`, idList(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var o deliveryOwner
		if err := rows.Scan(&id, &o.tenant, &o.endpoint, &o.event); err != nil {
			return nil, err
		}
		out[id] = o
	}
	return out, rows.Err()
}

// ReleaseDeliveries gives up owner's leases on the given deliveries. Leases are in memory
// (lease.go): nothing is written.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	if err := ctx.Err(); err != nil {
		return storeErr("release deliveries", err)
	}
	if s.leases.release(owner, ids)+s.window.release(owner, ids) > 0 {
		s.wake()
	}
	return nil
}

// nextDueLook is how many of the log's deliveries beyond the window NextDueAt reads.
const nextDueLook = 100

// NextDueAt returns the earliest NextAttemptAt of a pending delivery of an enabled endpoint: a
// row, a window entry, or an unwritten delivery beyond the window. Beyond the window it reads
// the log's next nextDueLook deliveries only: the log is in due order but for clocks, and a
// delivery it names was due at its publish, so a longer log is work due now, and reading all
// of it whenever a claim comes up short would cost the whole backlog each time.
func (s *Store) NextDueAt(ctx context.Context) (time.Time, bool, error) {
	var next, beyond sql.NullInt64
	from, backlogged := s.window.backlogged()
	err := s.read(ctx, "next due", func(tx *sql.Tx) error {
		err := s.rstmt(ctx, tx, nextDue).QueryRowContext(ctx).Scan(&next)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if !backlogged {
			return nil
		}
		return tx.QueryRowContext(ctx, `SELECT min(next) FROM (SELECT CAST(j.value ->> 2 AS INTEGER) AS next`+logFrom+`
			AND e.seq >= ? AND (SELECT disabled FROM endpoints WHERE id = j.value ->> 1) = 0
			ORDER BY e.seq LIMIT `+strconv.Itoa(nextDueLook)+`)`, from).Scan(&beyond)
	})
	if err != nil {
		return time.Time{}, false, err
	}
	if at, ok := s.window.nextDue(); ok && (!beyond.Valid || at < beyond.Int64) {
		beyond = sql.NullInt64{Int64: at, Valid: true}
	}
	if beyond.Valid && (!next.Valid || beyond.Int64 < next.Int64) {
		next = beyond
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(next.Int64), true, nil
}
