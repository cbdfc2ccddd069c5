// Package outbox relays a transactional outbox: the platform writes each event into a table of
// its own database (aviso_outbox, DDL in docs/outbox/) in the same transaction as the change it
// reports, and a Relay publishes the committed rows through the service layer — the same
// validation, schemas and idempotency as POST /v1/tenants/{tenant}/events — then deletes them
// (or marks them relayed, with Config.Keep). PostgreSQL and MariaDB/MySQL sources are supported.
//
// The one invariant: a row stays in aviso_outbox, unmarked, until its event is committed in
// Aviso (or the row is moved to aviso_outbox_rejected). The relay keeps no cursor: each batch is
// "the oldest unrelayed rows, in id order", read with SELECT … FOR UPDATE SKIP LOCKED in a
// transaction that publishes them and then deletes (or marks) exactly those rows. So:
//   - rows committed out of id order are not skipped: a transaction that took id 7 and commits
//     after the one that took id 8 leaves row 7 in the table, and the next read finds it. Nothing
//     ever moved past it, because nothing moves; an uncommitted row is invisible to (PostgreSQL)
//     or locked against (InnoDB; SKIP LOCKED passes over it) the read, and is read once it commits;
//   - a crash anywhere — of Aviso, of the relay, or of the source database, whose open
//     transaction dies with it — loses nothing and duplicates no event: a row whose publish
//     committed in Aviso but whose delete did not is read again and published again with the
//     same event id — the row's event_id, or one derived from the source's name and the row id,
//     which the database never reuses — which Aviso's idempotent publish answers with the stored
//     event and no new deliveries;
//   - several relays on one source (several Aviso nodes with the same --outbox, and the two
//     workers each relay runs per PostgreSQL source) do not double work: on PostgreSQL a batch's
//     rows are locked until its transaction ends and the others skip them, so they share the rows; on MariaDB one relay at a time holds the source's
//     named lock (GET_LOCK) and the others stand by, because two InnoDB relays deleting
//     neighbouring rows deadlock.
//
// Rows of one tenant are published in id order within a batch; across batches and nodes order is
// the commit order at best, as for events published through the API by concurrent callers.
//
// A row the service refuses for the row's own sake (unknown tenant or type, data that is not
// JSON or fails the type's schema, an invalid event_id) is copied to aviso_outbox_rejected with
// the reason, logged, and removed from the outbox in the same transaction: it never blocks the
// rows behind it. Any other failure (Aviso's store or the source unreachable) rolls the batch
// back; the relay retries it with a backoff.
//
// PostgreSQL sources are woken by the NOTIFY the DDL's trigger sends at commit and are polled
// every second besides; MariaDB has no such signal and is polled every 100 ms.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// Defaults of Config.
const (
	DefaultBatchSize        = service.MaxBatch
	DefaultPollPostgres     = time.Second
	DefaultPollMariaDB      = 100 * time.Millisecond
	DefaultMaxBackoff       = 30 * time.Second
	DefaultWorkers          = 2
	DefaultStatusTimeout    = 2 * time.Second
	notifyChannel           = "aviso_outbox"
	principalKeyID          = "outbox"
	rejectedReasonMaxLength = 1000
)

// Config configures a Relay.
type Config struct {
	// Sources are the databases to relay from: postgres://… or mysql://… URLs. A URL may carry
	// aviso_source=<name> to name the source; the default name is the URL's scheme, host, port
	// and database (and search_path), without credentials. Event ids are derived from the name,
	// so keep it stable when the database moves. Required: at least one.
	Sources []string
	// Keep marks relayed rows (relayed_at) instead of deleting them. Default false: delete.
	Keep bool
	// Service publishes the events. Required.
	Service *service.Service
	// Logger receives the relay's logs. Default: discard.
	Logger *slog.Logger
	// BatchSize is how many rows one transaction relays. Default 1,000 (service.MaxBatch).
	BatchSize int
	// PollInterval is how often a source is read when nothing wakes the relay. Default 1 s on
	// PostgreSQL (where NOTIFY wakes it at once), 100 ms on MariaDB.
	PollInterval time.Duration
	// MaxBackoff caps the wait before retrying a source after an error. Default 30 s.
	MaxBackoff time.Duration
	// Workers is how many batches of one PostgreSQL source a relay works on at once (SKIP
	// LOCKED gives each its own rows), so that reading, publishing and deleting overlap.
	// Default 2. A MariaDB source has one (see lead).
	Workers int
}

// Relay moves outbox rows from the sources into Aviso. Create it with New, run it with Run.
type Relay struct {
	cfg     Config
	log     *slog.Logger
	svc     *service.Service
	sources []*source
}

