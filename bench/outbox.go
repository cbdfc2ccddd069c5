package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso/docs/outbox"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/server"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// outboxSource is a fresh outbox made for one run: a PostgreSQL schema or a MariaDB database of
// Config.OutboxURL with docs/outbox's DDL, dropped at the end.
type outboxSource struct {
	kind  string // "postgres" or "mariadb"
	url   string // what --outbox takes
	db    *sql.DB
	drop  func()
	place func(n int) string
}

func (r *runner) openOutboxSource(ctx context.Context, base string) (*outboxSource, error) {
	name := "aviso_bench_outbox_" + r.runID + "_" + randomHex(3)
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("outbox source: %w", err)
	}
	s := &outboxSource{}
	var admin *sql.DB
	var file, dsn string
	switch u.Scheme {
	case "postgres", "postgresql":
		s.kind, file = "postgres", "postgres.sql"
		s.place = func(n int) string { return "$" + strconv.Itoa(n) }
		if admin, err = sql.Open("pgx", base); err != nil {
			return nil, err
		}
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
			admin.Close()
			return nil, fmt.Errorf("outbox source: create schema: %w", err)
		}
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		s.url, dsn = u.String(), u.String()
		s.drop = func() {
			_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
			admin.Close()
		}
	case "mysql", "mariadb":
		s.kind, file = "mariadb", "mariadb.sql"
		s.place = func(int) string { return "?" }
		cfg := mysql.NewConfig()
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		cfg.Net, cfg.Addr, cfg.MultiStatements = "tcp", u.Host, true
		if u.Port() == "" {
			cfg.Addr = u.Host + ":3306"
		}
		if admin, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
			return nil, err
		}
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
			admin.Close()
			return nil, fmt.Errorf("outbox source: create database: %w", err)
		}
		cfg.DBName = name
		dsn = cfg.FormatDSN()
		u.Path = "/" + name
		u.RawQuery = ""
		s.url = u.String()
		s.drop = func() {
			_, _ = admin.ExecContext(context.Background(), "DROP DATABASE `"+name+"`")
			admin.Close()
		}
	default:
		return nil, fmt.Errorf("outbox source %q: want postgres:// or mysql://", u.Redacted())
	}
	ok := false
	defer func() {
		if !ok {
			s.drop()
		}
	}()
	driver := map[string]string{"postgres": "pgx", "mariadb": "mysql"}[s.kind]
	if s.db, err = sql.Open(driver, dsn); err != nil {
		return nil, err
	}
	s.db.SetMaxOpenConns(8)
	ddl, err := outboxsql.File(file)
	if err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("outbox source: apply %s: %w", file, err)
	}
	ok = true
	drop := s.drop
	s.drop = func() { s.db.Close(); drop() }
	return s, nil
}

// insert writes rows [from, to) of tenant, each in its own row, in multi-row statements of up
// to 1,000; eventID, when set, names each row's event.
func (s *outboxSource) insert(ctx context.Context, tenant string, from, to int, eventID func(i int) string) error {
	for lo := from; lo < to; lo += 1000 {
		hi := min(lo+1000, to)
		var sb strings.Builder
		sb.WriteString("INSERT INTO aviso_outbox (tenant_id, type, external_reference, data, event_id) VALUES ")
		args := make([]any, 0, 3*(hi-lo))
		for i := lo; i < hi; i++ {
			if i > lo {
				sb.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&sb, "(%s, '%s', %s, %s, %s)", s.place(k+1), benchEventType, s.place(k+2), s.place(k+3), s.place(k+4))
			var evt any
			if eventID != nil {
				evt = eventID(i)
			}
			args = append(args, tenant, "ob-"+strconv.Itoa(i), samplePayload, evt)
		}
		if _, err := s.db.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("fill the outbox: %w", err)
		}
	}
	return nil
}

func (s *outboxSource) waiting(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM aviso_outbox").Scan(&n)
	return n, err
}

