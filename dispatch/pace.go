package dispatch

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/aviso-dev/aviso"
)

// Pacing. An endpoint with a rate limit (Endpoint.RateLimit), or one a 429 or 503 has slowed,
// is paced: each attempt to it waits for a send slot. The invariant: an attempt to a paced
// endpoint starts only in a slot this node reserved from the store (Store.ReserveSends), no
// later than paceLate after the slot's time (or after the grant's arrival, for a slot already
// past when it arrived), and the store hands every slot out once, at least one interval after
// the one before, whichever node asked. So, summed over the nodes of one store, an endpoint
// limited to r per second gets at most r·(W + 0.1 s + d) + 1 attempts in any window of length
// W, d being how long a reservation takes. Slots are reserved for the claims queued here, at most paceHorizon ahead;
// a claim waits for its slot on the loop's pace timer (no goroutine sleeps, no worker is
// held), and an endpoint with no slot within reach is left out of claims until it has one, so
// its deliveries stay in the store meanwhile. A slot not used in time is dropped, never used
// late.
//
// Slowing (additive increase, multiplicative decrease): a 429 or 503 halves the rate this node
// sends the endpoint at, never below minPaceRate — starting from its limit, or for an endpoint
// without one from the rate it was being sent at — once per round: answers to attempts that
// started before the last decrease do not decrease it again. A Retry-After on that answer also
// holds every send to the endpoint until then (at most maxPause), on every node (NotBefore).
// While slowed, each 2xx brings the rate back linearly from where the last decrease left it, a
// tenth of the ceiling per second since that decrease (recoverSpan), up to the ceiling: the
// limit, or (no limit) the rate it was sent at when first slowed, after which it is no longer
// paced. Each node slows on the answers it gets; the limit itself always holds for their sum.
const (
	paceHorizon    = time.Second           // slots are reserved at most this far ahead
	paceBurstSpan  = 50 * time.Millisecond // burst credit after a quiet spell: the rate's worth of this long
	paceLate       = 50 * time.Millisecond // a slot is used at most this late, else dropped
	minPaceRate    = 1.0                   // deliveries per second a slowed endpoint keeps
	recoverSpan    = 10 * time.Second      // how long a slowed rate takes to climb from 0 back to its ceiling
	maxPause       = time.Minute           // the longest a Retry-After holds a whole endpoint
	longPause      = 2 * paceHorizon       // a wait for slots this long gives the queued claims back
	minInterval    = time.Microsecond      // intervals are whole microseconds (as PostgreSQL keeps times)
	reserveTimeout = 10 * time.Second      // bounds one ReserveSends call
)

// pace is how the loop paces one endpoint. Owned by Run's goroutine.
type pace struct {
	limit   float64 // the endpoint's rate_limit; 0: none
	rate    float64 // deliveries per second it is sent at now: limit, or less while slowed
	ceiling float64 // what a slowed rate recovers to: limit, or the rate it was sent at when first slowed
	// slowedAt is the last decrease (zero: not slowed): answers to attempts started before it
	// were to sends at the old rate and do not decrease it again.
	slowedAt time.Time
	slowRate float64     // the rate the last decrease set
	status   int         // the answer that slowed it last (429 or 503)
	since    time.Time   // when the current slow-down began
	slots    []time.Time // reserved and not used yet, ascending
	// retryAt is when a reservation may find a slot again: the last one found none within
	// paceHorizon (or a Retry-After holds the endpoint). Until then it is left out of claims.
	retryAt time.Time
	// waited: retryAt was set ahead of a claim request, which may have left the endpoint out;
	// once it passes, the loop claims again.
	waited    bool
	notBefore time.Time // a Retry-After: no slot before this
	reserving bool      // a reservation for it is under way
}

func (p *pace) slowed() bool { return !p.slowedAt.IsZero() }

// interval is the time between two of its slots.
func (p *pace) interval() time.Duration {
	iv := time.Duration(math.Ceil(float64(time.Second) / p.rate))
	return max(minInterval, (iv+minInterval-1)/minInterval*minInterval)
}

// burst is how many slots may fall at once after a quiet spell.
func (p *pace) burst() int { return max(1, int(p.rate*paceBurstSpan.Seconds())) }

// holdCap bounds the claims a paced endpoint holds here: what it may send within paceHorizon.
func (p *pace) holdCap() int { return int(math.Ceil(p.rate*paceHorizon.Seconds())) + p.burst() }

// take uses the first slot if it has come (dropping those too late to use) and reports whether
// there was one.
func (p *pace) take(now time.Time) bool {
	i := 0
	for i < len(p.slots) && now.Sub(p.slots[i]) > paceLate {
		i++
	}
	p.slots = p.slots[i:]
	if len(p.slots) == 0 || p.slots[0].After(now) {
		return false
	}
	p.slots = p.slots[1:]
	return true
}

