// Package server assembles one Aviso node: it opens the store (embedded SQLite in a data
// directory, or PostgreSQL), seeds the event catalog, makes sure a root key exists, and runs the
// HTTP server (JSON API under /v1/, dashboard under /ui/), the delivery engine and the retention
// pruner until its context ends. cmd/aviso turns flags into a Config; tests and the bench tool
// start real nodes in-process through the same code.
package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/api"
	"github.com/aviso-dev/aviso/catalog"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/internal/encryption"
	"github.com/aviso-dev/aviso/internal/metrics"
	"github.com/aviso-dev/aviso/internal/requestid"
	"github.com/aviso-dev/aviso/internal/tracing"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/web"
)

// Config configures a node. The zero value of each field means its documented default.
type Config struct {
	// Addr is the HTTP listen address. Default "127.0.0.1:8080"; ":0" picks a free port.
	Addr string
	// DataDir holds the SQLite database (aviso.db). Default "./aviso-data". Unused with DatabaseURL.
	DataDir string
	// DatabaseURL, when set (postgres://…), stores everything in PostgreSQL instead of SQLite.
	DatabaseURL string
	// NoMigrate skips running migrations on start (PostgreSQL; run `aviso migrate` instead).
	NoMigrate bool
	// RootKey is the root API key. Empty: one is generated on first start and printed once.
	RootKey string
	// AllowPrivateNetworks lets endpoints point at loopback and private addresses (development).
	AllowPrivateNetworks bool
	// MaxPayloadBytes caps an event's data. Default 1 MiB.
	MaxPayloadBytes int
	// RetrySchedule is the default wait before each retry. Default aviso.DefaultRetrySchedule().
	RetrySchedule []time.Duration
	// DisableAfter is how many consecutive failed attempts disable an endpoint without a rule of
	// its own, once they span DisableMinSpan. Default aviso.DisableAfterFailures (10); negative:
	// never.
	DisableAfter int
	// DisableMinSpan is how long an endpoint must have been failing for DisableAfter failures to
	// disable it. Default aviso.DisableMinSpan (1 hour); negative: no minimum.
	DisableMinSpan time.Duration
	// Workers is how many attempts run at once. Default 64.
	Workers int
	// PerEndpoint caps the attempts in flight to one endpoint. Default 8.
	PerEndpoint int
	// Lease is how long a node reserves the deliveries it claims unless it renews the lease; a
	// node that dies loses its leases when they expire and the others deliver its work. Default:
	// 15 s on PostgreSQL, renewed every 5 s while the node holds the deliveries; 2 minutes on
	// SQLite (see dispatch.Config.Lease).
	Lease time.Duration
	// NodeID names this node as the owner of its leases. It must be unique among the nodes
	// running on one database and stay the same across restarts: a node starting under the ID
	// it had gives back at once the leases it held when it stopped (PostgreSQL), so the work it
	// had in flight is delivered within seconds instead of waiting for the leases to run out.
	// Default: "<hostname>:<port>" of the listen address, stable as long as the node keeps its
	// host and port.
	NodeID string
	// CacheTTL bounds how long this node may take to notice a change made on another node to
	// API keys, tenants, the catalog or a tenant's endpoints (the publish path caches them).
	// Default 1 s (service.DefaultCacheTTL); negative turns the cache off.
	CacheTTL time.Duration
	// Retention is how long events, deliveries and attempts are kept. Default 30 days; negative
	// keeps everything.
	Retention time.Duration
	// PruneInterval is how often retention runs (the first run comes after a minute, or after
	// PruneInterval when that is shorter). Default 10 minutes.
	PruneInterval time.Duration
	// SQLiteSynchronous is SQLite's synchronous pragma: "FULL" (default) or "NORMAL".
	SQLiteSynchronous string
	// Logger receives the node's logs; records logged in a request's context get its
	// request_id. Default: text to stderr.
	Logger *slog.Logger
	// Stdout receives the one-time print of a generated root key. Default os.Stdout.
	Stdout io.Writer
	// PublicURL is the URL people reach this node at, e.g. "https://aviso.example.com": the
	// base of portal links, and with https the dashboard's cookies are Secure. Default: links
	// are made from the request's Host.
	PublicURL string
	// PortalFrameAncestors lists the sites that may embed the tenant portal in an iframe (CSP
	// frame-ancestors), e.g. "https://app.example.com". Default "*": any site.
	PortalFrameAncestors string
	// PortalBrand is the tenant portal's white label (name, logo, colour, support link).
	// Default: Aviso's.
	PortalBrand web.Brand
	// DisableUI leaves /ui/ unmounted.
	DisableUI bool
	// EncryptionKey is the key (or keys, comma-separated, the current first) that seals endpoint
	// secrets at rest: the base64 of 32 random bytes (AVISO_ENCRYPTION_KEY). Default: the file
	// EncryptionKeyFile, else on SQLite DataDir/encryption.key, generated on the first start.
	// PostgreSQL requires EncryptionKey or EncryptionKeyFile (see LoadKeys).
	EncryptionKey string
	// EncryptionKeyFile is a file holding the key(s), one per line, the current first.
	EncryptionKeyFile string
	// MetricsToken, when set, is the bearer token GET /metrics requires. Default: none, the
	// metrics are open to whoever reaches the listener.
	MetricsToken string
	// Outbox lists databases whose aviso_outbox table this node relays (postgres://… or
	// mysql://…; see package outbox and docs/outbox.md). Default: none.
	Outbox []string
	// OutboxKeep marks relayed outbox rows instead of deleting them.
	OutboxKeep bool
	// OutboxPoll is how often an outbox source is read when nothing wakes the relay. Default
	// 1 s on PostgreSQL (NOTIFY wakes it at once), 100 ms on MariaDB.
	OutboxPoll time.Duration
	// TracerProvider receives the node's spans (internal/tracing): the publish requests, the
	// publishes and their store transaction, and each attempt, a child of its publish. The
	// caller owns it (and shuts it down). Default nil: no spans; a publisher's traceparent
	// still passes through to the endpoints that send it.
	TracerProvider trace.TracerProvider
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "aviso-data"
	}
	if c.MaxPayloadBytes <= 0 {
		c.MaxPayloadBytes = 1 << 20
	}
	if len(c.RetrySchedule) == 0 {
		c.RetrySchedule = aviso.DefaultRetrySchedule()
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
}

