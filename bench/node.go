package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/sqlite"
)

// node is the Aviso node a store's scenarios talk to.
type node struct {
	store   string // "sqlite", "postgres" or "remote"
	api     *apiClient
	dataDir string // the SQLite data directory; "" for other stores
	// pid is the process whose peak RSS is Aviso's: 0 for this process (in-process nodes).
	pid int
	// resume starts the delivery engine of a node opened paused; nil otherwise.
	resume func() error
	stop   func() error
	// attempts returns how many attempts the node's delivery engine has finished; nil for nodes
	// the bench cannot look into (remote, child process). Read after stop, it counts them all.
	attempts func() int64
	// writer reports the SQLite store's writer (see writerWindow), false if it cannot; nil for
	// other stores and for nodes the bench cannot look into.
	writer func() (sqlite.WriterStats, bool)
}

// errNeedsLocalNode is returned for the backlog scenario against a remote node: building the
// backlog needs a node whose delivery engine has not started yet.
var errNeedsLocalNode = errors.New("the backlog scenario needs a node started by the bench (no --url)")

// startNode starts the node of a store with a root key of its own. A paused node serves the API
// but does not deliver until resume is called.
func (r *runner) startNode(ctx context.Context, store string, paused bool) (*node, error) {
	return r.startNodeKey(ctx, store, paused, "avk_bench_"+randomHex(16))
}

// startCluster starts count running in-process nodes of store one after another (the first runs
// the migrations of a fresh PostgreSQL database before the others open it), all with one root key
// — the root key is a row of the shared store, and a node started with another key would replace
// it — and each with its own delivery engine. With count 1 it is startNode.
func (r *runner) startCluster(ctx context.Context, store string, count int) ([]*node, error) {
	key := "avk_bench_" + randomHex(16)
	nodes := make([]*node, 0, count)
	for range count {
		n, err := r.startNodeKey(ctx, store, false, key)
		if err != nil {
			return nil, errors.Join(err, stopNodes(nodes))
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// stopNodes stops nodes one after another and returns their errors joined.
func stopNodes(nodes []*node) error {
	var errs []error
	for _, n := range nodes {
		errs = append(errs, n.stop())
	}
	return errors.Join(errs...)
}

// startNodeKey is startNode with the root key given.
func (r *runner) startNodeKey(ctx context.Context, store string, paused bool, key string) (*node, error) {
	hc := newClient(64)
	if store == "remote" {
		if paused {
			return nil, errNeedsLocalNode
		}
		return &node{store: store, api: &apiClient{base: strings.TrimSuffix(r.cfg.URL, "/"), key: r.cfg.RootKey, hc: hc},
			stop: func() error { hc.CloseIdleConnections(); return nil }}, nil
	}
	r.nodes++
	n := &node{store: store}
	var dbURL string
	if store == "postgres" {
		dbURL = r.cfg.DatabaseURL
	} else {
		n.dataDir = filepath.Join(r.dataDir, fmt.Sprintf("%s-%d", store, r.nodes))
	}
	var url string
	switch {
	case paused && len(r.cfg.NodeCommand) > 0:
		c, err := startChild(ctx, r.cfg.NodeCommand, n.dataDir, dbURL, key, r.cfg.SQLiteSynchronous)
		if err != nil {
			return nil, err
		}
		url, n.pid, n.resume, n.stop = c.url, c.cmd.Process.Pid, c.resumeEngine, c.close
		if store == "sqlite" {
			n.writer = c.writerStats
		}
	case paused:
		p, err := openPaused(ctx, nodeServerConfig(n.dataDir, dbURL, key, r.cfg.SQLiteSynchronous, r.log))
		if err != nil {
			return nil, err
		}
		url, n.resume, n.stop = p.URL(), p.resume, p.close
		n.attempts = func() int64 { return p.srv.Dispatcher.Stats().Attempts }
		n.writer = writerOf(p.srv)
	default:
		srv, err := server.Open(ctx, nodeServerConfig(n.dataDir, dbURL, key, r.cfg.SQLiteSynchronous, r.log))
		if err != nil {
			return nil, fmt.Errorf("start %s node: %w", store, err)
		}
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan error, 1)
		go func() { done <- srv.Run(runCtx) }()
		url = srv.URL()
		n.attempts = func() int64 { return srv.Dispatcher.Stats().Attempts }
		n.writer = writerOf(srv)
		n.stop = func() error {
			cancel()
			return <-done
		}
	}
	n.api = &apiClient{base: url, key: key, hc: hc}
	stop := n.stop
	n.stop = func() error {
		hc.CloseIdleConnections()
		return stop()
	}
	return n, nil
}

// writerReporter is a store with a single writer that reports what it has done (the SQLite
// store does).
type writerReporter interface{ WriterStats() sqlite.WriterStats }

// writerOf returns the WriterStats of srv's store if it reports them, nil otherwise.
func writerOf(srv *server.Server) func() (sqlite.WriterStats, bool) {
	if st, ok := srv.Store.(writerReporter); ok {
		return func() (sqlite.WriterStats, bool) { return st.WriterStats(), true }
	}
	return nil
}

// nodeServerConfig is the configuration of a node the bench starts: the server's defaults but
// for a free loopback port, private networks allowed (the receivers are on 127.0.0.1) and no
// dashboard.
func nodeServerConfig(dataDir, dbURL, rootKey, synchronous string, log *slog.Logger) server.Config {
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: dataDir, DatabaseURL: dbURL, RootKey: rootKey,
		AllowPrivateNetworks: true, DisableUI: true, Logger: log, Stdout: io.Discard, SQLiteSynchronous: synchronous}
	if dbURL != "" {
		// The nodes of one bench database share the key that seals endpoint secrets (PostgreSQL
		// needs one given): derived from the bench's root key, so child processes agree.
		sum := sha256.Sum256([]byte("aviso bench encryption key\x00" + rootKey))
		cfg.EncryptionKey = base64.StdEncoding.EncodeToString(sum[:])
	}
	return cfg
}

// pausedNode is an in-process node whose JSON API serves at once and whose delivery engine
// starts only on resume: how the backlog is built before the receiver "comes back".
type pausedNode struct {
	srv      *server.Server
	hs       *http.Server
	ln       net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	dispatch chan error // nil until resumed
}

// openPaused opens a node with cfg and serves its handler on a loopback port of its own
// without starting the delivery engine.
func openPaused(ctx context.Context, cfg server.Config) (*pausedNode, error) {
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open paused node: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("open paused node: %w", err)
	}
	p := &pausedNode{srv: srv, ln: ln,
		hs: &http.Server{Handler: srv.Handler, ReadHeaderTimeout: 10 * time.Second}}
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() { _ = p.hs.Serve(ln) }()
	return p, nil
}