// setLimit applies the endpoint's rate_limit as its latest claim carries it; it reports
// whether the endpoint is paced.
func (q *endpointQueue) setLimit(limit int) bool {
	lim := float64(limit)
	p := q.pace
	switch {
	case p == nil && lim == 0:
		return false
	case p == nil:
		q.pace = &pace{limit: lim, rate: lim, ceiling: lim}
		return true
	case p.limit == lim:
		return true
	}
	p.limit = lim
	switch {
	case lim > 0:
		p.ceiling = lim
		if !p.slowed() || p.rate > lim {
			p.rate = lim
		}
	case !p.slowed():
		q.pace = nil // the limit was removed
		return false
	}
	return true
}

// noteStart keeps the moving average of the gaps between the endpoint's attempts (the rate an
// endpoint without a limit is being sent at, should a 429 slow it).
func (q *endpointQueue) noteStart(now time.Time) {
	if !q.lastStart.IsZero() {
		gap := max(now.Sub(q.lastStart), time.Microsecond)
		if q.gap == 0 {
			q.gap = gap
		} else {
			q.gap += (gap - q.gap) / 8
		}
	}
	q.lastStart = now
}

// observedRate is the rate the endpoint has been sent at here, as well as the loop can tell.
func (d *Dispatcher) observedRate(q *endpointQueue) float64 {
	r := math.Inf(1)
	if q.gap > 0 {
		r = float64(time.Second) / float64(q.gap)
	}
	if q.latency > 0 {
		r = min(r, float64(d.cfg.PerEndpoint)*float64(time.Second)/float64(q.latency))
	}
	if math.IsInf(r, 1) {
		r = float64(d.cfg.PerEndpoint) // nothing measured yet
	}
	return max(r, minPaceRate)
}

