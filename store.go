package aviso

import (
	"context"
	"time"
)

// Store persists Aviso's data. Two implementations exist, sqlite.Store and postgres.Store, and
// both must pass the conformance suite in storetest: that suite, not this comment, is the final
// word on semantics. A semantic change lands in the suite first.
//
// Rules every implementation keeps:
//   - each method is one transaction: it happens entirely or not at all;
//   - stores only persist and claim: validation, matching events to endpoints, the retry schedule
//     and authorization live above them (service/, dispatch/);
//   - driver errors are mapped to the codes below in one function per store, by code, not text;
//   - tenant-scoped methods answer ENOTFOUND for a resource of another tenant;
//   - times are stored with at least millisecond precision and returned in UTC.
type Store interface {
	// CreateTenant stores a new tenant. ECONFLICT if the ID is taken.
	CreateTenant(ctx context.Context, t *Tenant) error
	// GetTenant returns a tenant. ENOTFOUND.
	GetTenant(ctx context.Context, id string) (*Tenant, error)
	// ListTenants lists tenants ordered by ID.
	ListTenants(ctx context.Context, p ListParams) (*Page[*Tenant], error)
	// UpdateTenant replaces the name and metadata and sets UpdatedAt. ENOTFOUND.
	UpdateTenant(ctx context.Context, t *Tenant) error
	// DeleteTenant removes a tenant and everything it owns: keys, endpoints, events, deliveries,
	// attempts. ENOTFOUND.
	DeleteTenant(ctx context.Context, id string) error

	// SaveAPIKey inserts a key, or replaces the key with the same ID (how the root key is set).
	// ENOTFOUND if TenantID names no tenant.
	SaveAPIKey(ctx context.Context, k *APIKey) error
	// GetAPIKey returns a key by ID. ENOTFOUND.
	GetAPIKey(ctx context.Context, id string) (*APIKey, error)
	// GetAPIKeyByHash returns the key whose Hash is hash. ENOTFOUND.
	GetAPIKeyByHash(ctx context.Context, hash string) (*APIKey, error)

	// CreateEventType adds to the catalog. ECONFLICT if the name is taken.
	CreateEventType(ctx context.Context, t *EventType) error
	// GetEventType returns a catalog entry. ENOTFOUND.
	GetEventType(ctx context.Context, name string) (*EventType, error)
	// ListEventTypes lists the catalog ordered by name.
	ListEventTypes(ctx context.Context, p ListParams) (*Page[*EventType], error)
	// UpdateEventType replaces description(s), schema and example and sets UpdatedAt. ENOTFOUND.
	UpdateEventType(ctx context.Context, t *EventType) error
	// DeleteEventType removes a catalog entry; events already published keep their type. ENOTFOUND.
	DeleteEventType(ctx context.Context, name string) error

	// CreateEndpoint stores a new endpoint. ENOTFOUND if the tenant does not exist; ECONFLICT if
	// the ID is taken.
	CreateEndpoint(ctx context.Context, e *Endpoint) error
	// GetEndpoint returns one endpoint of a tenant, with its secrets and token. ENOTFOUND.
	GetEndpoint(ctx context.Context, tenantID, id string) (*Endpoint, error)
	// ListEndpoints lists a tenant's endpoints ordered by ID.
	ListEndpoints(ctx context.Context, p ListEndpointsParams) (*Page[*Endpoint], error)
	// UpdateEndpoint replaces every field but ID, TenantID, CreatedAt, Disabled, DisabledReason,
	// ConsecutiveFailures and FailingSince, and sets UpdatedAt. ENOTFOUND.
	UpdateEndpoint(ctx context.Context, e *Endpoint) error
	// SetEndpointDisabled disables (with a reason) or re-enables an endpoint. Disabling marks the
	// endpoint's pending deliveries failed with LastError "endpoint disabled" (a replay after
	// re-enabling queues them again). Enabling resets ConsecutiveFailures and FailingSince. Returns the endpoint
	// as stored. ENOTFOUND.
	SetEndpointDisabled(ctx context.Context, p SetEndpointDisabledParams) (*Endpoint, error)
	// DeleteEndpoint removes an endpoint and its deliveries and attempts. ENOTFOUND.
	DeleteEndpoint(ctx context.Context, tenantID, id string) error

	// InsertEvents stores events and their deliveries, all in one transaction, and wakes the
	// dispatchers (see Wakeups). An event whose (TenantID, ID) already exists is not stored
	// again and none of its deliveries are inserted: the result holds the stored event and
	// Created false. Deliveries whose endpoint no longer exists or is disabled are skipped (the
	// caller's list of endpoints may be a moment old). ENOTFOUND if a tenant does not exist.
	// A delivery's ID is minted at its CreatedAt (NewID(PrefixDelivery, CreatedAt)), so a store
	// may find the deliveries created in a time window through an ID range (IDFloor, IDCeiling).
	InsertEvents(ctx context.Context, events []NewEvent) ([]InsertedEvent, error)
	// GetEvent returns one event of a tenant. ENOTFOUND.
	GetEvent(ctx context.Context, tenantID, id string) (*Event, error)
	// ListEvents lists a tenant's events in publication order (oldest first, or newest first
	// with Desc), optionally filtered by type, external reference and IDs.
	ListEvents(ctx context.Context, p ListEventsParams) (*Page[*Event], error)
	// ReadFeed reads a tenant's events feed after p.After (see feed.go for the invariant that
	// makes it resumable): up to Limit events in feed order, each with its position. EINVALIDCURSOR
	// for a cursor this store cannot have handed out.
	ReadFeed(ctx context.Context, p FeedParams) (*FeedPage, error)
	// EventsPublished returns a channel that is closed after the next commit that stores an event
	// of the tenant, from this process or, where the backend can tell (PostgreSQL LISTEN/NOTIFY),
	// from another; spurious closes happen. A reader takes it before reading the feed, so that a
	// publication between its read and its wait is not missed.
	EventsPublished(tenantID string) <-chan struct{}

	// GetDelivery returns one delivery with all its attempts, oldest first. ENOTFOUND.
	GetDelivery(ctx context.Context, tenantID, id string) (*Delivery, error)
	// ListDeliveries lists a tenant's deliveries by ID (creation order; newest first with Desc).
	// A page filtered by event or by endpoint reads that event's or endpoint's deliveries, not
	// the tenant's.
	ListDeliveries(ctx context.Context, p ListDeliveriesParams) (*Page[*Delivery], error)
	// RetryDelivery queues a delivery for an attempt now whatever its status, with a fresh round
	// of the retry schedule (RoundAttempts 0), and wakes the dispatchers. ENOTFOUND.
	RetryDelivery(ctx context.Context, tenantID, id string, now time.Time) (*Delivery, error)
	// ReplayDeliveries queues again, as RetryDelivery does, the endpoint's deliveries created at
	// or after Since (and before Until, unless zero) whose status is failed (or failed and succeeded, with All). It returns how
	// many were queued. ENOTFOUND if the endpoint does not exist.
	ReplayDeliveries(ctx context.Context, p ReplayParams) (int, error)
	// CreateMissedDeliveries gives the endpoint a new pending delivery, due at Now, for each of
	// its tenant's events created at or after Since (and before Until, unless zero) whose type is
	// in Types (empty: any type) and that has no delivery to it: the events published while it
	// was disabled, or before it existed. IDs are minted at Now. It returns how many it created,
	// and wakes the dispatchers. ENOTFOUND if the endpoint does not exist.
	CreateMissedDeliveries(ctx context.Context, p MissedParams) (int, error)

	// ClaimDeliveries leases up to Limit pending deliveries due at Now (NextAttemptAt ≤ Now) of
	// enabled endpoints, oldest due first, at most Caps[id] of an endpoint in Caps (none if 0),
	// skipping deliveries whose lease is still valid. Each claimed delivery is leased to Owner
	// until LeaseUntil; while the lease is valid no other claim returns it. Safe to call from
	// several processes at once where the store is shared (PostgreSQL); an SQLite store belongs to
	// one process and keeps its leases in memory.
	//
	// Ordering: on an endpoint whose Ordering is OrderingExternalReference, a delivery whose event
	// has an external reference is not claimed while an earlier delivery (by its event's
	// publication) of the same endpoint and reference is pending: due, waiting for a retry, or
	// leased. So one claim never returns two deliveries of one reference, a later one waits while
	// an earlier one is retried, and it may go once the earlier one has succeeded or failed for
	// good (its schedule ran out, or the endpoint was disabled). Other references and events
	// without one are not held. The rule reads the deliveries as they are now: a delivery queued
	// again by hand (RetryDelivery, ReplayDeliveries) or created late (CreateMissedDeliveries)
	// holds the later ones of its reference still pending (not one already in flight, nor one
	// already delivered); a delivery deleted (with its event or endpoint) holds nothing. Turning
	// ordering on applies the rule to the endpoint's deliveries already stored. A waiting
	// delivery's NextAttemptAt says when it would go at the earliest, so that claims need not
	// step over it: one created (InsertEvents, CreateMissedDeliveries) behind a pending one of its
	// endpoint and reference is created held, due OrderingHold after its creation or at the
	// latest earlier one's NextAttemptAt if that is later; one waiting behind an earlier one being
	// retried may be moved to the earlier one's retry (it cannot go before). Once the earlier one
	// has finished, the next one is due at once. The rule above, not the due time, decides: a
	// held delivery found due while an earlier one is pending is not claimed.
	ClaimDeliveries(ctx context.Context, p ClaimParams) ([]*Claim, error)
	// CompleteDeliveries records attempts in one transaction: for each, insert the attempt,
	// update the delivery (status, counts, NextAttemptAt, last response), release its lease,
	// and update the endpoint's ConsecutiveFailures and FailingSince (reset on success; on a
	// failure +1, and FailingSince set to the attempt's time if it was unset). When DisableAfter
	// > 0, the count reaches it and the attempt is at least DisableMinSpan after FailingSince,
	// the endpoint is disabled with reason DisabledConsecutiveFailed exactly as
	// SetEndpointDisabled does; a failure whose Disable is set disables it with that reason. It
	// returns the IDs of the endpoints it disabled, in the order it disabled them. A completion that would
	// leave its delivery pending (a retry) while the endpoint is disabled (an attempt that was
	// in flight when it was disabled, or one after the attempt that disabled it) fails the
	// delivery as disabling does, LastError "endpoint disabled"; a success is recorded as one. A
	// completion whose delivery or endpoint has been deleted is skipped. The delivery's own
	// endpoint is authoritative: an Attempt that names another is recorded on the delivery, with
	// the delivery's endpoint, and counts toward that endpoint's failures. A completion of a
	// delivery of an ordered endpoint wakes the dispatchers: the next one of its reference (see
	// ClaimDeliveries) may be claimable now.
	CompleteDeliveries(ctx context.Context, cs []Completion) (disabled []string, err error)
	// ReleaseDeliveries gives up Owner's leases on the given deliveries so they can be claimed
	// at once (graceful shutdown of work not yet started).
	ReleaseDeliveries(ctx context.Context, owner string, ids []string) error
	// NextDueAt returns the earliest NextAttemptAt of a pending delivery of an enabled endpoint,
	// and false when there is none.
	NextDueAt(ctx context.Context) (time.Time, bool, error)
	// ReserveSends reserves send slots for rate-limited endpoints (Endpoint.RateLimit, or one
	// slowed by 429s): for each of rs, by ReserveSlots from the endpoint's pacing state, all in
	// one transaction; it returns the grants in the order of rs. The state is shared by every
	// process on the store (PostgreSQL), so a limit holds for the sum of the nodes; an SQLite
	// store belongs to one process and keeps it in memory. An endpoint that does not exist is
	// granted nothing (Count 0).
	ReserveSends(ctx context.Context, rs []SendReservation) ([]SendGrant, error)
	// Wakeups returns a channel that receives (without blocking the sender; signals may merge)
	// after any commit that makes a delivery due now, from this process or, where the backend
	// can tell (PostgreSQL LISTEN/NOTIFY), from another.
	Wakeups() <-chan struct{}

	// EndpointStats returns, per endpoint of the tenant, counts of attempts since Since and the
	// last attempt's time and status.
	EndpointStats(ctx context.Context, tenantID string, since time.Time) (map[string]EndpointStats, error)
	// AttemptHistogram counts a tenant's attempts (optionally of one endpoint) from Since in
	// buckets of Bucket, oldest first, every bucket present even when empty.
	AttemptHistogram(ctx context.Context, p HistogramParams) ([]HistogramBucket, error)

	// AttemptLatency returns the count and the 50th and 95th percentiles (nearest rank: the
	// smallest duration at or above which that share of attempts lies) of the durations of one
	// endpoint's attempts with Since ≤ At < Until; zero values without attempts.
	AttemptLatency(ctx context.Context, p LatencyParams) (Latency, error)

	// RevokeSession records that a dashboard session or portal link, named by its id, has ended
	// before its expiry: SessionRevoked reports it until expires, after which the session or link
	// is invalid anyway. Revoking an id again keeps the later expiry. Records expired at now are
	// deleted in the same transaction.
	RevokeSession(ctx context.Context, id string, expires, now time.Time) error
	// SessionRevoked reports whether any of ids has been revoked and its record has not expired
	// at now.
	SessionRevoked(ctx context.Context, now time.Time, ids ...string) (bool, error)

	// QueueStats describes the delivery queue across every tenant at now (for metrics): the
	// pending deliveries of enabled endpoints due by now and due later, the oldest due one's
	// NextAttemptAt, and how many endpoints are disabled.
	QueueStats(ctx context.Context, now time.Time) (QueueStats, error)

	// Prune deletes up to Limit events created before Before, with their deliveries and attempts,
	// and returns how many events it deleted. Called repeatedly in small batches.
	Prune(ctx context.Context, before time.Time, limit int) (int, error)

	// Ping checks the store is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// LeaseKeeper is implemented by a store whose leases outlive the process that took them and
// bind every process on the store (PostgreSQL). A dispatcher on such a store keeps its leases
// short and renews them while it holds the deliveries (queued, in flight, or waiting for their
// outcome to be written), so a dead node's work moves to the others within one short lease; and
// as it starts it gives back every lease still held under its node ID, whose deliveries a crash
// left in flight nowhere, so a restarted node resumes them at once. An SQLite store keeps its
// leases in memory: a restart already frees them, and no other process can take them over.
type LeaseKeeper interface {
	// RenewLeases extends to until Owner's leases on those of ids that are pending and still
	// leased to Owner; the others are left alone.
	RenewLeases(ctx context.Context, owner string, ids []string, until time.Time) error
	// ReleaseOwned gives up every lease owner holds, wakes the dispatchers if there was any, and
	// returns how many.
	ReleaseOwned(ctx context.Context, owner string) (int, error)
}

// Page is one page of a list. NextCursor, when HasMore, is passed as After for the next page.
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
	HasMore    bool   `json:"has_more"`
}

