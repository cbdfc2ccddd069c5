// Command aviso runs the Aviso webhook delivery service.
//
//	aviso serve          run a node: JSON API, dashboard, delivery engine (default: SQLite in ./aviso-data)
//	aviso migrate        apply the PostgreSQL migrations (serve also does it unless --no-migrate)
//	aviso migrate-store  copy an SQLite store into PostgreSQL
//	aviso rotate-encryption-key  seal endpoint secrets with a new key
//	aviso bench          measure throughput, latency, isolation and backlog
//	aviso listen         forward a tenant's events to a local receiver (no public URL needed)
//	aviso trigger        publish an event of a type with the catalog's example
//	aviso healthcheck    exit 0 if the node answers /healthz (for container HEALTHCHECKs)
//	aviso version        print the version
//
// Every flag has an environment equivalent (AVISO_ADDR for --addr, …); a flag given on the
// command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/tracing"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/aviso-dev/aviso/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(os.Getenv)
	m := NewMain(os.Stdout, os.Stderr, os.Getenv)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "aviso:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "aviso:", err)
		os.Exit(1)
	}
}

// Main is the program, separate from main() so tests can run it in-process.
type Main struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	Command string
	Server  server.Config
	run     func(ctx context.Context) error
}

// NewMain returns a Main writing to stdout and stderr and reading the environment with getenv.
func NewMain(stdout, stderr io.Writer, getenv func(string) string) *Main {
	return &Main{stdout: stdout, stderr: stderr, getenv: getenv}
}

const usage = `Usage: aviso <command> [flags]

Commands:
  serve          run a node: JSON API on /v1/, dashboard on /ui/, delivery engine
  migrate        apply the PostgreSQL migrations (--database or AVISO_DATABASE_URL)
  migrate-store  copy an SQLite store into an empty PostgreSQL database (--from, --to)
  rotate-encryption-key  seal every endpoint's secrets with a new key (see the README)
  bench          measure throughput, latency, isolation and backlog (aviso bench --quick)
  listen         forward a tenant's events to a local URL, signed as an endpoint gets them
  trigger        publish an event of a type, with the catalog's example as data
  tenants, event-types, endpoints, events, deliveries
                 the API from the command line: aviso tenants list, aviso events publish, …
                 (AVISO_URL, AVISO_KEY; --output table|json; 'aviso endpoints' lists the verbs)
  doctor         check configuration, store, clock, disk, and an endpoint URL through the SSRF guard
  healthcheck    exit 0 if the node answers /healthz (the container image's HEALTHCHECK)
  version        print the version

Run 'aviso <command> -h' for the flags of a command.
`

// ParseFlags reads the subcommand and its flags.
func (m *Main) ParseFlags(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.stderr, usage)
		return errors.New("no command given")
	}
	m.Command = args[0]
	switch m.Command {
	case "serve":
		return m.parseServe(args[1:])
	case "bench":
		return m.parseBench(args[1:])
	case "rotate-encryption-key":
		return m.parseRotateKey(args[1:])
	case "migrate-store":
		return m.parseMigrateStore(args[1:])
	case "listen":
		return m.parseListen(args[1:])
	case "trigger":
		return m.parseTrigger(args[1:])
	case "healthcheck":
		return m.parseHealthcheck(args[1:])
	case "doctor":
		return m.parseDoctor(args[1:])
	case "tenants", "event-types", "endpoints", "events", "deliveries":
		return m.parseAPI(m.Command, args[1:])
	case "migrate":
		fs := m.flagSet("migrate")
		url := fs.String("database", m.getenv("AVISO_DATABASE_URL"), "PostgreSQL URL (env AVISO_DATABASE_URL)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *url == "" {
			return errors.New("migrate: --database or AVISO_DATABASE_URL is required (SQLite migrates itself on serve)")
		}
		m.run = func(ctx context.Context) error {
			if err := postgres.Migrate(ctx, *url, postgres.Options{Logger: m.logger()}); err != nil {
				return err
			}
			fmt.Fprintln(m.stdout, "migrations applied")
			return nil
		}
		return nil
	case "version", "--version", "-v":
		m.run = func(context.Context) error {
			fmt.Fprintln(m.stdout, "aviso", aviso.Version)
			return nil
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(m.stdout, usage)
		return flag.ErrHelp
	default:
		fmt.Fprint(m.stderr, usage)
		return fmt.Errorf("unknown command %q", m.Command)
	}
}

func (m *Main) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("aviso "+name, flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	return fs
}

func (m *Main) envInt(name string, def int) int {
	if v, err := strconv.Atoi(m.getenv(name)); err == nil {
		return v
	}
	return def
}

