package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/backoff"
)

// endpointQueue is the work one endpoint has on this node. Owned by Run's goroutine (loop).
type endpointQueue struct {
	id       string
	tenantID string
	queued   []queuedClaim
	inFlight int
	ready    bool          // in loop.ready
	excluded bool          // left out of the last claim request
	latency  time.Duration // moving average of attempt durations; 0 until the first attempt finished
	timeout  time.Duration
	// idleSince is when it last had nothing queued or in flight.
	idleSince time.Time
	// checkedAt is when a claim request last asked the store whether it still exists, enabled.
	checkedAt time.Time
	// pace paces its attempts (pace.go); nil: it has no rate limit and no 429 slowed it.
	pace *pace
	// lastStart and gap (a moving average of the time between its attempts) say how fast it is
	// being sent to, should a 429 slow it.
	lastStart time.Time
	gap       time.Duration
}

// forgetAfter is how long a quick endpoint with no work here is remembered.
const forgetAfter = time.Minute

type queuedClaim struct {
	claim *aviso.Claim
	at    time.Time // when it was claimed
}

// outstanding is how many claims the endpoint holds here, queued or in flight.
func (q *endpointQueue) outstanding() int { return len(q.queued) + q.inFlight }

// finished is what an attempt goroutine reports to the loop.
type finished struct {
	endpointID string
	took       time.Duration
	started    time.Time
	status     int           // the response's status; 0: none
	retryAfter time.Duration // its Retry-After, on a 429 or 503
}

// holdHorizon is how much work, in time, an endpoint may hold here: what its PerEndpoint
// workers get through in that long at its observed latency.
const holdHorizon = time.Second

// holdCap is how many claims an endpoint may hold here: what it can attempt within holdHorizon
// (or a quarter lease if shorter), at least 2×PerEndpoint so its workers never wait for a claim,
// at most 2×ClaimBatch so a fast endpoint at half its cap takes a whole claim batch. A slow
// endpoint so holds a few seconds of work and leaves the node's budget to the others; none of
// its claims waits anywhere near half a lease. An endpoint whose first attempt has not finished
// yet holds a quarter batch: enough to start fast, little for one that turns out dead.
func (d *Dispatcher) holdCap(q *endpointQueue) int {
	if q.pace != nil {
		return min(q.pace.holdCap(), d.unpacedHoldCap(q))
	}
	return d.unpacedHoldCap(q)
}

func (d *Dispatcher) unpacedHoldCap(q *endpointQueue) int {
	lo := 2 * d.cfg.PerEndpoint
	if q.latency == 0 {
		return max(lo, d.cfg.ClaimBatch/4)
	}
	horizon := min(holdHorizon, d.cfg.Lease/4)
	n := int(horizon/max(q.latency, 100*time.Microsecond)) * d.cfg.PerEndpoint
	return max(lo, min(n, 2*d.cfg.ClaimBatch))
}

// claimRequest asks the claimer to give back release, check the endpoints recheck, and then
// claim with params.
type claimRequest struct {
	params  aviso.ClaimParams
	release []string
	recheck []endpointRef
}

// endpointRef names an endpoint to recheck.
type endpointRef struct{ id, tenantID string }

// claimResult is what a claimRequest got.
type claimResult struct {
	claims  []*aviso.Claim
	full    bool      // as many as asked for: more may be due
	nextDue time.Time // when not full: the next due delivery, if any
	hasNext bool
	gone    []string // of recheck, the endpoints deleted or disabled
	since   uint64   // held's mark as the claim started
	err     error
}

// claimTimeout bounds one ClaimDeliveries call, which shutdown does not cancel.
const claimTimeout = 30 * time.Second