// Server is one running node.
type Server struct {
	cfg        Config
	log        *slog.Logger
	Store      aviso.Store
	Service    *service.Service
	Dispatcher *dispatch.Dispatcher
	Handler    http.Handler
	// Metrics serves GET /metrics; components with metrics of their own register them on
	// Metrics.Registry().
	Metrics *metrics.Metrics
	ln      net.Listener
	httpSrv *http.Server
	// GeneratedRootKey is the root key generated on this start, if any ("" otherwise).
	GeneratedRootKey string
	// Outbox relays the Config.Outbox sources; nil without any.
	Outbox *outbox.Relay
	health *storeHealth // what /readyz knows of the store's writes
}

// Open prepares a node: store, catalog, root key, engine and handlers, and binds the listener
// so that Addr is known before Run. Close releases it if Run is never called.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	// Every record logged with a request's context (or an attempt's) carries its request id.
	cfg.Logger = slog.New(requestid.Handler(cfg.Logger.Handler()))
	s := &Server{cfg: cfg, log: cfg.Logger}
	keys, err := LoadKeys(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.openStore(ctx); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.Store.Close()
			if s.Outbox != nil {
				s.Outbox.Close()
			}
		}
	}()
	if keys.Generated {
		fmt.Fprintf(cfg.Stdout, "Generated the key that encrypts endpoint secrets at rest, in %s. Back it up with the "+
			"database: without it the endpoints' secrets cannot be read (set AVISO_ENCRYPTION_KEY or --encryption-key-file to choose your own).\n\n", keys.File)
		s.log.Warn("generated an encryption key for endpoint secrets; back it up with the database", "path", keys.File)
	}
	// Endpoints stored before encryption are sealed now (rotations reseal with their command).
	if n, err := encryption.SealPlaintext(ctx, s.Store, keys.Keys); err != nil {
		return nil, err
	} else if n > 0 {
		s.log.Info("sealed endpoint secrets with the current encryption key", "endpoints", n)
	}

	s.Metrics, err = metrics.New(metrics.Config{Store: s.Store, Token: cfg.MetricsToken,
		DispatcherStats: func() dispatch.Stats { return s.Dispatcher.Stats() },
		OutboxStatus: func(ctx context.Context) ([]outbox.Status, error) {
			if s.Outbox == nil {
				return nil, nil
			}
			return s.Outbox.Status(ctx, aviso.Principal{KeyID: "metrics"}) // the root's view
		}})
	if err != nil {
		return nil, err
	}
	s.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer func() {
		if !ok {
			s.ln.Close()
		}
	}()
	if cfg.NodeID == "" {
		cfg.NodeID = defaultNodeID(s.ln.Addr())
	}
	s.health = &storeHealth{Store: s.Store, now: time.Now}
	s.Dispatcher, err = dispatch.New(dispatch.Config{
		Observer:             observers{requestIDs{}, s.Metrics, tracing.NewAttempts(cfg.TracerProvider)},
		OnWrite:              s.health.observe,
		Store:                s.Store,
		Keys:                 keys.Keys,
		Logger:               s.log,
		NodeID:               cfg.NodeID,
		Workers:              cfg.Workers,
		PerEndpoint:          cfg.PerEndpoint,
		Lease:                cfg.Lease,
		RetrySchedule:        cfg.RetrySchedule,
		AllowPrivateNetworks: cfg.AllowPrivateNetworks,
		DisableAfter:         cfg.DisableAfter,
		DisableMinSpan:       cfg.DisableMinSpan,
		Notifier:             notifier{s},
	})
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	disable := s.Dispatcher.DisablePolicy()
	s.Service, err = service.New(service.Config{
		Store:                s.Metrics.WrapStore(s.health), // counts the events published; readiness follows their writes
		Sender:               s.Dispatcher,
		Keys:                 keys.Keys,
		Logger:               s.log,
		MaxPayloadBytes:      cfg.MaxPayloadBytes,
		AllowPrivateNetworks: cfg.AllowPrivateNetworks,
		RetrySchedule:        cfg.RetrySchedule,
		CacheTTL:             cfg.CacheTTL,
		DisablePolicy:        &disable,
		TracerProvider:       cfg.TracerProvider,
	})
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if err := s.Service.SeedCatalog(ctx, catalog.EventTypes()); err != nil {
		return nil, fmt.Errorf("seed event catalog: %w", err)
	}
	if err := s.Service.EnsureOperationalTenant(ctx); err != nil {
		return nil, fmt.Errorf("operational tenant: %w", err)
	}
	if s.GeneratedRootKey, err = s.Service.EnsureRootKey(ctx, cfg.RootKey); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	if s.GeneratedRootKey != "" {
		fmt.Fprintf(cfg.Stdout, "Generated the root API key (shown only this once; set AVISO_ROOT_KEY to choose your own):\n\n  %s\n\n", s.GeneratedRootKey)
	}

	if len(cfg.Outbox) > 0 {
		s.Outbox, err = outbox.New(outbox.Config{Sources: cfg.Outbox, Keep: cfg.OutboxKeep, Service: s.Service,
			Logger: s.log, PollInterval: cfg.OutboxPoll})
		if err != nil {
			return nil, err
		}
	}

	mux := http.NewServeMux()
	closing, closeStreams := context.WithCancel(context.Background())
	defer func() {
		if !ok {
			closeStreams()
		}
	}()
	apiCfg := api.Config{Service: s.Service, Logger: s.log, Outbox: s.Outbox, Shutdown: closing, // body limit: the API default, sized for 1,000-event batches
		TracerProvider: cfg.TracerProvider}
	if !cfg.DisableUI {
		secret, err := s.sessionSecret(ctx)
		if err != nil {
			return nil, err
		}
		ui, err := web.New(web.Config{Service: s.Service, Store: s.Store, Logger: s.log, PortalSecret: secret,
			BaseURL: cfg.PublicURL, Secure: strings.HasPrefix(cfg.PublicURL, "https://"),
			PortalFrameAncestors: cfg.PortalFrameAncestors, Brand: cfg.PortalBrand, Outbox: s.Outbox,
			Slowed: s.Dispatcher.Slowed})
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		mux.Handle("/ui/", ui)
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
		apiCfg.Portal = ui
	}
	mux.Handle("/", api.New(apiCfg))
	mux.Handle("GET /metrics", s.Metrics.Handler())
	s.Handler = requestid.Middleware(s.Metrics.Middleware(mux))

	s.httpSrv = &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.httpSrv.RegisterOnShutdown(closeStreams) // event streams and long-polls end: Shutdown need not wait for them
	ok = true
	return s, nil
}

