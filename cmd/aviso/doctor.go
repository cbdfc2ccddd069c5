package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aviso-dev/aviso/internal/netguard"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to read a store without writing it
)

// parseDoctor reads `aviso doctor`: it checks, without changing anything, what serve would run
// with — the configuration (the same flags and environment as serve), the store, the clock, the
// disk under the data directory — and, with --endpoint, whether this machine can resolve and
// reach that URL through the SSRF guard deliveries use. It exits non-zero if a check fails.
func (m *Main) parseDoctor(args []string) error {
	fs := m.flagSet("doctor")
	endpoint := fs.String("endpoint", "", "an endpoint URL to resolve and reach through the SSRF guard")
	server := fs.String("url", m.getenv("AVISO_URL"), "a running node to compare clocks with (env AVISO_URL)")
	fs.Usage = func() {
		fmt.Fprint(m.stderr, `Usage: aviso doctor [--endpoint URL] [--url URL]

Checks the configuration serve would use (its flags' environment: AVISO_DATA_DIR,
AVISO_DATABASE_URL, …), the store, the clock, the disk space of the data directory, and with
--endpoint that this machine resolves and reaches the URL through the SSRF guard.

Example:
  AVISO_DATABASE_URL=postgres://aviso@db/aviso aviso doctor --endpoint https://erp.example.com/hooks

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	m.run = func(ctx context.Context) error {
		d := &doctor{out: tabwriter.NewWriter(m.stdout, 0, 4, 2, ' ', 0)}
		defer d.out.Flush()
		// The configuration: serve's own parsing, from the environment.
		serve := NewMain(io.Discard, io.Discard, m.getenv)
		if err := serve.parseServe(nil); err != nil {
			d.report("config", "fail", err.Error())
			return d.result()
		}
		cfg := serve.Server
		d.report("config", "ok", fmt.Sprintf("addr %s, %d workers, retry schedule %v", cfg.Addr, cfg.Workers, cfg.RetrySchedule))
		if cfg.RootKey == "" {
			d.report("root key", "warn", "AVISO_ROOT_KEY is unset: the store's key is used, or one is generated and printed at the first start")
		}
		if cfg.DatabaseURL != "" {
			d.postgres(ctx, cfg.DatabaseURL)
		} else {
			d.sqlite(ctx, cfg.DataDir)
			d.disk(cfg.DataDir)
		}
		if *server != "" {
			d.clock(ctx, *server)
		}
		if *endpoint != "" {
			d.endpoint(ctx, *endpoint, cfg.AllowPrivateNetworks)
		}
		return d.result()
	}
	return nil
}

type doctor struct {
	out    *tabwriter.Writer
	failed int
}

func (d *doctor) report(check, status, detail string) {
	if status == "fail" {
		d.failed++
	}
	fmt.Fprintf(d.out, "%s\t%s\t%s\n", status, check, detail)
}

func (d *doctor) result() error {
	if d.failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", d.failed)
	}
	return nil
}

func (d *doctor) skew(check string, theirs time.Time) {
	skew := time.Since(theirs).Round(time.Millisecond)
	switch {
	case skew > 5*time.Second || skew < -5*time.Second:
		d.report(check, "fail", fmt.Sprintf("this machine's clock is %s off: leases and retry times go wrong; run NTP", skew))
	case skew > time.Second || skew < -time.Second:
		d.report(check, "warn", fmt.Sprintf("this machine's clock is %s off", skew))
	default:
		d.report(check, "ok", fmt.Sprintf("within %s", max(skew, -skew)))
	}
}

func (d *doctor) postgres(ctx context.Context, dsn string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		d.report("store", "fail", fmt.Sprintf("PostgreSQL: %v", err))
		return
	}
	defer conn.Close(context.Background())
	var now time.Time
	var version string
	if err := conn.QueryRow(cctx, `SELECT now(), current_setting('server_version')`).Scan(&now, &version); err != nil {
		d.report("store", "fail", fmt.Sprintf("PostgreSQL: %v", err))
		return
	}
	var applied int
	if err := conn.QueryRow(cctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		d.report("store", "warn", fmt.Sprintf("PostgreSQL %s answers; not migrated yet (serve or aviso migrate does it)", version))
	} else {
		d.report("store", "ok", fmt.Sprintf("PostgreSQL %s, %d migrations applied", version, applied))
	}
	d.skew("clock", now)
}

func (d *doctor) sqlite(ctx context.Context, dir string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		d.report("store", "fail", fmt.Sprintf("data directory %s: %v", dir, err))
		return
	}
	probe, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		d.report("store", "fail", fmt.Sprintf("data directory %s is not writable: %v", dir, err))
		return
	}
	probe.Close()
	os.Remove(probe.Name())
	path := filepath.Join(dir, "aviso.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		d.report("store", "ok", fmt.Sprintf("SQLite: %s is writable; aviso.db will be created at the first start", dir))
		return
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		d.report("store", "fail", fmt.Sprintf("SQLite %s: %v", path, err))
		return
	}
	defer db.Close()
	var applied int
	var check string
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		d.report("store", "fail", fmt.Sprintf("SQLite %s: %v", path, err))
		return
	}
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil || check != "ok" {
		d.report("store", "fail", fmt.Sprintf("SQLite %s fails its integrity check: %s %v", path, check, err))
		return
	}
	d.report("store", "ok", fmt.Sprintf("SQLite %s: %d migrations applied, integrity ok", path, applied))
}

func (d *doctor) disk(dir string) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		d.report("disk", "warn", fmt.Sprintf("cannot read free space of %s: %v", dir, err))
		return
	}
	free := st.Bavail * uint64(st.Bsize)
	total := st.Blocks * uint64(st.Bsize)
	detail := fmt.Sprintf("%.1f GiB free of %.1f GiB under %s", float64(free)/(1<<30), float64(total)/(1<<30), dir)
	switch {
	case free < 256<<20:
		d.report("disk", "fail", detail+": a full disk stops publishes (503 storage_unavailable)")
	case free < 2<<30 || free*10 < total:
		d.report("disk", "warn", detail)
	default:
		d.report("disk", "ok", detail)
	}
}

func (d *doctor) clock(ctx context.Context, server string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, server+"/healthz", nil)
	if err != nil {
		d.report("clock", "fail", err.Error())
		return
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.report("clock", "fail", fmt.Sprintf("%s does not answer: %v", server, err))
		return
	}
	res.Body.Close()
	t, err := http.ParseTime(res.Header.Get("Date"))
	if err != nil {
		d.report("clock", "warn", fmt.Sprintf("%s sent no Date header", server))
		return
	}
	d.skew("clock", t.Add(500*time.Millisecond)) // Date has a resolution of one second
}

// endpoint resolves and reaches raw through the SSRF guard, as a delivery would.
func (d *doctor) endpoint(ctx context.Context, raw string, allowPrivate bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		d.report("endpoint", "fail", fmt.Sprintf("%q is not an absolute http:// or https:// URL", raw))
		return
	}
	g := &netguard.Guard{AllowPrivate: allowPrivate}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.CheckURL(cctx, raw); err != nil {
		d.report("endpoint", "fail", err.Error())
		return
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	dialer := g.Dialer()
	dialer.Timeout = 5 * time.Second
	start := time.Now()
	conn, err := dialer.DialContext(cctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			d.report("endpoint", "fail", fmt.Sprintf("the SSRF guard refuses %s: %v", u.Host, err))
		} else {
			d.report("endpoint", "fail", fmt.Sprintf("cannot reach %s: %v", u.Host, err))
		}
		return
	}
	addr := conn.RemoteAddr().String()
	conn.Close()
	var note bytes.Buffer
	if allowPrivate {
		note.WriteString(" (private networks allowed)")
	}
	d.report("endpoint", "ok", fmt.Sprintf("%s resolves and connects to %s in %s through the SSRF guard%s", u.Host, addr,
		time.Since(start).Round(time.Millisecond), note.String()))
}