// claimer runs the store calls of the loop, one request at a time, so that the loop never
// waits for the store: attempts keep starting and finishing while a claim is under way.
func (d *Dispatcher) claimer(ctx context.Context, h *held, reqs <-chan claimRequest, results chan<- claimResult) {
	for req := range reqs {
		d.releaseDeliveries(ctx, req.release)
		var res claimResult
		res.gone = d.goneEndpoints(ctx, req.recheck)
		// A claim is not cut short when ctx ends: a statement cancelled on the client may still
		// commit on the server (PostgreSQL), leasing deliveries this node would never hear of, and
		// so never give back, even after giving back others at shutdown. Finished, its claims
		// reach Run, which releases them.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
		res.since = h.mark()
		res.claims, res.err = d.cfg.Store.ClaimDeliveries(cctx, req.params)
		cancel()
		if res.err != nil {
			res.err = fmt.Errorf("claim deliveries: %w", res.err)
		} else {
			d.stats.claimed.Add(int64(len(res.claims)))
			res.full = len(res.claims) == req.params.Limit
			if !res.full {
				res.nextDue, res.hasNext, res.err = d.cfg.Store.NextDueAt(ctx)
				if res.err != nil {
					res.err = fmt.Errorf("next due delivery: %w", res.err)
				}
			}
		}
		results <- res
	}
}

// goneEndpoints returns the IDs of the endpoints of qs that are deleted or disabled. An endpoint
// the store cannot say about (an error) counts as still there: its claims are attempted.
func (d *Dispatcher) goneEndpoints(ctx context.Context, qs []endpointRef) []string {
	var gone []string
	for _, q := range qs {
		e, err := d.cfg.Store.GetEndpoint(ctx, q.tenantID, q.id)
		switch {
		case aviso.ErrorCode(err) == aviso.ENOTFOUND, err == nil && e.Disabled:
			gone = append(gone, q.id)
		case err != nil && ctx.Err() == nil:
			d.log.WarnContext(ctx, "recheck endpoint: its queued claims are kept", "endpoint_id", q.id, "error", err)
		}
	}
	return gone
}

// releaseDeliveries gives leases back, even while shutting down.
func (d *Dispatcher) releaseDeliveries(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.cfg.Store.ReleaseDeliveries(rctx, d.cfg.NodeID, ids); err != nil {
		d.log.ErrorContext(ctx, "release deliveries: their leases will expire instead", "count", len(ids), "error", err)
		return
	}
	d.stats.released.Add(int64(len(ids)))
}

// loop is Run's state: the claims held here, queued per endpoint and in flight, and what the
// next claim request will carry. Only Run's goroutine touches it; the claimer, the completer and
// the attempt workers talk to it through its channels.
type loop struct {
	d   *Dispatcher
	ctx context.Context

	reqs    chan claimRequest // to the claimer; never blocks: one claim at a time
	results chan claimResult  // from the claimer
	work    chan *aviso.Claim // to the attempt workers; never blocks: at most Workers in flight
	done    chan finished     // from the attempt workers; never blocks either
	flushed chan struct{}     // from the completer: a batch was written

	held     *held // what this node holds, for the renewer and the completer
	eps      map[string]*endpointQueue
	ready    []*endpointQueue // endpoints with queued claims and a free slot, served round-robin
	queued   int
	inFlight int
	// maxHeld bounds the claims held here (queued and in flight), hence memory: room for every
	// worker and two batches, so a claim can be under way while a batch waits.
	maxHeld int

	// paced are the endpoints with a pace (pace.go); reserveReqs and reserveResults talk to
	// the reserver, one request at a time (reserving).
	paced          map[*endpointQueue]struct{}
	reserveReqs    chan []aviso.SendReservation
	reserveResults chan reserveResult
	reserving      bool

	dirty      bool      // something may be due: claim at the next chance
	claiming   bool      // a claimRequest is under way
	sleepUntil time.Time // the next due delivery, when the last claim found none due
	release    []string  // claims to give back with the next request
}

