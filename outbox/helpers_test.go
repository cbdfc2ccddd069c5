package outbox_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/catalog"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/service"
	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

var root = aviso.Principal{KeyID: "test"}

// sourceDB is a fresh outbox database (a PostgreSQL schema or a MariaDB database) with the DDL
// of docs/outbox/ applied.
type sourceDB struct {
	kind string // "postgres" or "mariadb"
	url  string // what --outbox takes
	db   *sql.DB
}

// ph is the n-th placeholder of the database's SQL.
func (s *sourceDB) ph(n int) string {
	if s.kind == "postgres" {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// eachDB runs f as parallel subtests on a fresh PostgreSQL schema and a fresh MariaDB database.
func eachDB(t *testing.T, f func(t *testing.T, s *sourceDB)) {
	t.Helper()
	for _, kind := range []string{"postgres", "mariadb"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f(t, openSource(t, kind, false))
		})
	}
}

// openSource makes a fresh database of kind and applies the outbox DDL of docs/outbox/, and the
// facturascli example with facturas.
func openSource(t testing.TB, kind string, facturas bool) *sourceDB {
	t.Helper()
	s := &sourceDB{kind: kind}
	var files []string
	var dsn string
	switch kind {
	case "postgres":
		url, schema := testenv.PostgresSchema(t, "aviso_outbox_")
		s.url = testenv.SchemaURL(url, schema)
		dsn = s.url
		files = []string{"postgres.sql"}
	case "mariadb":
		cfg := testenv.MariaDBDatabase(t, "aviso_outbox_")
		s.url = testenv.MariaDBURL(cfg)
		c := cfg.Clone()
		c.MultiStatements = true
		dsn = c.FormatDSN()
		files = []string{"mariadb.sql"}
	}
	if facturas {
		files = append(files, "facturascli-"+kind+".sql")
	}
	s.open(t, dsn, files)
	return s
}

// privateSource is a source on the database of a server of the test's own, with the outbox DDL
// applied.
func privateSource(t testing.TB, srv *testenv.DBServer) *sourceDB {
	t.Helper()
	s := &sourceDB{kind: srv.Kind, url: srv.URL()}
	if srv.Kind == "postgres" {
		s.open(t, srv.DSN(), []string{"postgres.sql"})
		return s
	}
	cfg := srv.MySQLConfig()
	cfg.MultiStatements = true
	cfg.Logger = &mysql.NopLogger{} // the connections the server's kills break are the test's point
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.setUp(t, sql.OpenDB(c), []string{"mariadb.sql"})
	return s
}

// open connects to the database and applies the files of docs/outbox/.
func (s *sourceDB) open(t testing.TB, dsn string, files []string) {
	t.Helper()
	driver := map[string]string{"postgres": "pgx", "mariadb": "mysql"}[s.kind]
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.setUp(t, db, files)
}

// setUp makes db the source's connections, closed when t ends, and applies the files of
// docs/outbox/.
func (s *sourceDB) setUp(t testing.TB, db *sql.DB, files []string) {
	t.Helper()
	t.Cleanup(func() { db.Close() })
	s.db = db
	for _, f := range files {
		ddl, err := os.ReadFile(filepath.Join("..", "docs", "outbox", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(ddl)); err != nil {
			t.Fatalf("apply docs/outbox/%s: %v", f, err)
		}
	}
}

// count returns the result of a count query.
func (s *sourceDB) count(t testing.TB, q string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// write inserts events with outbox.Write in one committed transaction.
func (s *sourceDB) write(t testing.TB, evs ...outbox.Event) {
	t.Helper()
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := outbox.Write(context.Background(), tx, e); err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// newService is a service on a fresh SQLite store with the seeded catalog and tenant "acme".
func newService(t testing.TB, store aviso.Store) *service.Service {
	t.Helper()
	if store == nil {
		store = testenv.SQLite(t)
	}
	svc, err := service.New(service.Config{Store: store, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.SeedCatalog(ctx, catalog.EventTypes()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: "acme", Name: "ACME"}); err != nil && aviso.ErrorCode(err) != aviso.ECONFLICT {
		t.Fatal(err)
	}
	return svc
}

// startRelay runs a relay on the sources until the test ends.
func startRelay(t testing.TB, cfg outbox.Config) *outbox.Relay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	r, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.Run(ctx); err != nil {
			t.Errorf("relay Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return r
}

// events lists every event of the tenant, as its feed (GET /v1/tenants/{tenant}/events) does.
func events(t testing.TB, svc *service.Service, tenant string) []*aviso.Event {
	t.Helper()
	var out []*aviso.Event
	q := service.FeedQuery{Limit: aviso.MaxLimit}
	for {
		page, err := svc.Feed(context.Background(), root, tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			out = append(out, it.Event)
		}
		if !page.HasMore {
			return out
		}
		q.After = page.Next
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// hasEvent reports whether the tenant holds an event with the id.
func hasEvent(svc *service.Service, tenant, id string) bool {
	_, err := svc.GetEvent(context.Background(), root, tenant, id)
	return err == nil
}

// waitStatus waits until the relay's status of its first source satisfies cond (a batch's
// counters are updated just after its source transaction commits) and returns it.
func waitStatus(t testing.TB, r *outbox.Relay, what string, cond func(outbox.Status) bool) outbox.Status {
	t.Helper()
	var st outbox.Status
	waitFor(t, 10*time.Second, what, func() bool {
		all, err := r.Status(context.Background(), root)
		if err != nil {
			t.Fatal(err)
		}
		st = all[0]
		return cond(st)
	})
	return st
}