// defaultNodeID is "<hostname>:<port>": unique among nodes (two cannot listen on one port of one
// host) and the same after a restart on the same host and port.
func defaultNodeID(addr net.Addr) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	port := addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	return host + ":" + port
}

func (s *Server) openStore(ctx context.Context) error {
	if s.cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, s.cfg.DatabaseURL, postgres.Options{Logger: s.log, Migrate: !s.cfg.NoMigrate})
		if err != nil {
			return fmt.Errorf("open PostgreSQL store: %w", err)
		}
		s.Store = st
		return nil
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(s.cfg.DataDir, "aviso.db"), sqlite.Options{Logger: s.log, Synchronous: s.cfg.SQLiteSynchronous})
	if err != nil {
		return fmt.Errorf("open SQLite store: %w", err)
	}
	s.Store = st
	return nil
}

// sessionSecret derives the key that signs dashboard sessions and portal links from the stored
// root key hash: every node on one database derives the same key, sessions survive restarts,
// and changing the root key signs everyone out.
func (s *Server) sessionSecret(ctx context.Context) ([]byte, error) {
	k, err := s.Store.GetAPIKey(ctx, aviso.RootKeyID)
	if err != nil {
		return nil, fmt.Errorf("read root key: %w", err)
	}
	sum := sha256.Sum256([]byte("aviso-dashboard-sessions-v1\x00" + k.Hash))
	return sum[:], nil
}

