// Package dispatch is Aviso's delivery engine. A Dispatcher claims due deliveries from the
// store in batches, POSTs them to their endpoints concurrently, decides each outcome (success,
// retry later, failed) and records the attempts in batches.
//
// The loop, in Run (its state is the loop type; the select in Run names each event it reacts to):
//
//   - Claim: up to ClaimBatch due deliveries are leased to this node (Store.ClaimDeliveries) until
//     now+Lease, leaving out endpoints that already have enough work here. Leases make the work
//     survive a crash: a delivery leased by a dead node is claimed again once its lease expires,
//     so every delivery is attempted at least once (receivers deduplicate by webhook-id). On a
//     store shared by several nodes (aviso.LeaseKeeper, PostgreSQL) leases are short (15 s) and
//     renewed every Lease/3 while this node holds the deliveries (lease.go), and Run starts by
//     giving back what its NodeID held before: a restarted node resumes its deliveries at once,
//     and a dead node's move to the others within one lease.
//     Claims, releases and NextDueAt run in a goroutine of their own, one request at a time,
//     so the loop never waits on the store while attempts finish and start.
//   - Queue: claims wait in a queue per endpoint. At most Workers attempts are in flight in all,
//     and at most PerEndpoint to one endpoint, served round-robin, so a slow or dead endpoint
//     holds PerEndpoint workers and no more: the others keep delivering.
//     How much one endpoint may hold here (queued and in flight) follows its observed latency:
//     about a second of its work (holdCap), enough to keep a fast endpoint busy between claims,
//     few enough that a slow or dead one leaves the node's budget to the others and its claims
//     are all attempted well before their lease runs out. A new endpoint starts with a quarter
//     batch and its first finished attempt sets its latency. A claim that waited too long anyway
//     is released rather than attempted late. Claims that have waited RecheckAfter make the
//     next claim request check their endpoint first (at most once per RecheckAfter): one deleted
//     or disabled meanwhile has its queue given back, so a slow endpoint that its owner removed
//     or switched off stops getting requests within about a second, not after its queue drains.
//   - Pace: an endpoint with a rate limit, or one a 429 or 503 slowed, starts each attempt in a
//     send slot reserved from the store (Store.ReserveSends), so that its limit holds for the
//     sum of the nodes; its claims wait for their slots on a timer, a claim takes of it at most
//     what its slots leave room for (aviso.ClaimParams.Caps), and while it has none within
//     reach it is left out of claims. 429s and 503s halve its rate, successes bring it back
//     (additive increase, multiplicative decrease; pace.go states the rule).
//   - Attempt: webhook.Build renders the request (Standard Webhooks headers, signature, format);
//     it is POSTed through the SSRF guard with the endpoint's timeout; redirects are not
//     followed; at most aviso.MaxResponseBody bytes of the answer are kept.
//   - Decide: 2xx succeeds; anything else fails and is retried per the endpoint's schedule (or
//     Config.RetrySchedule) with ±10 % jitter, or after the receiver's Retry-After on 429/503,
//     until the schedule runs out and the delivery fails. The store counts consecutive failures
//     and disables the endpoint once DisableAfter of them span at least DisableMinSpan (or the
//     endpoint's own rule); a 410 Gone fails the delivery and disables the endpoint at once.
//   - Complete: one goroutine gathers completions and writes whatever has accumulated in one
//     Store.CompleteDeliveries call (group commit); while it writes, the next batch gathers.
//     A write that fails is tried again (internal/backoff) until it succeeds; meanwhile the
//     outcomes wait, their deliveries held (lease.go: never attempted again, even by a claim
//     that finds their lease run out), and the loop starts no attempt and claims nothing,
//     since their outcomes could not be recorded either. The first write that succeeds
//     resumes it.
//   - Sleep: until a store wake-up (new or retried work), a finished attempt or batch, the next
//     due time (Store.NextDueAt) or IdleWait, whichever is first.
//
// When Run's context is cancelled it stops claiming, releases the claims it has not started,
// lets the attempts in flight finish (each bounded by its endpoint's timeout), writes their
// completions and returns.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/encryption"
	"github.com/aviso-dev/aviso/internal/netguard"
)

