// Package sqlite implements aviso.Store on SQLite through the pure-Go driver modernc.org/sqlite:
// no cgo, one file, nothing else to run.
//
// Writes from concurrent callers share commits (group commit, see write): a method's changes are
// atomic and durable when it returns, but one WAL sync serves all the methods that were waiting
// while the previous commit ran.
//
// The store owns its file: it is single-process. It writes through one connection (SQLite allows
// one writer at a time, and queueing writers in Go is cheaper than letting them spin on
// SQLITE_BUSY) and reads through a separate pool, so that with WAL journaling reads never wait
// behind writes. Write transactions start with BEGIN IMMEDIATE, so a transaction that reads
// before it writes cannot fail half-way on a lock upgrade. The writer keeps temporary data in
// memory (temp_store=MEMORY): the statement journals of its multi-row statements would
// otherwise spill to temporary files, a write system call per page.
//
// Because only this process uses the file, delivery leases are kept in memory (lease.go), and
// claims read on the reader pool instead of writing: deliveries that were in flight when the
// process stopped are claimable again at once when it starts. A delivery whose request had
// reached the receiver before the stop is then sent twice; that is Aviso's at-least-once
// guarantee, which receivers handle with the webhook-id header.
//
// Every accepted delivery is a row of deliveries, written in its publish's own transaction:
// once InsertEvents returns, its deliveries are on disk, and the attempts that CompleteDeliveries
// records are written with the delivery's new state in one transaction. That is the whole
// durability invariant; leases are the one state kept in memory, and losing them is a release.
//
// Migrations are the embedded files migrations/NNNN_name.sql, applied in order, each in its own
// transaction, and recorded in the schema_migrations table.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/broadcast"
	"github.com/aviso-dev/aviso/internal/migration"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures Open.
type Options struct {
	// Logger receives migration and maintenance messages. Default: discard.
	Logger *slog.Logger
	// Synchronous is SQLite's synchronous setting: "FULL" (the default) syncs the WAL on every
	// commit, so an event the API accepted is on disk before the API answers, even across a
	// power loss. "NORMAL" syncs only at checkpoints: much faster commits, and still safe from a
	// crash of the process, but a power loss may lose the last commits.
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another connection before
	// failing. Default: 10s.
	BusyTimeout time.Duration
}

// Store is an aviso.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w       *sql.DB // the writer: one connection
	r       *sql.DB // the readers
	log     *slog.Logger
	wakeups chan struct{}
	commit  *committer // group commit of write bodies (see write)
	// prepared holds the hot paths' statements, prepared at Open (see prepare); read-only
	// afterwards.
	prepared map[string]*sql.Stmt
	claimMu  sync.Mutex  // claims run one at a time (see lease.go)
	leases   *leaseTable // the leases of delivery rows
	// nextSeq is the seq of the next event stored. Events are numbered by the store rather than
	// by SQLite, which gives a new row the largest seq in the table plus one, and so would reuse
	// the seqs of the newest events once they are deleted (a tenant's deletion): the feed's
	// cursors count on seqs that only grow (table seq_floor, see keepSeqs). Only the writer's
	// bodies use it.
	nextSeq int64
	// claimReadHook, set by tests only, runs at the start of each claim's read transaction.
	claimReadHook func(tx *sql.Tx)

	// published wakes the feed's readers (EventsPublished, feed.go).
	published broadcast.Group
	// pacing holds the rate-limited endpoints' pacing states (pacing.go).
	pacing pacing
}

var _ aviso.Store = (*Store)(nil)

// Open opens the database at path, creating it if needed, and applies the migrations it lacks.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite: path %q must be a plain file name without '?' or '#'", path)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Synchronous = strings.ToUpper(cmp.Or(opts.Synchronous, "FULL"))
	if opts.Synchronous != "FULL" && opts.Synchronous != "NORMAL" {
		return nil, fmt.Errorf("open sqlite: Synchronous %q: want FULL or NORMAL", opts.Synchronous)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	s := &Store{log: opts.Logger, wakeups: make(chan struct{}, 1), commit: newCommitter(), leases: newLeaseTable()}
	if err := s.open(ctx, path, opts); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return s, nil
}