// Addr is the address the HTTP server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL of the HTTP server, e.g. "http://127.0.0.1:8080".
func (s *Server) URL() string { return "http://" + s.Addr() }

// Run serves HTTP, delivers and prunes until ctx ends, then shuts down gracefully: the listener
// closes, requests in progress finish, in-flight attempts drain and are recorded, and the store
// closes. It returns the first error that stopped it early, or nil.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := s.httpSrv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		shutCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		_ = s.httpSrv.Shutdown(shutCtx)
	}()
	go func() {
		defer wg.Done()
		if err := s.Dispatcher.Run(ctx); err != nil {
			errc <- fmt.Errorf("dispatcher: %w", err)
			cancel()
		}
	}()
	if s.Outbox != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Outbox.Run(ctx) // logs and retries its errors; returns when ctx ends
		}()
	}
	if s.cfg.Retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.prune(ctx)
		}()
	}
	s.log.Info("aviso serving", "addr", s.Addr(), "store", s.storeKind(), "node_id", s.Dispatcher.NodeID(), "version", aviso.Version)
	wg.Wait()
	close(errc)
	err := <-errc
	_ = s.Dispatcher.Close() // idle keep-alive connections
	if cerr := s.Store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	return err
}

// Close releases a node that was opened but never run.
func (s *Server) Close() error {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.Outbox != nil {
		s.Outbox.Close()
	}
	return s.Store.Close()
}

func (s *Server) storeKind() string {
	if s.cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite:" + filepath.Join(s.cfg.DataDir, "aviso.db")
}

// prune deletes data older than the retention period in small batches — each its own short
// write transaction, so delivery is never blocked for long — every PruneInterval.
func (s *Server) prune(ctx context.Context) {
	const batch = 500
	t := time.NewTimer(min(time.Minute, s.cfg.PruneInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		total := 0
		for ctx.Err() == nil {
			n, err := s.Store.Prune(ctx, time.Now().Add(-s.cfg.Retention), batch)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("prune", "error", err)
				}
				break
			}
			total += n
			if n < batch {
				break
			}
		}
		if total > 0 {
			s.log.Info("pruned old events", "events", total, "older_than", s.cfg.Retention.String())
		}
		t.Reset(s.cfg.PruneInterval)
	}
}

// ParseSchedule reads a retry schedule such as "5s,25s,125s".
func ParseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("retry schedule: %q is not a positive duration such as 25s", part)
		}
		out = append(out, d)
	}
	return out, nil
}

// notifier hands the engine's operational notices to the service, which is made after the
// engine (the service sends its handshakes and test events through the engine).
type notifier struct{ s *Server }

func (n notifier) Notify(ctx context.Context, typ string, notices ...aviso.Notice) {
	n.s.Service.Notify(ctx, typ, notices...)
}