// Config configures a Dispatcher. Zero fields take the documented defaults.
type Config struct {
	// Store holds the deliveries. Required.
	Store aviso.Store
	// Keys opens the sealed secrets of the endpoints claimed (see internal/encryption). Default
	// nil: secrets are used as stored, and an endpoint with sealed ones fails its attempts.
	Keys *encryption.Keyring
	// Logger receives the engine's logs. Default: a logger that discards.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// NodeID names this dispatcher as the owner of its leases. It must differ between nodes
	// running at once and stay the same across a node's restarts: on a store that renews leases
	// (aviso.LeaseKeeper, PostgreSQL) Run starts by giving back every lease held under it, so a
	// restarted node resumes at once what it had in flight when it stopped. Default: a random ID
	// (a restart then waits for its old leases to run out).
	NodeID string
	// Workers is the most attempts in flight at once. Default: 64.
	Workers int
	// PerEndpoint is the most attempts in flight to one endpoint at once. Default: 8.
	PerEndpoint int
	// ClaimBatch is the most deliveries claimed by one store call. Default: 256.
	ClaimBatch int
	// Lease is how long a claimed delivery stays reserved to this node unless renewed. On a
	// store that renews leases (aviso.LeaseKeeper, PostgreSQL), Run renews those of every
	// delivery it holds every Lease/3, so a lease may be much shorter than an attempt and a dead
	// node's deliveries move to the others once it runs out: default 15 seconds, at least 3.
	// Elsewhere (SQLite) it must exceed aviso.MaxTimeoutSeconds with room for queueing: default
	// 2 minutes.
	Lease time.Duration
	// RetrySchedule is the wait before each retry, for endpoints without their own.
	// Default: aviso.DefaultRetrySchedule().
	RetrySchedule []time.Duration
	// DisableAfter is how many consecutive failed attempts disable an endpoint, for endpoints
	// without their own rule (Endpoint.DisableAfter); negative: never. Default:
	// aviso.DisableAfterFailures.
	DisableAfter int
	// DisableMinSpan is how long an endpoint must have been failing before DisableAfter failures
	// disable it, for endpoints without their own rule; negative: no minimum. Default:
	// aviso.DisableMinSpan (1 hour), so that a short outage lets the retry schedule run.
	DisableMinSpan time.Duration
	// AllowPrivateNetworks lets deliveries reach loopback, private, link-local and metadata
	// addresses (development and tests). Default: false, such addresses are refused at dial time.
	AllowPrivateNetworks bool
	// Rand returns a number in [0, 1) that spreads retries (±10 % jitter); a constant 0.5 gives
	// the exact schedule. Default: math/rand/v2.Float64.
	Rand func() float64
	// IdleWait is the longest the loop sleeps when nothing is due: a safety net, since wake-ups
	// come from the store and from the next due time. Default: 1 second.
	IdleWait time.Duration
	// RecheckAfter is how long claims may wait in an endpoint's queue before the loop checks,
	// at most that often, that the endpoint still exists and is enabled; if not, its queued
	// claims are given back unattempted. Default: 1 second.
	RecheckAfter time.Duration
	// Observer watches the attempts of the loop (metrics, tracing). Default: none.
	Observer Observer
	// OnWrite hears the result of every CompleteDeliveries call (nil: written), for a node's
	// readiness: a store that cannot write fails them. Quick and safe for concurrent use.
	// Default: none.
	OnWrite func(err error)
	// Notifier, when set, is told of the deliveries that ran out of retries (the operational
	// event delivery.failed). Default: nil, nobody is told.
	Notifier Notifier
}

// Observer watches the attempts the loop makes. Attempt is called as an attempt of c starts;
// the attempt runs in the context it returns, and done is called with the attempt and the
// completion decided from it. Both must be safe for concurrent use and quick.
type Observer interface {
	Attempt(ctx context.Context, c *aviso.Claim) (_ context.Context, done func(*aviso.Attempt, aviso.Completion))
}