// New validates cfg, parses the source URLs and returns a Relay. It does not connect: a source
// that cannot be reached is retried by Run and reported by Status and Ping.
func New(cfg Config) (*Relay, error) {
	if cfg.Service == nil {
		return nil, errors.New("outbox: Config.Service is required")
	}
	if len(cfg.Sources) == 0 {
		return nil, errors.New("outbox: at least one source URL is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > service.MaxBatch {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	r := &Relay{cfg: cfg, log: cfg.Logger, svc: cfg.Service}
	names := map[string]bool{}
	for _, u := range cfg.Sources {
		s, err := newSource(u, r)
		if err != nil {
			r.Close()
			return nil, err
		}
		if names[s.name] {
			r.Close()
			return nil, fmt.Errorf("outbox: source %q is given twice", s.name)
		}
		names[s.name] = true
		r.sources = append(r.sources, s)
	}
	return r, nil
}

// Run relays every source until ctx ends, then closes the connections. Errors are logged and
// retried, never returned: it returns nil when ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range r.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	wg.Wait()
	return r.Close()
}

// Close releases the sources' connections (Run does it when it returns).
func (r *Relay) Close() error {
	var errs []error
	for _, s := range r.sources {
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Sources returns the sources' names, in the order they were given.
func (r *Relay) Sources() []string {
	out := make([]string, len(r.sources))
	for i, s := range r.sources {
		out[i] = s.name
	}
	return out
}

// EventID returns the id of the event the relay publishes for the row rowID of the named source
// when the row's event_id is NULL, "" for an unknown source.
func (r *Relay) EventID(source string, rowID int64) string {
	for _, s := range r.sources {
		if s.name == source {
			return s.eventID(row{id: rowID})
		}
	}
	return ""
}

// Status is what a relay knows of one source.
type Status struct {
	Source string `json:"source"`
	Kind   string `json:"kind"` // "postgres" or "mariadb"
	// Reachable is false when the source did not answer the status read; Error says why.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// LastRelayedID is the highest row id this node relayed since it started (0: none yet), at
	// LastRelayedAt.
	LastRelayedID int64      `json:"last_relayed_id"`
	LastRelayedAt *time.Time `json:"last_relayed_at,omitempty"`
	// Relayed counts the rows this node published since it started; Repeated, those among them
	// whose event Aviso already held (a row read again after a crash, or an event_id used twice).
	Relayed  int64 `json:"relayed"`
	Repeated int64 `json:"repeated"`
	// LagRows is how many rows wait in aviso_outbox; LagSeconds, how old the oldest is.
	LagRows    int64   `json:"lag_rows"`
	LagSeconds float64 `json:"lag_seconds"`
	// Rejected is how many rows aviso_outbox_rejected holds.
	Rejected int64 `json:"rejected"`
	// Standby is true on a MariaDB source another node relays (one relay per MariaDB source
	// works at a time; this one takes over when that one stops).
	Standby bool `json:"standby"`
	// LastError is the relay's last failure on this source, cleared by the next success.
	LastError string `json:"last_error,omitempty"`
}

// Status reads each source's lag and rejected count (each read bounded by 2 s) and returns
// them with this node's counters, in the order the sources were given. Root only (EFORBIDDEN).
func (r *Relay) Status(ctx context.Context, p aviso.Principal) ([]Status, error) {
	if !p.IsRoot() {
		return nil, aviso.Errorf(aviso.EFORBIDDEN, "a tenant key cannot read the outbox status; use the root key")
	}
	out := make([]Status, len(r.sources))
	var wg sync.WaitGroup
	for i, s := range r.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.status(ctx)
		}()
	}
	wg.Wait()
	return out, nil
}

// Ping checks every source answers (readiness): EUNAVAILABLE naming the first that does not.
func (r *Relay) Ping(ctx context.Context) error {
	for _, s := range r.sources {
		pctx, cancel := context.WithTimeout(ctx, DefaultStatusTimeout)
		err := s.db.PingContext(pctx)
		cancel()
		if err != nil {
			return &aviso.Error{Code: aviso.EUNAVAILABLE, Message: fmt.Sprintf("outbox source %s is unreachable", s.name), Err: err}
		}
	}
	return nil
}

// Rejected is a row the relay moved aside to aviso_outbox_rejected.
type Rejected struct {
	Source            string    `json:"source"`
	ID                int64     `json:"id"` // the row's id in aviso_outbox
	TenantID          string    `json:"tenant_id"`
	Type              string    `json:"type"`
	ExternalReference string    `json:"external_reference,omitempty"`
	EventID           string    `json:"event_id,omitempty"`
	Data              string    `json:"data"` // as the row held it (it may not be JSON)
	Reason            string    `json:"reason"`
	CreatedAt         time.Time `json:"created_at"`
	RejectedAt        time.Time `json:"rejected_at"`
}

// ListRejectedParams selects a page of rejected rows.
type ListRejectedParams struct {
	aviso.ListParams
	// Source names the source; it may be empty when there is only one.
	Source string
}

// ListRejected lists a source's rejected rows, newest first. Root only (EFORBIDDEN); EINVALID
// when the source is unknown, or not named while there are several; EUNAVAILABLE when the
// source cannot be read.
func (r *Relay) ListRejected(ctx context.Context, p aviso.Principal, lp ListRejectedParams) (*aviso.Page[*Rejected], error) {
	if !p.IsRoot() {
		return nil, aviso.Errorf(aviso.EFORBIDDEN, "a tenant key cannot read the outbox; use the root key")
	}
	s, err := r.source(lp.Source)
	if err != nil {
		return nil, err
	}
	return s.listRejected(ctx, lp.ListParams)
}

func (r *Relay) source(name string) (*source, error) {
	if name == "" {
		if len(r.sources) == 1 {
			return r.sources[0], nil
		}
		return nil, aviso.Invalid("source", "several outbox sources are configured: name one of %q", r.Sources())
	}
	for _, s := range r.sources {
		if s.name == name {
			return s, nil
		}
	}
	return nil, aviso.Invalid("source", "%q is not an outbox source; the sources are %q", name, r.Sources())
}