// ListParams pages through a list. Limit ≤ 0 means DefaultLimit; more than MaxLimit is cut.
type ListParams struct {
	After string // opaque cursor from a previous Page; "" for the first page
	Limit int
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Size returns the effective page size.
func (p ListParams) Size() int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// ListEndpointsParams filters a tenant's endpoints.
type ListEndpointsParams struct {
	ListParams
	TenantID string
	Enabled  bool // only enabled endpoints
}

// ListEventsParams filters a tenant's events.
type ListEventsParams struct {
	ListParams
	TenantID          string
	Type              string   // "" for any
	ExternalReference string   // "" for any
	IDs               []string // only the events with these IDs (at most MaxLimit); empty for any
	Desc              bool     // newest first
}

// ListDeliveriesParams filters a tenant's deliveries. Empty fields do not filter.
type ListDeliveriesParams struct {
	ListParams
	TenantID   string
	EventID    string
	EndpointID string
	Status     DeliveryStatus
	EventType  string
	// ExternalReference keeps the deliveries of the events that carry it.
	ExternalReference string
	Since             time.Time // created at or after
	Until             time.Time // created before
	Desc              bool      // newest first
}

// SetEndpointDisabledParams disables or re-enables an endpoint.
type SetEndpointDisabledParams struct {
	TenantID string
	ID       string
	Disabled bool
	Reason   string // DisabledByUser, DisabledConsecutiveFailed or DisabledGone; ignored when enabling
	Now      time.Time
}

// NewEvent is an event to insert with the deliveries it fans out to.
type NewEvent struct {
	Event *Event
	// Deliveries are stored as new: pending and never attempted, whatever their Status,
	// AttemptCount, RoundAttempts, LastResponseStatus and LastError say. NextAttemptAt (usually
	// the event's CreatedAt), CreatedAt and UpdatedAt are stored as given.
	Deliveries []*Delivery
}

// InsertedEvent is the outcome of inserting one event.
type InsertedEvent struct {
	Event   *Event
	Created bool // false: an event with this ID already existed and is returned unchanged
}

// ReplayParams selects deliveries of one endpoint to queue again.
type ReplayParams struct {
	TenantID   string
	EndpointID string
	Since      time.Time
	Until      time.Time // created before; zero: no end
	All        bool      // failed and succeeded; otherwise failed only
	Now        time.Time
}

// MissedParams selects the events an endpoint never had a delivery of.
type MissedParams struct {
	TenantID   string
	EndpointID string
	Since      time.Time
	Until      time.Time // zero: no end
	Types      []string  // empty: any type
	Now        time.Time
}

// ClaimParams leases due deliveries.
type ClaimParams struct {
	Now        time.Time
	Limit      int
	Owner      string // the claiming node's ID
	LeaseUntil time.Time
	// Caps bounds what one claim takes of some endpoints: at most Caps[id] deliveries of
	// endpoint id, none when 0. A dispatcher caps the endpoints that hold enough work already
	// (0) and paced ones (the room their send slots leave), so that their backlog, the oldest
	// due, never fills a claim only to be given back. A claim with caps goes endpoint by
	// endpoint.
	Caps map[string]int
}

// LeftOut lists the endpoints capped at 0.
func (p ClaimParams) LeftOut() []string {
	var ids []string
	for id := range p.Caps {
		if p.CapOf(id) == 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// CapOf is how many deliveries of endpoint id the claim may take: its cap, at most Limit.
func (p ClaimParams) CapOf(id string) int {
	if c, ok := p.Caps[id]; ok {
		return max(0, min(c, p.Limit))
	}
	return p.Limit
}

// Claim is a leased delivery with what is needed to attempt it.
type Claim struct {
	Delivery *Delivery
	Event    *Event
	Endpoint *Endpoint
}

// Completion is the outcome of one attempt, as the dispatcher decided it.
type Completion struct {
	Attempt       *Attempt       // ID, DeliveryID, TenantID, EndpointID and EventID set
	Status        DeliveryStatus // pending (another attempt will follow), succeeded or failed
	NextAttemptAt *time.Time     // when Status is pending
	Owner         string         // the lease holder recording it
	DisableAfter  int            // consecutive failures that disable the endpoint; 0: never
	// DisableMinSpan is how long the endpoint must have been failing (since FailingSince) for
	// DisableAfter failures to disable it.
	DisableMinSpan time.Duration
	// Disable, when set, disables the endpoint with this reason whatever its count (a 410 Gone:
	// aviso.DisabledGone).
	Disable string
}

// FailureRun is what CompleteDeliveries keeps of an endpoint's consecutive failures.
type FailureRun struct {
	Failures int        // ConsecutiveFailures
	Since    *time.Time // FailingSince
	Disabled bool
}

// Record applies c, a completion of one of the endpoint's deliveries, to the run as
// CompleteDeliveries does, and returns the status c leaves its delivery in and the reason c
// disables the endpoint with ("" for none). A retry on a disabled endpoint fails the delivery
// (LastError "endpoint disabled"), as disabling fails the endpoint's pending deliveries.
func (r *FailureRun) Record(c Completion) (status DeliveryStatus, disable string) {
	if c.Status == StatusSucceeded {
		r.Failures, r.Since = 0, nil
		return c.Status, ""
	}
	at := c.Attempt.At
	r.Failures++
	if r.Since == nil {
		r.Since = &at
	}
	switch {
	case r.Disabled && c.Status == StatusPending:
		return StatusFailed, ""
	case r.Disabled:
	case c.Disable != "":
		disable = c.Disable
	case c.DisableAfter > 0 && r.Failures >= c.DisableAfter && at.Sub(*r.Since) >= c.DisableMinSpan:
		disable = DisabledConsecutiveFailed
	}
	r.Disabled = r.Disabled || disable != ""
	return c.Status, disable
}

// QueueStats is the state of the delivery queue at one instant (Store.QueueStats).
type QueueStats struct {
	Due               int64      // pending deliveries of enabled endpoints with NextAttemptAt ≤ now
	Scheduled         int64      // pending deliveries of enabled endpoints due after now (retries waiting)
	OldestDue         *time.Time // the earliest NextAttemptAt among the due ones; nil when none is due
	DisabledEndpoints int64      // endpoints disabled, by hand or after failures
}

// EndpointStats summarises an endpoint's recent attempts.
type EndpointStats struct {
	Succeeded          int        `json:"succeeded"`
	Failed             int        `json:"failed"`
	LastAttemptAt      *time.Time `json:"last_attempt_at,omitempty"`
	LastResponseStatus int        `json:"last_response_status,omitempty"`
	LastError          string     `json:"last_error,omitempty"`
}

// HistogramParams selects the attempts to count.
type HistogramParams struct {
	TenantID   string
	EndpointID string // "" for all of the tenant's endpoints
	Since      time.Time
	Until      time.Time
	Bucket     time.Duration
}

// MaxBuckets bounds a histogram, so that a tiny Bucket cannot make a huge answer.
const MaxBuckets = 10_000

// Buckets returns the empty buckets of p's histogram: from Since, Bucket apart, the last one
// possibly partial. EINVALID for a Bucket under a microsecond or more than MaxBuckets buckets.
func (p HistogramParams) Buckets() ([]HistogramBucket, error) {
	if p.Bucket < time.Microsecond {
		return nil, Invalid("bucket", "must be at least a microsecond")
	}
	if !p.Until.After(p.Since) {
		return []HistogramBucket{}, nil
	}
	n := (p.Until.Sub(p.Since) + p.Bucket - 1) / p.Bucket
	if n > MaxBuckets {
		return nil, Invalid("bucket", "makes more than %d buckets", MaxBuckets)
	}
	out := make([]HistogramBucket, n)
	for i := range out {
		out[i].Start = p.Since.Add(time.Duration(i) * p.Bucket).UTC()
	}
	return out, nil
}

// LatencyParams selects one endpoint's attempts in a time window.
type LatencyParams struct {
	TenantID   string
	EndpointID string
	Since      time.Time
	Until      time.Time
}

// Latency summarises attempt durations.
type Latency struct {
	Count int   `json:"count"`
	P50MS int64 `json:"p50_ms"`
	P95MS int64 `json:"p95_ms"`
}

// HistogramBucket counts attempts that started in [Start, Start+Bucket).
type HistogramBucket struct {
	Start     time.Time `json:"start"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
}