// Stats counts what a Dispatcher has done since it was created.
type Stats struct {
	Claimed           int64 // deliveries claimed from the store
	Released          int64 // claims given back unattempted (shutdown, waited too long, endpoint gone or disabled)
	Attempts          int64 // attempts finished
	Succeeded         int64 // attempts that got a 2xx
	Failed            int64 // attempts that did not
	InFlight          int64 // attempts under way now
	CompletionBatches int64 // CompleteDeliveries calls that succeeded
	CompletionErrors  int64 // CompleteDeliveries calls that failed (and were retried)
}

type counters struct {
	claimed, released, attempts, succeeded, failed, inFlight, batches, batchErrors atomic.Int64
}

// Dispatcher delivers webhooks. Create it with New; Run is its loop; Send and Do make single
// attempts outside the loop and are safe to call concurrently with Run.
type Dispatcher struct {
	cfg          Config
	now          func() time.Time
	log          *slog.Logger
	disable      aviso.DisablePolicy // the default rule, as recorded in completions (0 failures: never)
	transport    *http.Transport
	client       *http.Client
	bufs         sync.Pool // *[aviso.MaxResponseBody]byte
	auth         authState // OAuth2 tokens and per-endpoint TLS clients (auth.go)
	stats        counters
	running      atomic.Bool
	renews       bool        // the store is an aviso.LeaseKeeper: leases are renewed while held
	writeFailing atomic.Bool // the last completion write failed: start nothing, claim nothing
	paceMu       sync.Mutex
	slowedEps    map[string]Pacing // the endpoints a 429 or 503 slowed, for Slowed (pace.go)
}

// Lease defaults (Config.Lease).
const (
	DefaultLease        = 2 * time.Minute  // on a store that does not renew leases
	DefaultRenewedLease = 15 * time.Second // on one that does: a dead node's work moves within it
	MinRenewedLease     = 3 * time.Second
)

// maxQueueWait is how long a claim may wait in its endpoint's queue before it is given back
// rather than started: half a lease, so that its attempt ends before the lease does; with
// renewed leases, a minute, so that a node does not sit on work others could do.
func (d *Dispatcher) maxQueueWait() time.Duration {
	if d.renews {
		return time.Minute
	}
	return d.cfg.Lease / 2
}