// slowing reports whether an answer slows its endpoint.
func slowing(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// slow takes in a 429 or 503 from an attempt to q (see the Pacing comment).
func (l *loop) slow(q *endpointQueue, f finished) {
	d := l.d
	now := d.now()
	p := q.pace
	if p == nil {
		p = &pace{}
		q.pace = p
		l.paced[q] = struct{}{}
	}
	if f.retryAfter > 0 {
		until := now.Add(min(f.retryAfter, maxPause))
		if until.After(p.notBefore) {
			p.notBefore = until
			p.slots = slices.DeleteFunc(p.slots, func(t time.Time) bool { return t.Before(until) })
			if r := until.Add(-paceHorizon); r.After(p.retryAt) {
				p.retryAt, p.waited = r, true
			}
		}
	}
	if !p.slowed() || !f.started.Before(p.slowedAt) {
		from := p.rate
		if from == 0 {
			from = d.observedRate(q)
		}
		if p.ceiling == 0 {
			p.ceiling = from
		}
		if !p.slowed() {
			p.since = now
		}
		p.rate = max(minPaceRate, from/2)
		p.slowRate, p.slowedAt, p.status = p.rate, now, f.status
		p.slots = nil // reserved at the old rate
		d.log.InfoContext(l.ctx, "endpoint slowed", "endpoint_id", q.id, "status", f.status,
			"rate_per_s", fmt.Sprintf("%.1f", p.rate))
	}
	d.publishPacing(q)
	if p.retryAt.Sub(now) > longPause {
		l.giveBackQueued(q)
	}
}

// speedUp takes in a 2xx from a slowed endpoint: its rate grows back (see the Pacing comment).
func (l *loop) speedUp(q *endpointQueue) {
	p := q.pace
	p.rate = p.slowRate + p.ceiling*float64(l.d.now().Sub(p.slowedAt))/float64(recoverSpan)
	if p.rate >= p.ceiling {
		p.rate = p.ceiling
		p.slowedAt, p.status, p.since = time.Time{}, 0, time.Time{}
		l.d.log.InfoContext(l.ctx, "endpoint recovered", "endpoint_id", q.id)
		if p.limit == 0 {
			q.pace = nil // no limit: no longer paced
			delete(l.paced, q)
		}
	}
	l.d.publishPacing(q)
}

// reserveResult is what a reservation request (rs) got.
type reserveResult struct {
	rs     []aviso.SendReservation
	grants []aviso.SendGrant
	err    error
}

// reserver runs the loop's ReserveSends calls, one at a time, so the loop never waits on the
// store for them.
func (d *Dispatcher) reserver(ctx context.Context, reqs <-chan []aviso.SendReservation, results chan<- reserveResult) {
	for rs := range reqs {
		res := reserveResult{rs: rs}
		rctx, cancel := context.WithTimeout(ctx, reserveTimeout)
		res.grants, res.err = d.cfg.Store.ReserveSends(rctx, rs)
		cancel()
		if res.err != nil {
			res.err = fmt.Errorf("reserve sends: %w", res.err)
		}
		results <- res
	}
}

// maybeReserve asks for slots for the paced endpoints whose queued claims lack them, unless a
// reservation is under way. An endpoint's slots are topped up once they reach less than half
// the horizon ahead, so that a steady flow does not wait for the store between them.
func (l *loop) maybeReserve() {
	if l.reserving || len(l.paced) == 0 || l.ctx.Err() != nil {
		return
	}
	now := l.d.now()
	var rs []aviso.SendReservation
	for q := range l.paced {
		p := q.pace
		want := min(len(q.queued), p.holdCap()) - len(p.slots)
		if want <= 0 || p.reserving || now.Before(p.retryAt) {
			continue
		}
		if n := len(p.slots); n > 0 && p.slots[n-1].Sub(now) >= paceHorizon/2 {
			continue
		}
		p.reserving = true
		r := aviso.SendReservation{EndpointID: q.id, Now: now, Interval: p.interval(), Burst: p.burst(),
			Count: want, Horizon: paceHorizon}
		if p.notBefore.After(now) {
			r.NotBefore = p.notBefore
		}
		rs = append(rs, r)
	}
	if len(rs) > 0 {
		l.reserving = true
		l.reserveReqs <- rs
	}
}

// reserved takes in the slots a reservation got and starts what they allow.
func (l *loop) reserved(res reserveResult) {
	l.reserving = false
	now := l.d.now()
	for i, r := range res.rs {
		q := l.eps[r.EndpointID]
		if q == nil || q.pace == nil {
			continue
		}
		p := q.pace
		p.reserving = false
		if res.err != nil {
			p.retryAt, p.waited = now.Add(paceHorizon/4), true // try again shortly
			continue
		}
		g := res.grants[i]
		if g.Count == 0 {
			p.retryAt, p.waited = g.Next.Add(-paceHorizon), true
			if p.retryAt.Sub(now) > longPause {
				l.giveBackQueued(q)
			}
			continue
		}
		if p.slowedAt.After(r.Now) {
			continue // slowed since it asked: these slots are at the old rate
		}
		for j := range g.Count {
			// A slot already past when the grant arrives (burst credit reaches back
			// paceBurstSpan, and the call took its time) counts from the arrival: judged late
			// by its own time, the first slots of every grant to a fast endpoint could be
			// dropped before their first chance, grant after grant.
			at := g.First.Add(time.Duration(j) * r.Interval)
			if at.Before(now) {
				at = now
			}
			if !at.Before(p.notBefore) {
				p.slots = append(p.slots, at)
			}
		}
		l.readyIfSlot(q, now)
	}
	if res.err != nil && l.ctx.Err() == nil {
		l.d.log.ErrorContext(l.ctx, "dispatch loop", "error", res.err)
	}
	l.start()
}

// readyIfSlot makes a paced endpoint ready if it waits for a slot that has come.
func (l *loop) readyIfSlot(q *endpointQueue, now time.Time) {
	p := q.pace
	if q.ready || len(q.queued) == 0 || q.inFlight >= l.d.cfg.PerEndpoint || len(p.slots) == 0 || p.slots[0].After(now) {
		return
	}
	q.ready = true
	l.ready = append(l.ready, q)
}

// paceDue runs on the pace timer: endpoints whose slot has come become ready, and those whose
// wait for slots is over may be claimed again.
func (l *loop) paceDue() {
	now := l.d.now()
	for q := range l.paced {
		l.readyIfSlot(q, now)
		if p := q.pace; p.waited && !now.Before(p.retryAt) {
			p.waited = false
			if q.excluded {
				l.dirty = true
			}
		}
	}
	l.start()
}

// paceWait is how long until the pace timer should fire: the next slot of an endpoint waiting
// for one, or the end of a wait for slots; -1 when nothing waits.
func (l *loop) paceWait() time.Duration {
	now := l.d.now()
	var next time.Time
	for q := range l.paced {
		p := q.pace
		var at time.Time
		switch {
		case len(q.queued) > 0 && !q.ready && q.inFlight < l.d.cfg.PerEndpoint && len(p.slots) > 0:
			at = p.slots[0]
		case p.waited:
			at = p.retryAt
		default:
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		return -1
	}
	return max(0, next.Sub(now))
}

// Pacing is how this node paces one endpoint: the endpoint's limit and, while a 429 or 503
// has slowed it, the rate it is sent at and why.
type Pacing struct {
	Limit  int       // the endpoint's rate_limit; 0: none
	Rate   float64   // deliveries per second this node sends it at now
	Status int       // the answer that slowed it (429 or 503)
	Since  time.Time // when the slow-down began
}

// Slowed reports whether this node sends to the endpoint slower than its limit (or, without
// one, than it could) because the receiver answered 429 or 503, and how. Safe to call at any
// time.
func (d *Dispatcher) Slowed(endpointID string) (Pacing, bool) {
	d.paceMu.Lock()
	defer d.paceMu.Unlock()
	p, ok := d.slowedEps[endpointID]
	return p, ok
}

// publishPacing updates what Slowed reports of q.
func (d *Dispatcher) publishPacing(q *endpointQueue) {
	d.paceMu.Lock()
	defer d.paceMu.Unlock()
	p := q.pace
	if p == nil || !p.slowed() {
		delete(d.slowedEps, q.id)
		return
	}
	if d.slowedEps == nil {
		d.slowedEps = make(map[string]Pacing)
	}
	d.slowedEps[q.id] = Pacing{Limit: int(p.limit), Rate: p.rate, Status: p.status, Since: p.since}
}
