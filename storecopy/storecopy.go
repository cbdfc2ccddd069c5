// Package storecopy copies an Aviso SQLite store into PostgreSQL: what `aviso migrate-store` runs
// when an installation outgrows one node.
//
// aviso.Store cannot export everything (key hashes, event sequence numbers, a delivery's round of
// the retry schedule), so the copy reads the SQLite file directly with database/sql, table by
// table in the layout of sqlite/migrations, and streams each table into PostgreSQL with COPY
// (pgx's CopyFrom), converting each column the way sqlite/ reads it and postgres/ writes it. It
// keeps every ID, time, secret, key hash, event order (seq), delivery state and attempt. Leases
// are not copied: whatever was in flight is claimable at once on the new store.
//
// The whole copy is one PostgreSQL transaction, after postgres.Migrate has brought the target
// schema up to date: it either lands entirely or leaves the target as it was. The SQLite side is
// read in one read transaction, a consistent snapshot; the running node should nevertheless be
// stopped first, since anything it accepts after the snapshot stays behind.
package storecopy

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// SQLiteVersion is the schema version of sqlite/migrations this package reads. A source at another
// version is refused, so a new SQLite migration cannot be copied wrongly in silence: whoever adds
// one updates the table list below and this number (the package test fails until then).
const SQLiteVersion = 19

// Options configure Copy.
type Options struct {
	// Logger receives progress, one line per table. Default: discard.
	Logger *slog.Logger
	// Schema is the PostgreSQL schema to copy into, created if missing, as postgres.Options.Schema.
	// Default "": the connection's search_path (normally public).
	Schema string
	// Force lets Copy replace the data of a target that is not empty: every row of Aviso's tables
	// there is deleted first (in the same transaction). Default false: a non-empty target is
	// refused with ErrTargetNotEmpty.
	Force bool
}

// ErrTargetNotEmpty is returned (wrapped) when the target already holds data and Force is off.
var ErrTargetNotEmpty = errors.New("the PostgreSQL store is not empty")

// Counts are the rows of each table copied.
type Counts struct {
	Tenants    int64 `json:"tenants"`
	APIKeys    int64 `json:"api_keys"`
	EventTypes int64 `json:"event_types"`
	Endpoints  int64 `json:"endpoints"`
	Events     int64 `json:"events"`
	Deliveries int64 `json:"deliveries"`
	Attempts   int64 `json:"attempts"`
	// RevokedSessions are the dashboard sessions and portal links signed out before their
	// expiry; copied so that a signed-out session stays ended on the new store.
	RevokedSessions int64 `json:"revoked_sessions"`
}

// String is a one-line summary, e.g. for the command's output.
func (c Counts) String() string {
	return fmt.Sprintf("%d tenants, %d api keys, %d event types, %d endpoints, %d events, %d deliveries, %d attempts",
		c.Tenants, c.APIKeys, c.EventTypes, c.Endpoints, c.Events, c.Deliveries, c.Attempts)
}

// field returns the counter of table.
func (c *Counts) field(table string) *int64 {
	switch table {
	case "tenants":
		return &c.Tenants
	case "api_keys":
		return &c.APIKeys
	case "event_types":
		return &c.EventTypes
	case "endpoints":
		return &c.Endpoints
	case "events":
		return &c.Events
	case "deliveries":
		return &c.Deliveries
	case "attempts":
		return &c.Attempts
	case "revoked_sessions":
		return &c.RevokedSessions
	}
	panic("storecopy: unknown table " + table)
}