// Run delivers until ctx is cancelled, then drains (see the package doc) and returns nil. It
// returns an error only if it is already running.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("dispatch: Run is already running")
	}
	defer d.running.Store(false)

	l := &loop{
		d:       d,
		ctx:     ctx,
		reqs:    make(chan claimRequest, 1),
		results: make(chan claimResult, 1),
		work:    make(chan *aviso.Claim, d.cfg.Workers),
		done:    make(chan finished, d.cfg.Workers),
		flushed: make(chan struct{}, 1),
		held:    newHeld(),
		eps:     make(map[string]*endpointQueue),
		maxHeld: d.cfg.Workers + 2*d.cfg.ClaimBatch,
		dirty:   true,

		paced:          make(map[*endpointQueue]struct{}),
		reserveReqs:    make(chan []aviso.SendReservation, 1),
		reserveResults: make(chan reserveResult, 1),
	}
	keeper, renews := d.cfg.Store.(aviso.LeaseKeeper)
	if renews {
		d.resume(ctx, keeper)
	}
	completions := make(chan aviso.Completion, 2*d.cfg.ClaimBatch)
	var helpers, attempts, renewer sync.WaitGroup
	stopRenewing := make(chan struct{})
	if renews {
		renewer.Go(func() { d.renew(ctx, keeper, l.held, stopRenewing) })
	}
	helpers.Go(func() { d.complete(ctx, completions, l.held, l.flushed) })
	helpers.Go(func() { d.claimer(ctx, l.held, l.reqs, l.results) })
	helpers.Go(func() { d.reserver(context.WithoutCancel(ctx), l.reserveReqs, l.reserveResults) })
	// Attempts run on Workers long-lived goroutines rather than one goroutine each: an attempt
	// goes deep into net/http, and a fresh goroutine's stack had to grow (and be copied) on
	// every attempt. They outlive ctx: cancelling Run drains them, each bounded by its timeout.
	attemptCtx := context.WithoutCancel(ctx)
	for range d.cfg.Workers {
		attempts.Go(func() {
			for c := range l.work {
				d.deliver(attemptCtx, c, completions, l.done)
			}
		})
	}

	timer := time.NewTimer(0)
	paceTimer := time.NewTimer(0) // the next send slot of a paced endpoint (pace.go)
	for ctx.Err() == nil {
		l.maybeClaim()
		l.maybeReserve()
		timer.Reset(l.wait())
		if w := l.paceWait(); w >= 0 {
			paceTimer.Reset(w)
		}
		select {
		case <-ctx.Done():
		case <-d.cfg.Store.Wakeups():
			l.dirty = true
		case <-l.flushed:
			l.dirty = true
			l.start() // after writes failed, what waited in the queues
		case <-timer.C:
			l.dirty = true
			l.sleepUntil = time.Time{}
		case res := <-l.results:
			l.claimed(res)
		case f := <-l.done:
			l.finished(f)
		case res := <-l.reserveResults:
			l.reserved(res)
		case <-paceTimer.C:
			l.paceDue()
		}
		timer.Stop()
		paceTimer.Stop()
	}

	l.stop()
	close(l.work)
	attempts.Wait()
	close(completions)
	helpers.Wait()
	close(stopRenewing)
	renewer.Wait()
	return nil
}

// maybeClaim sends a claim request if something may be due and none is under way.
func (l *loop) maybeClaim() {
	if l.dirty && !l.claiming {
		l.dirty = false
		l.claiming = l.requestClaim()
	}
}

// wait is how long the loop may sleep: until the next due delivery, at most IdleWait.
func (l *loop) wait() time.Duration {
	wait := l.d.cfg.IdleWait
	if !l.sleepUntil.IsZero() {
		wait = max(0, min(wait, l.sleepUntil.Sub(l.d.now())))
	}
	return wait
}

// claimed takes in what a claim request got.
func (l *loop) claimed(res claimResult) {
	l.claiming = false
	l.sleepUntil = time.Time{}
	if res.err != nil {
		if l.ctx.Err() == nil {
			l.d.log.ErrorContext(l.ctx, "dispatch loop", "error", res.err)
		}
		return
	}
	l.drop(res.gone)
	l.admit(res.claims, res.since)
	l.held.forget(res.since)
	switch {
	case res.full || len(l.release) > 0:
		l.dirty = true
	case res.hasNext:
		if res.nextDue.After(l.d.now()) {
			l.sleepUntil = res.nextDue
		}
	}
}

// finished takes in a finished attempt and every other one already reported, then starts what
// their slots allow.
func (l *loop) finished(f finished) {
	l.finish(f)
	for more := true; more; {
		select {
		case f := <-l.done:
			l.finish(f)
		default:
			more = false
		}
	}
	l.start()
}

// stop gives back what has not started: the claims queued and those of a claim under way.
func (l *loop) stop() {
	if l.claiming {
		res := <-l.results
		for _, c := range res.claims {
			l.release = append(l.release, c.Delivery.ID) // not held yet
		}
	}
	close(l.reqs)
	close(l.reserveReqs)
	for _, q := range l.eps {
		for _, qc := range q.queued {
			l.giveBack(qc.claim.Delivery.ID)
		}
		q.queued = nil
	}
	l.ready = nil
	l.d.releaseDeliveries(l.ctx, l.release)
}