// New validates cfg, fills in defaults and returns a Dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NodeID == "" {
		cfg.NodeID = aviso.NewID("node_", cfg.Now())
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{{"Workers", &cfg.Workers, 64}, {"PerEndpoint", &cfg.PerEndpoint, 8}, {"ClaimBatch", &cfg.ClaimBatch, 256}} {
		switch {
		case *f.v < 0:
			return nil, fmt.Errorf("dispatch: Config.%s must not be negative, got %d", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	_, renews := cfg.Store.(aviso.LeaseKeeper)
	switch {
	case cfg.Lease == 0 && renews:
		cfg.Lease = DefaultRenewedLease
	case cfg.Lease == 0:
		cfg.Lease = DefaultLease
	case renews && cfg.Lease < MinRenewedLease:
		return nil, fmt.Errorf("dispatch: Config.Lease must be at least %s, got %s", MinRenewedLease, cfg.Lease)
	case !renews && cfg.Lease <= aviso.MaxTimeoutSeconds*time.Second:
		return nil, fmt.Errorf("dispatch: Config.Lease must exceed the %s longest attempt on a store that does not renew leases, got %s",
			aviso.MaxTimeoutSeconds*time.Second, cfg.Lease)
	}
	if cfg.RetrySchedule == nil {
		cfg.RetrySchedule = aviso.DefaultRetrySchedule()
	}
	for _, w := range cfg.RetrySchedule {
		if w <= 0 {
			return nil, fmt.Errorf("dispatch: Config.RetrySchedule waits must be positive, got %s", w)
		}
	}
	if cfg.IdleWait < 0 {
		return nil, fmt.Errorf("dispatch: Config.IdleWait must not be negative, got %s", cfg.IdleWait)
	}
	if cfg.RecheckAfter < 0 {
		return nil, fmt.Errorf("dispatch: Config.RecheckAfter must not be negative, got %s", cfg.RecheckAfter)
	}
	if cfg.RecheckAfter == 0 {
		cfg.RecheckAfter = time.Second
	}
	if cfg.IdleWait == 0 {
		cfg.IdleWait = time.Second
	}
	d := &Dispatcher{cfg: cfg, now: cfg.Now, log: cfg.Logger, renews: renews}
	d.disable = aviso.DefaultDisablePolicy()
	switch {
	case cfg.DisableAfter < 0:
		d.disable.Failures = 0
	case cfg.DisableAfter > 0:
		d.disable.Failures = cfg.DisableAfter
	}
	switch {
	case cfg.DisableMinSpan < 0:
		d.disable.MinSpan = 0
	case cfg.DisableMinSpan > 0:
		d.disable.MinSpan = aviso.Duration(cfg.DisableMinSpan)
	}
	d.transport = newTransport(&netguard.Guard{AllowPrivate: cfg.AllowPrivateNetworks}, cfg.Workers)
	d.client = &http.Client{
		Transport: d.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	d.bufs.New = func() any { return new([aviso.MaxResponseBody]byte) }
	return d, nil
}

// DisablePolicy returns the auto-disable rule of endpoints without their own.
func (d *Dispatcher) DisablePolicy() aviso.DisablePolicy { return d.disable }

// NodeID returns the ID this dispatcher leases deliveries under.
func (d *Dispatcher) NodeID() string { return d.cfg.NodeID }

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() Stats {
	s := &d.stats
	return Stats{
		Claimed: s.claimed.Load(), Released: s.released.Load(), Attempts: s.attempts.Load(),
		Succeeded: s.succeeded.Load(), Failed: s.failed.Load(), InFlight: s.inFlight.Load(),
		CompletionBatches: s.batches.Load(), CompletionErrors: s.batchErrors.Load(),
	}
}

// Close closes idle connections to endpoints. Call it after Run has returned.
func (d *Dispatcher) Close() error {
	d.transport.CloseIdleConnections()
	d.auth.close()
	return nil
}

// decide turns an attempt into the completion the store records.
func (d *Dispatcher) decide(c *aviso.Claim, a *aviso.Attempt, retryAfter time.Duration) aviso.Completion {
	a.DeliveryID = c.Delivery.ID
	a.TenantID = c.Delivery.TenantID
	a.EndpointID = c.Delivery.EndpointID
	a.EventID = c.Delivery.EventID
	rule := d.disable
	if c.Endpoint.DisableAfter != nil {
		rule = *c.Endpoint.DisableAfter
	}
	comp := aviso.Completion{Attempt: a, Owner: d.cfg.NodeID, DisableAfter: rule.Failures,
		DisableMinSpan: time.Duration(rule.MinSpan)}
	if a.Succeeded() {
		comp.Status = aviso.StatusSucceeded
		return comp
	}
	if a.ResponseStatus == http.StatusGone {
		// The receiver says the endpoint is gone for good: no retry, and no more deliveries.
		comp.Status, comp.Disable = aviso.StatusFailed, aviso.DisabledGone
		return comp
	}
	schedule := d.cfg.RetrySchedule
	if len(c.Endpoint.RetrySchedule) > 0 {
		schedule = aviso.Durations(c.Endpoint.RetrySchedule)
	}
	jitter := d.cfg.Rand()*2 - 1
	next, ok := aviso.NextAttempt(d.now(), schedule, c.Delivery.RoundAttempts+1, retryAfter, jitter)
	if !ok {
		comp.Status = aviso.StatusFailed
		return comp
	}
	next = next.UTC()
	comp.Status = aviso.StatusPending
	comp.NextAttemptAt = &next
	return comp
}