func (p *pausedNode) URL() string { return "http://" + p.ln.Addr().String() }

// resume starts the delivery engine.
func (p *pausedNode) resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dispatch != nil {
		return errors.New("resume: the delivery engine is already running")
	}
	p.dispatch = make(chan error, 1)
	go func() { p.dispatch <- p.srv.Dispatcher.Run(p.ctx) }()
	return nil
}

// close stops the engine (recording attempts in flight), the HTTP server and the store.
func (p *pausedNode) close() error {
	p.cancel()
	p.mu.Lock()
	ch := p.dispatch
	p.mu.Unlock()
	var err error
	if ch != nil {
		err = <-ch
		_ = p.srv.Dispatcher.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.hs.Shutdown(ctx)
	return errors.Join(err, p.srv.Close())
}

// NodeConfig configures ServeNode.
type NodeConfig struct {
	// DataDir holds the SQLite database. Required unless DatabaseURL is set.
	DataDir string
	// DatabaseURL, when set, stores in PostgreSQL instead of SQLite.
	DatabaseURL string
	// RootKey is the root API key. Required.
	RootKey string
	// SQLiteSynchronous is SQLite's synchronous pragma. Default "FULL".
	SQLiteSynchronous string
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
}

// Lines of the protocol between the bench and a node it runs as a child process (ServeNode).
const (
	nodeLineURL     = "url "    // node → bench: "url http://127.0.0.1:port", once serving
	nodeLineResume  = "resume"  // bench → node: start the delivery engine
	nodeLineResumed = "resumed" // node → bench: the engine runs
	nodeLineWriter  = "writer"  // bench → node: report the SQLite writer; node → bench: "writer {JSON}", or "writer -"
)

// ServeNode runs a paused node for the backlog scenario as a child process of the bench, so
// that its memory is measured alone: it serves the JSON API, writes "url <base URL>" to out,
// starts the delivery engine when "resume" is read from in (answering "resumed"), and shuts down
// when in ends or ctx is cancelled. `aviso bench --node` calls it.
func ServeNode(ctx context.Context, cfg NodeConfig, in io.Reader, out io.Writer) error {
	if cfg.RootKey == "" {
		return errors.New("serve node: a root key is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := openPaused(ctx, nodeServerConfig(cfg.DataDir, cfg.DatabaseURL, cfg.RootKey, cfg.SQLiteSynchronous, cfg.Logger))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s%s\n", nodeLineURL, p.URL()); err != nil {
		return errors.Join(fmt.Errorf("serve node: %w", err), p.close())
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return p.close()
		case line, ok := <-lines:
			if !ok {
				return p.close()
			}
			switch line {
			case nodeLineResume:
				if err := p.resume(); err != nil {
					return errors.Join(err, p.close())
				}
				fmt.Fprintln(out, nodeLineResumed)
			case nodeLineWriter:
				report := "-"
				if writer := writerOf(p.srv); writer != nil {
					st, _ := writer()
					b, err := json.Marshal(st)
					if err != nil {
						return errors.Join(err, p.close())
					}
					report = string(b)
				}
				fmt.Fprintln(out, nodeLineWriter+" "+report)
			}
		}
	}
}

// child is a node running as a child process (ServeNode).
type child struct {
	cmd    *exec.Cmd
	url    string
	stdin  io.WriteCloser
	lines  chan string
	stderr *limitedBuffer
}

// startChild runs command (e.g. "aviso bench --node") with --data-dir, and the key, database and
// synchronous pragma in the environment (AVISO_ROOT_KEY, AVISO_DATABASE_URL,
// AVISO_SQLITE_SYNCHRONOUS), and waits for its URL line.
func startChild(ctx context.Context, command []string, dataDir, dbURL, rootKey, synchronous string) (*child, error) {
	args := append(append([]string(nil), command[1:]...), "--data-dir", dataDir)
	cmd := exec.Command(command[0], args...)
	cmd.Env = append(os.Environ(), "AVISO_ROOT_KEY="+rootKey, "AVISO_DATABASE_URL="+dbURL,
		"AVISO_SQLITE_SYNCHRONOUS="+synchronous)
	c := &child{cmd: cmd, lines: make(chan string, 4), stderr: &limitedBuffer{max: 64 << 10}}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start node process: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start node process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node process: %w", err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	line, err := c.next(ctx, 60*time.Second)
	if err != nil || !strings.HasPrefix(line, nodeLineURL) {
		_ = c.close()
		return nil, fmt.Errorf("start node process: no URL line (got %q, %v): %s", line, err, c.stderr.String())
	}
	c.url = strings.TrimPrefix(line, nodeLineURL)
	return c, nil
}

func (c *child) next(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", errors.New("the node process ended")
		}
		return line, nil
	case <-t.C:
		return "", errors.New("the node process did not answer in time")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *child) resumeEngine() error {
	if _, err := fmt.Fprintln(c.stdin, nodeLineResume); err != nil {
		return fmt.Errorf("resume node process: %w", err)
	}
	line, err := c.next(context.Background(), 30*time.Second)
	if err != nil || line != nodeLineResumed {
		return fmt.Errorf("resume node process: got %q, %v", line, err)
	}
	return nil
}

// writerStats asks the child for its SQLite writer's counters; false if it cannot say.
func (c *child) writerStats() (sqlite.WriterStats, bool) {
	var st sqlite.WriterStats
	if _, err := fmt.Fprintln(c.stdin, nodeLineWriter); err != nil {
		return st, false
	}
	line, err := c.next(context.Background(), 30*time.Second)
	report, ok := strings.CutPrefix(line, nodeLineWriter+" ")
	if err != nil || !ok || json.Unmarshal([]byte(report), &st) != nil {
		return st, false
	}
	return st, true
}

// close ends the child by closing its stdin and waits for it, killing it after 60 s.
func (c *child) close() error {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	t := time.NewTimer(60 * time.Second)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("node process: %w: %s", err, c.stderr.String())
		}
		return nil
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-done
		return errors.New("node process did not stop within 60 s and was killed")
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