// Copy copies every row of the SQLite store at sqlitePath into the PostgreSQL database at
// postgresURL, and returns how many rows of each table it copied. It runs postgres.Migrate on the
// target first, refuses a target that holds any row (unless opts.Force), and checks after the copy,
// before committing, that the target holds exactly as many rows per table as the source.
func Copy(ctx context.Context, sqlitePath, postgresURL string, opts Options) (Counts, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, err := openSource(ctx, sqlitePath)
	if err != nil {
		return Counts{}, err
	}
	defer src.Close()
	rtx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Counts{}, fmt.Errorf("read sqlite: %w", err)
	}
	defer func() { _ = rtx.Rollback() }()
	var version int
	if err := rtx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return Counts{}, fmt.Errorf("read sqlite schema version (is %s an Aviso store?): %w", sqlitePath, err)
	}
	if version != SQLiteVersion {
		return Counts{}, fmt.Errorf("sqlite store %s is at migration %d; this build copies migration %d: "+
			"start and stop `aviso serve` of this version on it once, or use the matching aviso", sqlitePath, version, SQLiteVersion)
	}
	tables := tableList()
	var want Counts
	for _, t := range tables {
		if err := rtx.QueryRowContext(ctx, `SELECT count(*) FROM `+t.name).Scan(want.field(t.name)); err != nil {
			return Counts{}, fmt.Errorf("count sqlite %s: %w", t.name, err)
		}
	}

	if err := postgres.Migrate(ctx, postgresURL, postgres.Options{Logger: log, Schema: opts.Schema}); err != nil {
		return Counts{}, fmt.Errorf("prepare postgres: %w", err)
	}
	cfg, err := pgx.ParseConfig(postgresURL)
	if err != nil {
		return Counts{}, fmt.Errorf("connect postgres: parse url: %w", err)
	}
	if opts.Schema != "" {
		cfg.RuntimeParams["search_path"] = opts.Schema
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Counts{}, fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return Counts{}, fmt.Errorf("copy: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()

	// Nodes that are running on the target wait until the copy commits (or gives up).
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return Counts{}, fmt.Errorf("copy: lock target tables: %w", err)
	}
	var nonEmpty []string
	for _, t := range tables {
		var has bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.name+`)`).Scan(&has); err != nil {
			return Counts{}, fmt.Errorf("copy: check target %s: %w", t.name, err)
		}
		if has {
			nonEmpty = append(nonEmpty, t.name)
		}
	}
	if len(nonEmpty) > 0 {
		if !opts.Force {
			return Counts{}, fmt.Errorf("copy: %w (rows in %s); copy into a fresh database or schema, or force to replace its data",
				ErrTargetNotEmpty, strings.Join(nonEmpty, ", "))
		}
		if _, err := tx.Exec(ctx, `TRUNCATE `+strings.Join(names, ", ")+` CASCADE`); err != nil {
			return Counts{}, fmt.Errorf("copy: empty target: %w", err)
		}
		log.Warn("deleted the target's data (forced)", "tables", strings.Join(nonEmpty, ","))
	}

	var got Counts
	for _, t := range tables {
		rows, err := rtx.QueryContext(ctx, t.query)
		if err != nil {
			return Counts{}, fmt.Errorf("read sqlite %s: %w", t.name, err)
		}
		src := &rowSource{rows: rows, convert: t.convert}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, src)
		rows.Close()
		if err == nil {
			err = src.err
		}
		if err != nil {
			return Counts{}, fmt.Errorf("copy %s: %w", t.name, err)
		}
		*got.field(t.name) = n
		log.Info("copied table", "table", t.name, "rows", n)
	}
	// Events keep their seq, so the identity must continue after the largest one.
	if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('events', 'seq'), coalesce(max(seq), 0) + 1, false) FROM events`); err != nil {
		return Counts{}, fmt.Errorf("copy: advance event sequence: %w", err)
	}
	var check Counts
	for _, t := range tables {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+t.name).Scan(check.field(t.name)); err != nil {
			return Counts{}, fmt.Errorf("copy: count target %s: %w", t.name, err)
		}
	}
	if check != want || got != want {
		return Counts{}, fmt.Errorf("copy: counts differ, nothing committed: source %v; copied %v; target %v", want, got, check)
	}
	if err := tx.Commit(ctx); err != nil {
		return Counts{}, fmt.Errorf("copy: commit: %w", err)
	}
	return got, nil
}

// openSource opens an existing SQLite file for reading only (the driver would create a missing one).
func openSource(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite: path %q must be a plain file name", path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return db, nil
}

// rowSource streams SQLite rows into CopyFrom, converting each.
type rowSource struct {
	rows    *sql.Rows
	convert func(scanner) ([]any, error)
	vals    []any
	err     error
}

func (s *rowSource) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	s.vals, s.err = s.convert(s.rows)
	return s.err == nil
}

func (s *rowSource) Values() ([]any, error) { return s.vals, s.err }

func (s *rowSource) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

// scanner is *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// table is one table to copy: the SQLite query (ordered, so the copy is deterministic), the
// PostgreSQL columns, and the conversion of one row.
type table struct {
	name    string
	query   string
	columns []string
	convert func(scanner) ([]any, error)
}

// tableList returns the tables to copy in order, parents before children.
func tableList() []table {
	return []table{
		{
			name:    "tenants",
			query:   `SELECT id, name, metadata, created_at, updated_at FROM tenants ORDER BY id`,
			columns: []string{"id", "name", "metadata", "created_at", "updated_at"},
			convert: func(sc scanner) ([]any, error) {
				var id, name, meta string
				var created, updated int64
				if err := sc.Scan(&id, &name, &meta, &created, &updated); err != nil {
					return nil, err
				}
				m, err := decodeMap(meta)
				if err != nil {
					return nil, fmt.Errorf("tenant %s metadata: %w", id, err)
				}
				return []any{id, name, m, fromMicros(created), fromMicros(updated)}, nil
			},
		},
		{
			name:    "api_keys",
			query:   `SELECT id, tenant_id, hash, prefix, created_at FROM api_keys ORDER BY id`,
			columns: []string{"id", "tenant_id", "hash", "prefix", "created_at"},
			convert: func(sc scanner) ([]any, error) {
				var id, hash, prefix string
				var tenant sql.NullString
				var created int64
				if err := sc.Scan(&id, &tenant, &hash, &prefix, &created); err != nil {
					return nil, err
				}
				var t any // NULL: a root key
				if tenant.Valid && tenant.String != "" {
					t = tenant.String
				}
				return []any{id, t, hash, prefix, fromMicros(created)}, nil
			},
		},
		{
			name:    "event_types",
			query:   `SELECT name, description, descriptions, schema, example, created_at, updated_at FROM event_types ORDER BY name`,
			columns: []string{"name", "description", "descriptions", "schema", "example", "created_at", "updated_at"},
			convert: func(sc scanner) ([]any, error) {
				var name, desc, descs string
				var schema, example sql.NullString
				var created, updated int64
				if err := sc.Scan(&name, &desc, &descs, &schema, &example, &created, &updated); err != nil {
					return nil, err
				}
				m, err := decodeMap(descs)
				if err != nil {
					return nil, fmt.Errorf("event type %s descriptions: %w", name, err)
				}
				return []any{name, desc, m, rawJSON(schema), rawJSON(example), fromMicros(created), fromMicros(updated)}, nil
			},
		},
		{
			name: "endpoints",
			query: `SELECT id, tenant_id, url, description, event_types, format, headers, timeout_seconds, retry_schedule,
			disabled, disabled_reason, consecutive_failures, metadata, secrets, token, verified_at, created_at, updated_at,
			auth, secret_headers, signing, disable_after, failing_since, filter, ordering, send_traceparent, rate_limit
			FROM endpoints ORDER BY id`,
			columns: []string{"id", "tenant_id", "url", "description", "event_types", "format", "headers", "timeout_seconds",
				"retry_schedule", "disabled", "disabled_reason", "consecutive_failures", "metadata", "secrets", "token",
				"verified_at", "created_at", "updated_at", "auth", "secret_headers", "signing", "disable_after", "failing_since", "filter", "ordering",
				"send_traceparent", "rate_limit"},
			convert: convertEndpoint,
		},
		{
			name:    "events",
			query:   `SELECT seq, tenant_id, id, type, data, external_reference, created_at, request_id, traceparent FROM events ORDER BY seq`,
			columns: []string{"seq", "tenant_id", "id", "type", "data", "external_reference", "created_at", "request_id", "traceparent"},
			convert: func(sc scanner) ([]any, error) {
				var seq, created int64
				var tenant, id, typ, data, ref, reqID, trace string
				if err := sc.Scan(&seq, &tenant, &id, &typ, &data, &ref, &created, &reqID, &trace); err != nil {
					return nil, err
				}
				return []any{seq, tenant, id, typ, rawJSON(sql.NullString{String: data, Valid: true}), ref, fromMicros(created), reqID, trace}, nil
			},
		},
		{
			name: "deliveries",
			query: `SELECT id, tenant_id, event_id, endpoint_id, event_type, status, attempt_count, round_attempts,
			next_attempt_at, last_response_status, last_error, created_at, updated_at, event_seq, ordering_key
			FROM deliveries ORDER BY id`,
			columns: []string{"id", "tenant_id", "event_id", "endpoint_id", "event_type", "status", "attempt_count",
				"round_attempts", "next_attempt_at", "last_response_status", "last_error", "created_at", "updated_at",
				"event_seq", "ordering_key"},
			convert: func(sc scanner) ([]any, error) {
				var id, tenant, event, endpoint, typ, status, lastErr, key string
				var count, round, lastStatus int32
				var next sql.NullInt64
				var created, updated, seq int64
				if err := sc.Scan(&id, &tenant, &event, &endpoint, &typ, &status, &count, &round, &next, &lastStatus,
					&lastErr, &created, &updated, &seq, &key); err != nil {
					return nil, err
				}
				return []any{id, tenant, event, endpoint, typ, status, count, round, fromMicrosPtr(next), lastStatus,
					cleanText(lastErr), fromMicros(created), fromMicros(updated), seq, key}, nil
			},
		},
		{
			name: "attempts",
			query: `SELECT id, delivery_id, tenant_id, endpoint_id, event_id, at, url, request_headers, response_status,
			response_body, duration_ms, error FROM attempts ORDER BY id`,
			columns: []string{"id", "delivery_id", "tenant_id", "endpoint_id", "event_id", "at", "url", "request_headers",
				"response_status", "response_body", "duration_ms", "error"},
			convert: func(sc scanner) ([]any, error) {
				var id, delivery, tenant, endpoint, event, url, headers, body, errText string
				var at, duration int64
				var status int32
				if err := sc.Scan(&id, &delivery, &tenant, &endpoint, &event, &at, &url, &headers, &status, &body,
					&duration, &errText); err != nil {
					return nil, err
				}
				h, err := decodeMap(headers)
				if err != nil {
					return nil, fmt.Errorf("attempt %s request_headers: %w", id, err)
				}
				return []any{id, delivery, tenant, endpoint, event, fromMicros(at), url, h, status, cleanText(body),
					duration, cleanText(errText)}, nil
			},
		},
		{
			name:    "revoked_sessions",
			query:   `SELECT id, expires FROM revoked_sessions ORDER BY id`,
			columns: []string{"id", "expires"},
			convert: func(sc scanner) ([]any, error) {
				var id string
				var expires int64
				if err := sc.Scan(&id, &expires); err != nil {
					return nil, err
				}
				return []any{id, fromMicros(expires)}, nil
			},
		},
	}
}

// storedSecret is a secret as sqlite/ keeps it in the endpoints.secrets JSON column.
type storedSecret struct {
	Value     string `json:"value"`
	ExpiresAt *int64 `json:"expires_at,omitempty"` // unix microseconds
}

// convertEndpoint decodes the JSON columns of an SQLite endpoint into the Go values postgres/
// stores as jsonb (so secrets and retry schedules take postgres/'s encoding).
func convertEndpoint(sc scanner) ([]any, error) {
	var id, tenant, url, desc, types, format, headers, schedule, reason, meta, secrets, token string
	var auth, secretHeaders, signing, rule, filter, ordering string
	var timeout, failures, rateLimit int32
	var disabled, sendTraceparent bool
	var verified, failingSince sql.NullInt64
	var created, updated int64
	if err := sc.Scan(&id, &tenant, &url, &desc, &types, &format, &headers, &timeout, &schedule, &disabled, &reason,
		&failures, &meta, &secrets, &token, &verified, &created, &updated, &auth, &secretHeaders, &signing, &rule, &failingSince, &filter, &ordering,
		&sendTraceparent, &rateLimit); err != nil {
		return nil, err
	}
	fail := func(col string, err error) ([]any, error) {
		return nil, fmt.Errorf("endpoint %s %s: %w", id, col, err)
	}
	eventTypes := []string{}
	if err := json.Unmarshal([]byte(types), &eventTypes); err != nil {
		return fail("event_types", err)
	}
	if eventTypes == nil {
		eventTypes = []string{}
	}
	h, err := decodeMap(headers)
	if err != nil {
		return fail("headers", err)
	}
	m, err := decodeMap(meta)
	if err != nil {
		return fail("metadata", err)
	}
	var ns []int64
	if err := json.Unmarshal([]byte(schedule), &ns); err != nil {
		return fail("retry_schedule", err)
	}
	rs := make([]aviso.Duration, len(ns))
	for i, n := range ns {
		rs[i] = aviso.Duration(time.Duration(n))
	}
	var ss []storedSecret
	if err := json.Unmarshal([]byte(secrets), &ss); err != nil {
		return fail("secrets", err)
	}
	out := make([]aviso.Secret, len(ss))
	for i, s := range ss {
		out[i].Value = s.Value
		if s.ExpiresAt != nil {
			t := fromMicros(*s.ExpiresAt)
			out[i].ExpiresAt = &t
		}
	}
	var a *aviso.Auth // sealed values are copied as they are: the same encryption key reads them
	if auth != "" {
		a = new(aviso.Auth)
		if err := json.Unmarshal([]byte(auth), a); err != nil {
			return fail("auth", err)
		}
	}
	sh, err := decodeMap(secretHeaders)
	if err != nil {
		return fail("secret_headers", err)
	}
	var dr *aviso.DisablePolicy
	if rule != "" {
		dr = new(aviso.DisablePolicy)
		if err := json.Unmarshal([]byte(rule), dr); err != nil {
			return fail("disable_after", err)
		}
	}
	return []any{id, tenant, url, desc, eventTypes, format, h, timeout, rs, disabled, reason, failures, m, out, token,
		fromMicrosPtr(verified), fromMicros(created), fromMicros(updated), a, sh, signing, dr, fromMicrosPtr(failingSince), filter, ordering,
		sendTraceparent, rateLimit}, nil
}

// fromMicros reads a time as sqlite/ stores it: unix microseconds.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// fromMicrosPtr reads an optional time; NULL stays NULL.
func fromMicrosPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// decodeMap reads a JSON object of strings; null or missing reads as {} (postgres/ stores {}).
func decodeMap(text string) (map[string]string, error) {
	m := map[string]string{}
	if text != "" {
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			return nil, err
		}
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// rawJSON passes JSON text through unchanged (the json columns keep it byte for byte), or NULL
// when absent or empty, as postgres/ does.
func rawJSON(v sql.NullString) any {
	if !v.Valid || v.String == "" {
		return nil
	}
	return v.String
}

// cleanText makes s storable in a PostgreSQL text column: valid UTF-8 without NUL bytes, as
// postgres/ stores response bodies and errors.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