// outbox measures the outbox relay on a node of store: OutboxRows rows written to a fresh outbox
// before the relay starts are drained (rows/s from the relay's start until the table is empty),
// then OutboxLatencyRows rows inserted one per transaction at OutboxRate rows/s are timed from
// their commit until the receiver has them (PostgreSQL: the trigger's NOTIFY wakes the relay;
// MariaDB: the relay polls every 100 ms). Every row fans out to one endpoint.
func (r *runner) outboxScenario(ctx context.Context, store string) ([]Result, error) {
	base := r.cfg.OutboxURL
	if base == "" {
		base = r.cfg.DatabaseURL
	}
	if store == "remote" || base == "" || r.sizes.OutboxRows <= 0 || r.sizes.OutboxRate <= 0 {
		return nil, errors.New("the outbox scenario needs an in-process node, a source database and its sizes")
	}
	src, err := r.openOutboxSource(ctx, base)
	if err != nil {
		return nil, err
	}
	defer src.drop()

	var sent sync.Map // event id → commit time
	var mu sync.Mutex
	var lat []time.Duration
	rcv, err := startReceiver(false, func(req *http.Request, at time.Time) {
		if v, ok := sent.Load(req.Header.Get("Webhook-Id")); ok {
			mu.Lock()
			lat = append(lat, at.Sub(v.(time.Time)))
			mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	defer rcv.close()

	r.nodes++
	var dbURL, dataDir string
	if store == "postgres" {
		dbURL = r.cfg.DatabaseURL
	} else {
		dataDir = filepath.Join(r.dataDir, fmt.Sprintf("%s-%d", store, r.nodes))
	}
	cfg := nodeServerConfig(dataDir, dbURL, "avk_bench_"+r.runID, r.cfg.SQLiteSynchronous, r.log)
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start %s node: %w", store, err)
	}
	runCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- srv.Run(runCtx) }()
	defer func() { stopNode(); <-nodeDone }()
	api := &apiClient{base: srv.URL(), key: cfg.RootKey, hc: newClient(8)}
	defer api.hc.CloseIdleConnections()
	if err := api.ensureEventType(ctx); err != nil {
		return nil, err
	}
	tenant := "bench-outbox-" + r.runID
	if err := api.createTenant(ctx, tenant); err != nil {
		return nil, err
	}
	defer func() { _ = api.deleteTenant(context.WithoutCancel(ctx), tenant) }()
	if _, err := api.createEndpoint(ctx, tenant, rcv.URL()+"/outbox", 0); err != nil {
		return nil, err
	}

	total := r.sizes.OutboxRows
	if err := src.insert(ctx, tenant, 0, total, nil); err != nil {
		return nil, err
	}
	relay, err := outbox.New(outbox.Config{Sources: []string{src.url}, Service: srv.Service, Logger: r.log})
	if err != nil {
		return nil, err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	defer func() { stopRelay(); <-relayDone }()
	tickCtx := ctx
	defer r.tick(ctx, &node{store: store, api: api}, func() string {
		n, _ := src.waiting(tickCtx)
		return fmt.Sprintf("outbox: %d rows waiting, %d delivered", n, rcv.Count())
	})()
	outer := ctx
	ctx, cancel := context.WithTimeout(outer, r.sizes.Timeout)
	defer cancel()
	start := time.Now()
	go func() { _ = relay.Run(relayCtx); close(relayDone) }()
	var drained time.Duration
	complete := false
	for ctx.Err() == nil {
		n, err := src.waiting(ctx)
		if err == nil && n == 0 {
			drained, complete = time.Since(start), true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !complete {
		drained = time.Since(start)
	}
	left, _ := src.waiting(context.Background())
	done := int64(total - left)
	thr := Result{Metric: "rows_per_s", Value: rate(done, drained), Unit: "rows/s", Target: atLeast(10_000),
		Count: done, Expected: int64(total), Complete: complete, Seconds: drained.Seconds(),
		Note: fmt.Sprintf("%d rows written before the relay started, relayed from a %s outbox in batches of %d, one endpoint each", total, src.kind, outbox.DefaultBatchSize)}
	if _, err := rcv.waitFor(ctx, int64(total)); err != nil {
		thr.Note += fmt.Sprintf("; only %d of %d delivered in time", rcv.Count(), total)
	}

	// Latency: one row per transaction at OutboxRate rows/s, with a bound of its own.
	ctx, cancel = context.WithTimeout(outer, r.sizes.Timeout)
	defer cancel()
	n, rowsPerS := r.sizes.OutboxLatencyRows, r.sizes.OutboxRate
	interval := time.Second / time.Duration(rowsPerS)
	lstart := time.Now()
	for i := range n {
		if d := time.Until(lstart.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		id := "obl-" + r.runID + "-" + strconv.Itoa(i)
		sent.Store(id, time.Now()) // before the commit: the figure includes the INSERT
		if err := src.insert(ctx, tenant, total+i, total+i+1, func(int) string { return id }); err != nil {
			return []Result{thr}, err
		}
	}
	_, waitErr := rcv.waitFor(ctx, int64(total+n))
	mu.Lock()
	l := summarise(lat)
	mu.Unlock()
	var target *Target
	if src.kind == "postgres" {
		target = atMost(100)
	}
	mk := func(metric string, d time.Duration, target *Target) Result {
		return Result{Metric: metric, Value: ms(d), Unit: "ms", Target: target, Count: int64(l.N), Expected: int64(n),
			Complete: waitErr == nil && l.N == n, Seconds: time.Since(lstart).Seconds()}
	}
	p99 := mk("p99_ms", l.P99, target)
	p99.Note = fmt.Sprintf("%d rows inserted one per transaction at %d/s into a %s outbox, commit to receipt; max %.1f ms", n, rowsPerS, src.kind, ms(l.Max))
	return []Result{thr, mk("p50_ms", l.P50, nil), p99}, nil
}