// start hands queued claims to the attempt workers, round-robin over the ready endpoints, while
// workers are free.
func (l *loop) start() {
	if l.ctx.Err() != nil {
		return // shutting down: what is queued is released, not started
	}
	if l.d.writeFailing.Load() {
		return // outcomes cannot be recorded: what is queued waits (see wrote)
	}
	d := l.d
	now := d.now()
	for l.inFlight < d.cfg.Workers && len(l.ready) > 0 {
		q := l.ready[0]
		l.ready[0] = nil
		l.ready = l.ready[1:]
		q.ready = false
		if q.pace != nil && !q.pace.take(now) {
			continue // it waits for its next slot (the pace timer makes it ready)
		}
		qc := q.queued[0]
		q.queued[0] = queuedClaim{}
		q.queued = q.queued[1:]
		l.queued--
		if now.Sub(qc.at) > d.maxQueueWait() {
			// Waited too long: its lease may run out mid-attempt, or others may be free. Give it back.
			l.giveBack(qc.claim.Delivery.ID)
			l.dirty = true
		} else {
			q.inFlight++
			l.inFlight++
			d.stats.inFlight.Add(1)
			q.noteStart(now)
			l.work <- qc.claim
		}
		if len(q.queued) > 0 && q.inFlight < d.cfg.PerEndpoint {
			q.ready = true
			l.ready = append(l.ready, q)
		}
	}
	if len(l.ready) == 0 {
		l.ready = nil // let the backing array go
	}
}

// finish books a finished attempt: its endpoint's slot and latency.
func (l *loop) finish(f finished) {
	d := l.d
	q := l.eps[f.endpointID]
	q.inFlight--
	l.inFlight--
	d.stats.inFlight.Add(-1)
	if q.latency == 0 {
		q.latency = max(f.took, time.Microsecond) // the first observation replaces the unknown
	} else {
		q.latency += (f.took - q.latency) / 8
	}
	switch {
	case slowing(f.status):
		l.slow(q, f)
	case f.status >= 200 && f.status < 300 && q.pace != nil && q.pace.slowed():
		l.speedUp(q)
	}
	if len(q.queued) > 0 && !q.ready && q.inFlight < d.cfg.PerEndpoint {
		q.ready = true
		l.ready = append(l.ready, q)
	}
	if q.excluded && q.outstanding() <= d.holdCap(q)/2 {
		q.excluded = false
		l.dirty = true // it was left out of the last claim and may take more now
	}
	if q.outstanding() == 0 {
		q.idleSince = d.now()
	}
}

// forgetIdle drops quick endpoints idle for a while (keeping slow ones so that their small hold
// cap survives). An endpoint that merely ran out of work between publishes keeps its latency:
// forgotten, it would start again at the unmeasured cap, and a full claim for it would be mostly
// given back.
func (l *loop) forgetIdle() {
	now := l.d.now()
	for id, q := range l.eps {
		if q.outstanding() == 0 && q.latency < q.timeout/2 && now.Sub(q.idleSince) > forgetAfter {
			delete(l.eps, id)
			if q.pace != nil {
				delete(l.paced, q)
				q.pace = nil
				l.d.publishPacing(q)
			}
		}
	}
}