// open opens the writer, migrates, and opens the readers.
func (s *Store) open(ctx context.Context, path string, opts Options) error {
	busy := "?_pragma=busy_timeout(" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10) + ")&_pragma=foreign_keys(1)"
	var err error
	s.w, err = sql.Open("sqlite", path+busy+"&_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous("+
		opts.Synchronous+")&_pragma=temp_store(MEMORY)&_pragma=cache_size(-32768)")
	if err != nil {
		return err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		return err
	}
	// Above every seq in use and the floor, which is above them all if the newest events were
	// deleted.
	if err := s.w.QueryRowContext(ctx, `SELECT max((SELECT coalesce(max(seq), 0) + 1 FROM events), seq)
		FROM seq_floor`).Scan(&s.nextSeq); err != nil {
		return fmt.Errorf("read the next event seq: %w", err)
	}
	// The readers open after the writer has switched the file to WAL.
	s.r, err = sql.Open("sqlite", path+busy+"&_query_only=1&_pragma=cache_size(-8192)")
	if err != nil {
		return err
	}
	readers := max(4, runtime.NumCPU())
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	if err := s.r.PingContext(ctx); err != nil {
		return err
	}
	return s.prepare(ctx)
}

// migrate applies, in order, the embedded migrations not yet recorded in schema_migrations,
// each in a transaction of its own.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := s.w.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	ms, err := migration.List(migrations)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		s.log.Info("applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

