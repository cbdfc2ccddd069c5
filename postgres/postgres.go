// Package postgres implements aviso.Store on PostgreSQL through pgx, for running several Aviso
// nodes on one database.
//
// Nodes share the work without talking to each other: ClaimDeliveries leases a batch of due
// deliveries in one statement with FOR UPDATE SKIP LOCKED, so two nodes never hold the same
// delivery while its lease is valid, and a node that dies loses its leases when they expire.
// Commits that make work due are announced on the channel aviso_work: every Store keeps one
// connection LISTENing on it and turns notifications into signals on Wakeups, so idle nodes react
// in milliseconds without polling hard. Publishes announce their tenants on aviso_events the same
// way, for the events feed's readers (feed.go, EventsPublished). The NOTIFY is sent after the commit, not inside the
// transaction (notify.go): PostgreSQL commits the transactions that notify one at a time.
//
// The schema is created by embedded, versioned migrations (migrations/*.sql) that Migrate runs in
// one transaction under an advisory lock, so any number of nodes may start at once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/backoff"
	"github.com/aviso-dev/aviso/internal/broadcast"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notifyChannel is the LISTEN/NOTIFY channel on which commits that make work due are announced.
const notifyChannel = "aviso_work"

// Options configure Open and Migrate.
type Options struct {
	// Logger receives the store's own events (listener reconnects, migrations). Default: a logger
	// that discards everything.
	Logger *slog.Logger
	// Migrate runs the pending migrations on Open. Default false: Open then only checks that the
	// schema is current and fails if it is not.
	Migrate bool
	// Schema, when set, is created if missing and used as the search_path of every connection,
	// so that several stores (tests, or several installations) share one database. Default "":
	// the server's search_path (normally public).
	Schema string
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Store is an aviso.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	wake chan struct{}
	// schema is Options.Schema: the payload of this Store's notifications, and the one it heeds.
	schema   string
	notifier *notifier
	// published wakes the feed's readers (EventsPublished); eventsNotifier tells the other nodes
	// of the tenants in publishedOwed (feed.go).
	published      broadcast.Group
	publishedOwed  tenantSet
	eventsNotifier *notifier
	cancel         context.CancelFunc
	done           sync.WaitGroup // the listener and the notifier
	close          sync.Once
}

var _ aviso.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value DSN), runs or checks the
// migrations, and starts the LISTEN connection that feeds Wakeups and the notifier that announces
// this Store's commits to the other nodes. Close releases it all.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse url: %w", err)
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	}
	if opts.Migrate {
		if err := migrate(ctx, cfg.ConnConfig, opts); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := checkVersion(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		pool:   pool,
		log:    opts.logger(),
		wake:   make(chan struct{}, 1),
		schema: opts.Schema,
		cancel: cancel,
	}
	s.notifier = newNotifier(func(ctx context.Context) error {
		_, err := pool.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, opts.Schema)
		return err
	}, s.log)
	s.eventsNotifier = newNotifier(func(ctx context.Context) error {
		_, err := pool.Exec(ctx, `SELECT pg_notify($1, $2)`, eventsChannel, s.publishedOwed.payload(opts.Schema))
		return err
	}, s.log)
	s.done.Go(func() { s.listen(lctx, cfg.ConnConfig.Copy()) })
	s.done.Go(func() { s.notifier.run(lctx) })
	s.done.Go(func() { s.eventsNotifier.run(lctx) })
	return s, nil
}

// Close stops the listener and the notifier (which first sends a NOTIFY still owed) and closes
// every connection. It is safe to call more than once.
func (s *Store) Close() error {
	s.close.Do(func() {
		s.cancel()
		s.done.Wait()
		s.pool.Close()
	})
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", &aviso.Error{Code: aviso.EUNAVAILABLE, Message: "database unreachable", Err: err})
	}
	return nil
}

// Wakeups receives after commits that make a delivery due, from this Store or (through
// LISTEN/NOTIFY) from any other node on the database and schema. Signals merge; spurious ones
// happen.
func (s *Store) Wakeups() <-chan struct{} { return s.wake }

// signal announces a commit that made work due: it wakes this Store's Wakeups at once, and has
// the notifier tell the other nodes. It never blocks.
func (s *Store) signal() {
	s.wakeLocal()
	s.notifier.announce()
}