// requestClaim asks the claimer for due work if there is room to take a batch, and reports
// whether it did.
func (l *loop) requestClaim() bool {
	d := l.d
	if d.writeFailing.Load() {
		return false // see wrote; the write that succeeds sets dirty again
	}
	limit := min(d.cfg.ClaimBatch, l.maxHeld-l.queued-l.inFlight)
	if limit <= 0 || (limit < d.cfg.ClaimBatch/2 && l.queued > 0) {
		return false // wait for room, to claim in batches
	}
	l.forgetIdle()
	var caps map[string]int
	var recheck []endpointRef
	now := d.now()
	for id, q := range l.eps {
		// A paced endpoint with no slot within reach is left out as well (pace.go); one that may
		// take more takes at most what it may hold: its backlog is usually the oldest due, and
		// would otherwise fill the claim only to be given back.
		q.excluded = q.outstanding() > d.holdCap(q)/2 || (q.pace != nil && now.Before(q.pace.retryAt))
		switch {
		case q.excluded:
			caps = setCap(caps, id, 0)
		case q.pace != nil:
			caps = setCap(caps, id, d.holdCap(q)-q.outstanding())
		}
		if len(q.queued) > 0 && now.Sub(q.queued[0].at) >= d.cfg.RecheckAfter && now.Sub(q.checkedAt) >= d.cfg.RecheckAfter {
			q.checkedAt = now
			recheck = append(recheck, endpointRef{q.id, q.tenantID})
		}
	}
	l.reqs <- claimRequest{
		params: aviso.ClaimParams{Now: now, Limit: limit, Owner: d.cfg.NodeID,
			LeaseUntil: now.Add(d.cfg.Lease), Caps: caps},
		release: l.release,
		recheck: recheck,
	}
	l.release = nil
	return true
}

// setCap sets caps[id] to n, making caps if it is nil.
func setCap(caps map[string]int, id string, n int) map[string]int {
	if caps == nil {
		caps = make(map[string]int)
	}
	caps[id] = n
	return caps
}

// drop gives back the claims queued for endpoints deleted or disabled since they were claimed;
// those in flight finish.
func (l *loop) drop(gone []string) {
	for _, id := range gone {
		if q := l.eps[id]; q != nil {
			l.giveBackQueued(q)
		}
	}
}

// giveBackQueued gives back the claims queued for q (its endpoint is gone, or they would wait
// too long for a send slot).
func (l *loop) giveBackQueued(q *endpointQueue) {
	if len(q.queued) == 0 {
		return
	}
	for _, qc := range q.queued {
		l.giveBack(qc.claim.Delivery.ID)
	}
	l.queued -= len(q.queued)
	q.queued = nil
	if q.ready {
		q.ready = false
		l.ready = slices.DeleteFunc(l.ready, func(r *endpointQueue) bool { return r == q })
	}
	l.dirty = true // give them back with the next request
}

// wrote records the outcome of a completion write: while writes fail, the loop starts no new
// attempt and claims nothing, since their outcomes could not be recorded either; the first
// write that succeeds resumes it (flushed). Config.OnWrite hears every outcome.
func (d *Dispatcher) wrote(ctx context.Context, err error) {
	if d.cfg.OnWrite != nil {
		d.cfg.OnWrite(err)
	}
	switch was := d.writeFailing.Swap(err != nil); {
	case err != nil && !was:
		d.log.ErrorContext(ctx, "the store cannot record outcomes: no new attempts until it can; the outcomes waiting are kept and not sent again",
			"error", err)
	case err == nil && was:
		d.log.InfoContext(ctx, "the store records outcomes again: delivering")
	}
}

// ids returns the delivery IDs of a batch.
func ids(batch []aviso.Completion) []string {
	out := make([]string, len(batch))
	for i, c := range batch {
		out[i] = c.Attempt.DeliveryID
	}
	return out
}

// giveBack releases a held claim with the next claim request.
func (l *loop) giveBack(id string) {
	l.held.remove(id)
	l.release = append(l.release, id)
}

// admit queues claimed work; what an endpoint cannot hold goes back.
func (l *loop) admit(cs []*aviso.Claim, since uint64) {
	d := l.d
	now := d.now()
	for _, c := range cs {
		q := l.eps[c.Delivery.EndpointID]
		if q == nil {
			q = &endpointQueue{id: c.Delivery.EndpointID, tenantID: c.Delivery.TenantID, timeout: Timeout(c.Endpoint)}
			l.eps[q.id] = q
		}
		if q.setLimit(c.Endpoint.RateLimit) {
			l.paced[q] = struct{}{}
		} else {
			delete(l.paced, q)
		}
		switch l.held.admit(c.Delivery.ID, since) {
		case alreadyHeld:
			// Its outcome waits to be written (an SQLite lease ran out meanwhile). Attempted
			// again it would reach its receiver twice; it is left as it is.
			continue
		case stale:
			// Its outcome was written while the claim read a snapshot from before: what the
			// claim saw is gone. Given back, it is claimed again from the written state.
			l.release = append(l.release, c.Delivery.ID)
			l.dirty = true
			continue
		}
		if q.outstanding() >= d.holdCap(q) {
			l.giveBack(c.Delivery.ID)
			continue
		}
		q.queued = append(q.queued, queuedClaim{claim: c, at: now})
		l.queued++
		if !q.ready && q.inFlight < d.cfg.PerEndpoint {
			q.ready = true
			l.ready = append(l.ready, q)
		}
	}
	l.start()
}