// apply runs one migration and records it, in one transaction.
func (s *Store) apply(ctx context.Context, m migration.Migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name+".sql", time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

// Ping checks that both the writer and the readers answer.
func (s *Store) Ping(ctx context.Context) error {
	return storeErr("ping", errors.Join(s.w.PingContext(ctx), s.r.PingContext(ctx)))
}

// keepSeqs records in tx, before a statement deletes events, a seq above every event's, so that
// the seqs of the newest events deleted are never used again (see Store.nextSeq).
func keepSeqs(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE seq_floor SET seq = max(seq, (SELECT coalesce(max(seq), 0) + 1 FROM events))`)
	return err
}

// Close closes the prepared statements, the readers and the writer, those that are open. Every
// accepted write is in the file already: there is nothing to flush.
func (s *Store) Close() error {
	for _, st := range s.prepared {
		st.Close()
	}
	var errs []error
	for _, db := range []*sql.DB{s.r, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// Wakeups returns the channel signalled after commits that make deliveries due now. SQLite has
// no cross-process notification: the store is single-process.
func (s *Store) Wakeups() <-chan struct{} { return s.wakeups }

// wake signals Wakeups without blocking; signals merge.
func (s *Store) wake() {
	select {
	case s.wakeups <- struct{}{}:
	default:
	}
}

// storeErr is the one place driver errors become aviso errors: by SQLite's extended result code,
// never by message text. An error that already carries an aviso code keeps it. op says what was
// being done ("get tenant"); the message names the resource as PostgreSQL's store does
// ("tenant not found", "tenant already exists"; storetest decides them).
func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *aviso.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var code, msg string
	var se *sqlite.Error
	switch {
	case errors.Is(err, sql.ErrNoRows):
		code, msg = aviso.ENOTFOUND, nounOf(op)+" not found"
	case errors.As(err, &se):
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			code, msg = aviso.ECONFLICT, nounOf(op)+" already exists"
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			code, msg = aviso.ENOTFOUND, "tenant not found" // the only parent a write can miss: the callers check the others
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY_SNAPSHOT, sqlite3.SQLITE_BUSY_TIMEOUT, sqlite3.SQLITE_LOCKED:
			code, msg = aviso.EUNAVAILABLE, "the database is busy"
		}
		switch se.Code() & 0xff { // the primary code, whatever the extended one
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			code, msg = aviso.ESTORAGE, aviso.StorageMessage // the disk is full or failing
		}
	}
	if code == "" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, &aviso.Error{Code: code, Message: msg, Err: err})
}

// notFound is the ENOTFOUND of an update or delete that matched no row.
func notFound(op string) error {
	return fmt.Errorf("%s: %w", op, &aviso.Error{Code: aviso.ENOTFOUND, Message: nounOf(op) + " not found"})
}

// nounOf names the resource of op ("get api key by hash" → "api key"): op without its verb.
func nounOf(op string) string {
	_, noun, _ := strings.Cut(op, " ")
	return strings.TrimSuffix(noun, " by hash")
}

// read runs fn in one read transaction on the reader pool (one snapshot of the database).
func (s *Store) read(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return storeErr(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return storeErr(op, err)
	}
	return storeErr(op, tx.Commit())
}

// get reads the one row query selects with scan. ENOTFOUND if there is none.
func get[T any](ctx context.Context, s *Store, op string, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	var v, zero T
	err := s.read(ctx, op, func(tx *sql.Tx) (err error) {
		v, err = scan(tx.QueryRowContext(ctx, query, args...))
		return err
	})
	if err != nil {
		return zero, err
	}
	return v, nil
}

// list reads a page: query selects up to size+1 rows (its last argument), and the cursor of the
// next page is key of the page's last row.
func list[T any](ctx context.Context, s *Store, op string, size int, scan func(scanner) (T, error), key func(T) string,
	query string, args ...any) (*aviso.Page[T], error) {
	var out *aviso.Page[T]
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		vs, err := collect(rows, scan)
		out = &aviso.Page[T]{Data: vs}
		if out.Data == nil {
			out.Data = []T{}
		}
		if len(vs) > size {
			out.Data, out.HasMore, out.NextCursor = vs[:size], true, key(vs[size-1])
		}
		return err
	})
	return out, err
}

// run writes with one statement.
func (s *Store) run(ctx context.Context, op, query string, args ...any) error {
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
}

// change writes with one statement that must match a row: ENOTFOUND if it matches none.
func (s *Store) change(ctx context.Context, op, query string, args ...any) error {
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		return affected(res, err, op)
	})
}

// affected turns an update or delete that matched no row into ENOTFOUND.
func affected(res sql.Result, err error, op string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		return notFound(op)
	}
	return err
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// Times are stored as unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func microsPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicrosPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// The scan destinations of the columns that need decoding: a time (unix microseconds), a
// nullable time, a JSON object of strings (never nil once scanned), nullable JSON.
type (
	timeCol    time.Time
	optTimeCol struct{ t **time.Time }
	mapCol     map[string]string
	rawCol     json.RawMessage
)

func (c *timeCol) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("scan %T as a time", v)
	}
	*c = timeCol(fromMicros(n))
	return nil
}

func (c optTimeCol) Scan(v any) error {
	var n sql.NullInt64
	err := n.Scan(v)
	*c.t = fromMicrosPtr(n)
	return err
}

func (c *mapCol) Scan(v any) error {
	var text sql.NullString
	if err := text.Scan(v); err != nil {
		return err
	}
	m := map[string]string{}
	if err := json.Unmarshal([]byte(text.String), &m); err != nil {
		return fmt.Errorf("decode map column: %w", err)
	}
	*c = m
	if m == nil {
		*c = mapCol{}
	}
	return nil
}

func (c *rawCol) Scan(v any) error {
	var s sql.NullString
	err := s.Scan(v)
	*c = nil
	if s.Valid {
		*c = rawCol(s.String)
	}
	return err
}

// jsonText encodes v for a JSON column; maps and slices given nil are stored empty.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlite: encode %T: %v", v, err)) // maps of strings and slices always encode
	}
	return string(b)
}

func mapText(m map[string]string) string {
	if m == nil {
		return "{}"
	}
	return jsonText(m)
}

// rawText stores optional JSON: NULL when empty.
func rawText(r json.RawMessage) sql.NullString {
	if len(r) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(r), Valid: true}
}

// collect scans every row with scan.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// queryAll runs st and scans every row with scan.
func queryAll[T any](ctx context.Context, st *sql.Stmt, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

// idList is a JSON array for `IN (SELECT value FROM json_each(?))`.
func idList(ids []string) string {
	if ids == nil {
		return "[]"
	}
	return jsonText(ids)
}