// wakeLocal sends a wakeup on Wakeups without blocking.
func (s *Store) wakeLocal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// listen keeps one connection LISTENing on notifyChannel until ctx ends, reconnecting with a
// jittered exponential backoff, and signals Wakeups on every notification it heeds (see heeds) and
// after every (re)connection (notifications sent while disconnected are lost, so work may be waiting).
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2}
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, cfg, b.Reset)
		if ctx.Err() != nil {
			return
		}
		d := b.Next()
		s.log.Warn("postgres listener disconnected", "error", err, "retry_in", d)
		if b.Sleep(ctx, d) != nil {
			return
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
	}
	defer conn.Close(context.Background())
	for _, ch := range []string{eventsChannel, notifyChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	connected()
	s.wakeLocal()
	s.published.SignalAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: wait: %w", err)
		}
		switch {
		case n.Channel == eventsChannel:
			s.heardPublished(n.Payload)
		case heeds(s.schema, n.Payload):
			s.wakeLocal()
		}
	}
}

// inTx runs fn in a transaction and commits it, rolling back on error.
//
// A transaction that PostgreSQL aborted as a deadlock victim or a serialization failure is run
// again from the start, a few times: fn must therefore only assign (never append to) state
// outside the transaction. Under concurrent nodes such aborts are expected — cascading deletes
// and foreign-key checks take row locks in orders no statement controls — and none of them may
// reach an API caller as a 500.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return retry(ctx, func() error { return s.inTxOnce(ctx, fn) })
}

// retry runs once, and again (a few times, with a short jittered pause) while PostgreSQL aborts
// it as a deadlock victim or a serialization failure; see inTx.
func retry(ctx context.Context, once func() error) error {
	b := backoff.Backoff{Min: 5 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: 0.8}
	var err error
	for try := 1; ; try++ {
		err = once()
		if try == maxTxTries || !retryableTx(err) || b.Wait(ctx) != nil {
			return err
		}
	}
}

// maxTxTries is how many times retry runs a transaction PostgreSQL aborted as retryable.
const maxTxTries = 5

// retryableTx reports whether err is a deadlock (40P01) or serialization failure (40001):
// PostgreSQL rolled the whole transaction back, so running it again is safe.
func retryableTx(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

func (s *Store) inTxOnce(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// dbError is the one place where driver errors become Aviso error codes: by SQLSTATE and
// constraint name, never by message text. op says what was being done; noun names the resource
// the statement read or wrote ("tenant", "endpoint", …) for ENOTFOUND and ECONFLICT messages.
func dbError(op, noun string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = &aviso.Error{Code: aviso.ENOTFOUND, Message: noun + " not found", Err: err}
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		err = &aviso.Error{Code: aviso.ECONFLICT, Message: noun + " already exists", Err: err}
	case errors.As(err, &pgErr) && pgErr.Code == "23503": // foreign_key_violation
		err = &aviso.Error{Code: aviso.ENOTFOUND, Message: referenced(pgErr.ConstraintName) + " not found", Err: err}
	case errors.As(err, &pgErr) && (pgErr.Code == "53100" || pgErr.Code == "58030" || pgErr.Code == "25006"):
		// disk_full, io_error, read_only_sql_transaction (a standby, or a read-only database)
		err = &aviso.Error{Code: aviso.ESTORAGE, Message: aviso.StorageMessage, Err: err}
	case errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "53300"):
		// connection exceptions, admin shutdown, too many connections
		err = &aviso.Error{Code: aviso.EUNAVAILABLE, Message: "database unavailable", Err: err}
	case pgconn.SafeToRetry(err): // the statement never reached the server
		err = &aviso.Error{Code: aviso.EUNAVAILABLE, Message: "database unavailable", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// referenced names what a foreign key constraint of migrations/0001_init.sql points at.
func referenced(constraint string) string {
	switch constraint {
	case "api_keys_tenant_fk", "endpoints_tenant_fk", "events_tenant_fk":
		return "tenant"
	case "deliveries_endpoint_fk":
		return "endpoint"
	case "deliveries_event_fk":
		return "event"
	case "attempts_delivery_fk":
		return "delivery"
	}
	return "referenced resource"
}

// utc normalises a time read from the database.
func utc(t time.Time) time.Time { return t.UTC() }

// utcPtr normalises an optional time read from the database.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// dbTime is a time as PostgreSQL keeps it: microseconds, UTC.
func dbTime(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// cleanText makes s storable in a text column: valid UTF-8 without NUL bytes. Response bodies
// come from arbitrary servers.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