// deliver makes one attempt for a claim and hands its completion to the completer.
func (d *Dispatcher) deliver(ctx context.Context, c *aviso.Claim, completions chan<- aviso.Completion, done chan<- finished) {
	start := d.now()
	var observed func(*aviso.Attempt, aviso.Completion)
	if d.cfg.Observer != nil {
		ctx, observed = d.cfg.Observer.Attempt(ctx, c)
	}
	a, retryAfter := d.send(ctx, c.Endpoint, c.Event)
	comp := d.decide(c, a, retryAfter)
	if observed != nil {
		observed(a, comp)
	}
	d.stats.attempts.Add(1)
	if a.Succeeded() {
		d.stats.succeeded.Add(1)
	} else {
		d.stats.failed.Add(1)
	}
	// ctx carries what the Observer added (the publish's request id, the attempt's span).
	d.log.DebugContext(ctx, "attempt", "delivery_id", c.Delivery.ID, "endpoint_id", c.Delivery.EndpointID,
		"event_id", c.Delivery.EventID, "attempt", c.Delivery.AttemptCount+1, "status", a.ResponseStatus,
		"error", a.Error, "next_status", comp.Status)
	completions <- comp
	done <- finished{endpointID: c.Delivery.EndpointID, took: d.now().Sub(start), started: start,
		status: a.ResponseStatus, retryAfter: retryAfter}
}

// complete writes completions in batches: it takes what has accumulated (up to twice
// ClaimBatch) and writes it in one CompleteDeliveries call, so the store commits once per batch
// however fast attempts finish. A failed write is retried with backoff; after ctx is cancelled it
// is retried a few times and then dropped with an error log (the leases expire and the
// deliveries are attempted again).
func (d *Dispatcher) complete(ctx context.Context, in <-chan aviso.Completion, h *held, flushed chan<- struct{}) {
	maxBatch := 2 * d.cfg.ClaimBatch
	batch := make([]aviso.Completion, 0, maxBatch)
	for c := range in {
		batch = append(batch[:0], c)
	gather:
		for len(batch) < maxBatch {
			select {
			case c, ok := <-in:
				if !ok {
					break gather
				}
				batch = append(batch, c)
			default:
				break gather
			}
		}
		if d.write(ctx, batch) {
			h.wrote(batch)
		} else {
			h.remove(ids(batch)...) // given up at shutdown: the leases run out
		}
		clear(batch)
		select {
		case flushed <- struct{}{}:
		default:
		}
	}
}

// write writes one batch of completions, trying again until it is written: the outcomes wait,
// held (their leases renewed), and are never attempted again meanwhile. While it fails the loop
// starts no attempt and claims nothing (see wrote).
func (d *Dispatcher) write(ctx context.Context, batch []aviso.Completion) bool {
	b := backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2, Rand: d.cfg.Rand}
	for try := 1; ; try++ {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		disabled, err := d.cfg.Store.CompleteDeliveries(wctx, batch)
		cancel()
		d.wrote(ctx, err)
		if err == nil {
			d.stats.batches.Add(1)
			d.notify(context.WithoutCancel(ctx), batch, disabled)
			return true
		}
		d.stats.batchErrors.Add(1)
		if ctx.Err() != nil && try >= 5 {
			d.log.ErrorContext(ctx, "complete deliveries: giving up at shutdown; their leases will expire and they will be attempted again",
				"count", len(batch), "error", err)
			return false
		}
		wait := b.Next()
		d.log.ErrorContext(ctx, "complete deliveries: will retry", "count", len(batch), "try", try,
			slog.Duration("backoff", wait), "error", err)
		_ = b.Sleep(context.WithoutCancel(ctx), wait) // at shutdown too: the tries left are few
	}
}