func (m *Main) envBool(name string) bool {
	v, _ := strconv.ParseBool(m.getenv(name))
	return v
}

func (m *Main) envString(name, def string) string {
	if v := m.getenv(name); v != "" {
		return v
	}
	return def
}

func (m *Main) parseServe(args []string) error {
	c := &m.Server
	fs := m.flagSet("serve")
	fs.StringVar(&c.Addr, "addr", m.envString("AVISO_ADDR", "127.0.0.1:8080"), "listen address (env AVISO_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", m.envString("AVISO_DATA_DIR", "./aviso-data"), "SQLite data directory (env AVISO_DATA_DIR)")
	fs.StringVar(&c.EncryptionKeyFile, "encryption-key-file", m.getenv("AVISO_ENCRYPTION_KEY_FILE"), "file with the key that encrypts endpoint secrets; default: AVISO_ENCRYPTION_KEY, else (SQLite) <data-dir>/encryption.key, generated on first start (env AVISO_ENCRYPTION_KEY_FILE)")
	fs.StringVar(&c.DatabaseURL, "database", m.getenv("AVISO_DATABASE_URL"), "PostgreSQL URL; empty uses embedded SQLite (env AVISO_DATABASE_URL)")
	fs.BoolVar(&c.NoMigrate, "no-migrate", m.envBool("AVISO_NO_MIGRATE"), "do not run PostgreSQL migrations on start (env AVISO_NO_MIGRATE=1)")
	fs.BoolVar(&c.AllowPrivateNetworks, "allow-private-networks", m.envBool("AVISO_ALLOW_PRIVATE_NETWORKS"), "let endpoints use loopback and private addresses, for development (env AVISO_ALLOW_PRIVATE_NETWORKS=1)")
	fs.IntVar(&c.MaxPayloadBytes, "max-payload-bytes", m.envInt("AVISO_MAX_PAYLOAD_BYTES", 1<<20), "largest event data accepted (env AVISO_MAX_PAYLOAD_BYTES)")
	fs.IntVar(&c.Workers, "workers", m.envInt("AVISO_WORKERS", 64), "attempts in flight at once (env AVISO_WORKERS)")
	fs.IntVar(&c.PerEndpoint, "per-endpoint", m.envInt("AVISO_PER_ENDPOINT", 8), "attempts in flight to one endpoint (env AVISO_PER_ENDPOINT)")
	fs.StringVar(&c.SQLiteSynchronous, "sqlite-synchronous", m.envString("AVISO_SQLITE_SYNCHRONOUS", "FULL"), "SQLite synchronous pragma: FULL (every accepted event on disk) or NORMAL (env AVISO_SQLITE_SYNCHRONOUS)")
	fs.StringVar(&c.PublicURL, "public-url", m.getenv("AVISO_PUBLIC_URL"), "URL people reach this server at, e.g. https://aviso.example.com: base of portal links; https makes dashboard cookies Secure (env AVISO_PUBLIC_URL)")
	fs.StringVar(&c.PortalFrameAncestors, "portal-frame-ancestors", m.getenv("AVISO_PORTAL_FRAME_ANCESTORS"), "sites that may embed the tenant portal in an iframe, e.g. https://app.example.com; default any (env AVISO_PORTAL_FRAME_ANCESTORS)")
	fs.StringVar(&c.MetricsToken, "metrics-token", m.getenv("AVISO_METRICS_TOKEN"), "bearer token GET /metrics requires; empty: open (env AVISO_METRICS_TOKEN)")
	fs.StringVar(&c.PortalBrand.Name, "portal-name", m.getenv("AVISO_PORTAL_NAME"), "name the tenant portal shows instead of Aviso (env AVISO_PORTAL_NAME)")
	fs.StringVar(&c.PortalBrand.LogoURL, "portal-logo-url", m.getenv("AVISO_PORTAL_LOGO_URL"), "absolute URL of the logo the tenant portal shows (env AVISO_PORTAL_LOGO_URL)")
	fs.StringVar(&c.PortalBrand.PrimaryColor, "portal-color", m.getenv("AVISO_PORTAL_COLOR"), "the tenant portal's primary colour, #rrggbb, at least 4.5:1 against white (env AVISO_PORTAL_COLOR)")
	fs.StringVar(&c.PortalBrand.SupportURL, "portal-support-url", m.getenv("AVISO_PORTAL_SUPPORT_URL"), "https: or mailto: link the tenant portal shows as Help (env AVISO_PORTAL_SUPPORT_URL)")
	schedule := fs.String("retry-schedule", m.envString("AVISO_RETRY_SCHEDULE", "5s,25s,125s,625s,3125s"), "default wait before each retry (env AVISO_RETRY_SCHEDULE)")
	fs.DurationVar(&c.Lease, "lease", envDuration(m.getenv("AVISO_LEASE"), 0), "how long a node reserves claimed deliveries unless renewed; a dead node's work moves to the others after this; 0: 15s on PostgreSQL (renewed while held), 2m on SQLite (env AVISO_LEASE)")
	fs.StringVar(&c.NodeID, "node-id", m.getenv("AVISO_NODE_ID"), "this node's name as the owner of its leases, unique among the nodes and kept across restarts so a restarted node resumes its deliveries at once; default hostname:port (env AVISO_NODE_ID)")
	fs.DurationVar(&c.CacheTTL, "cache-ttl", envDuration(m.getenv("AVISO_CACHE_TTL"), time.Second), "longest a node takes to see keys, tenants, catalog and endpoints changed on another node; negative disables the cache (env AVISO_CACHE_TTL)")
	var outboxFlags []string
	fs.Func("outbox", "relay the aviso_outbox table of this database, postgres://… or mysql://… (repeatable; env AVISO_OUTBOX, comma-separated)", func(v string) error {
		outboxFlags = append(outboxFlags, v)
		return nil
	})
	fs.BoolVar(&c.OutboxKeep, "outbox-keep", m.envBool("AVISO_OUTBOX_KEEP"), "mark relayed outbox rows (relayed_at) instead of deleting them (env AVISO_OUTBOX_KEEP=1)")
	fs.DurationVar(&c.OutboxPoll, "outbox-poll", envDuration(m.getenv("AVISO_OUTBOX_POLL"), 0), "how often an outbox is read when nothing wakes the relay; default 1s on PostgreSQL (NOTIFY wakes it), 100ms on MariaDB (env AVISO_OUTBOX_POLL)")
	fs.IntVar(&c.DisableAfter, "disable-after-failures", m.envInt("AVISO_DISABLE_AFTER_FAILURES", 10), "consecutive failed attempts that disable an endpoint (with --disable-min-span); 0 never disables (env AVISO_DISABLE_AFTER_FAILURES)")
	fs.DurationVar(&c.DisableMinSpan, "disable-min-span", envDuration(m.getenv("AVISO_DISABLE_MIN_SPAN"), time.Hour), "how long an endpoint must have been failing before those failures disable it (env AVISO_DISABLE_MIN_SPAN)")
	retention := fs.Duration("retention", envDuration(m.getenv("AVISO_RETENTION"), 30*24*time.Hour), "how long events and their deliveries are kept; 0 keeps them forever (env AVISO_RETENTION)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if c.RetrySchedule, err = server.ParseSchedule(*schedule); err != nil {
		return err
	}
	c.Retention = *retention
	if c.DisableAfter == 0 {
		c.DisableAfter = -1 // never: server.Config's zero is the default
	}
	if c.DisableMinSpan == 0 {
		c.DisableMinSpan = -1
	}
	c.Outbox = outboxFlags
	if len(c.Outbox) == 0 {
		c.Outbox = splitList(m.getenv("AVISO_OUTBOX"))
	}
	if c.Retention == 0 {
		c.Retention = -1
	}
	c.RootKey = m.getenv("AVISO_ROOT_KEY")
	c.EncryptionKey = m.getenv("AVISO_ENCRYPTION_KEY")
	c.Stdout = m.stdout
	c.Logger = m.logger()
	traced, err := tracing.Enabled(m.getenv)
	if err != nil {
		return err
	}
	m.run = func(ctx context.Context) error {
		if traced { // OTEL_EXPORTER_OTLP_ENDPOINT: spans exported by OTLP (README "Tracing")
			tp, err := tracing.NewProvider(ctx)
			if err != nil {
				return err
			}
			defer func() {
				// What is left in the batch is exported before the node exits.
				flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := tp.Shutdown(flushCtx); err != nil {
					c.Logger.Warn("export the last spans", "error", err)
				}
			}()
			c.TracerProvider = tp
		}
		srv, err := server.Open(ctx, *c)
		if err != nil {
			return err
		}
		return srv.Run(ctx)
	}
	return nil
}

// splitList reads a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func envDuration(v string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	return def
}

func (m *Main) logger() *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(m.envString("AVISO_LOG_LEVEL", "info")))
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(m.getenv("AVISO_LOG_FORMAT"), "json") {
		return slog.New(slog.NewJSONHandler(m.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(m.stderr, opts))
}

// Run runs the parsed command until it is done or ctx ends.
func (m *Main) Run(ctx context.Context) error {
	if m.run == nil {
		return errors.New("no command parsed")
	}
	return m.run(ctx)
}
