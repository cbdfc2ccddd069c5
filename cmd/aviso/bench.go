package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/aviso-dev/aviso/bench"
)

// parseBench reads the flags of `aviso bench`, the load tool (see package bench), and of its
// internal `aviso bench --node`, the backlog scenario's node run as a child process.
func (m *Main) parseBench(args []string) error {
	fs := m.flagSet("bench")
	var cfg bench.Config
	fs.StringVar(&cfg.URL, "url", m.getenv("AVISO_BENCH_URL"), "measure the running node at this URL instead of starting one; its root key in AVISO_ROOT_KEY; it must allow private networks (env AVISO_BENCH_URL)")
	fs.StringVar(&cfg.DatabaseURL, "database", m.getenv("AVISO_BENCH_DATABASE_URL"), "also run every scenario on PostgreSQL at this URL (env AVISO_BENCH_DATABASE_URL)")
	fs.IntVar(&cfg.Nodes, "nodes", m.envInt("AVISO_BENCH_NODES", 1), "run PostgreSQL's end-to-end scenario on this many in-process nodes sharing the --database, publishing to each in turn; above 1 needs --database; the other scenarios stay on one node (env AVISO_BENCH_NODES)")
	fs.BoolVar(&cfg.Quick, "quick", m.envBool("AVISO_BENCH_QUICK"), "small counts: the whole run takes under a minute; figures are indicative only (env AVISO_BENCH_QUICK=1)")
	fs.StringVar(&cfg.OutboxURL, "outbox-source", m.getenv("AVISO_BENCH_OUTBOX"), "database (postgres://… or mysql://…) where the outbox scenario makes a fresh outbox to relay from; default --database (env AVISO_BENCH_OUTBOX)")
	scenarios := fs.String("scenarios", m.getenv("AVISO_BENCH_SCENARIOS"), "comma-separated scenarios to run, of "+strings.Join(bench.Scenarios, ",")+","+bench.ScenarioOutbox+"; default all (outbox only with --outbox-source) (env AVISO_BENCH_SCENARIOS)")
	fs.IntVar(&cfg.Concurrency, "concurrency", m.envInt("AVISO_BENCH_CONCURRENCY", 8), "requests in flight of the ceiling's bare client; default the server's per-endpoint cap (env AVISO_BENCH_CONCURRENCY)")
	fs.StringVar(&cfg.JSONPath, "json", m.envString("AVISO_BENCH_JSON", "aviso-bench.json"), "write the report as JSON to this file; empty: none (env AVISO_BENCH_JSON)")
	fs.StringVar(&cfg.SQLiteSynchronous, "sqlite-synchronous", m.envString("AVISO_SQLITE_SYNCHRONOUS", "FULL"), "SQLite synchronous pragma of the in-process nodes: FULL (the server's default) or NORMAL (env AVISO_SQLITE_SYNCHRONOUS)")
	dataDir := fs.String("data-dir", m.getenv("AVISO_BENCH_DATA_DIR"), "where the in-process nodes keep their SQLite files; default a temporary directory removed at the end (env AVISO_BENCH_DATA_DIR)")
	inProcess := fs.Bool("in-process", m.envBool("AVISO_BENCH_IN_PROCESS"), "run the backlog node in this process too (its peak RSS then includes the load generator; --cpuprofile then covers it) (env AVISO_BENCH_IN_PROCESS=1)")
	noProgress := fs.Bool("no-progress", m.envBool("AVISO_BENCH_NO_PROGRESS"), "do not show the progress line on stderr (env AVISO_BENCH_NO_PROGRESS=1)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (load generator and in-process nodes) to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to this file")
	node := fs.Bool("node", false, "internal: serve a paused node for the backlog scenario of a parent bench (stdin/stdout protocol)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(m.envString("AVISO_LOG_LEVEL", "warn")))
	log := slog.New(slog.NewTextHandler(m.stderr, &slog.HandlerOptions{Level: level}))

	if *node {
		m.run = func(ctx context.Context) error {
			return bench.ServeNode(ctx, bench.NodeConfig{DataDir: *dataDir, DatabaseURL: m.getenv("AVISO_DATABASE_URL"),
				RootKey: m.getenv("AVISO_ROOT_KEY"), SQLiteSynchronous: cfg.SQLiteSynchronous, Logger: log}, os.Stdin, m.stdout)
		}
		return nil
	}
	if cfg.Nodes < 1 {
		return fmt.Errorf("bench: --nodes %d: at least one node is needed", cfg.Nodes)
	}
	if cfg.Nodes > 1 && (cfg.DatabaseURL == "" || cfg.URL != "") {
		return fmt.Errorf("bench: --nodes %d needs --database postgres://… and no --url: the nodes share one PostgreSQL database (an SQLite store belongs to one node)", cfg.Nodes)
	}
	if *scenarios != "" {
		for _, s := range strings.Split(*scenarios, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Scenarios = append(cfg.Scenarios, s)
			}
		}
	}
	cfg.RootKey = m.getenv("AVISO_ROOT_KEY")
	cfg.DataDir = *dataDir
	cfg.Out = m.stdout
	cfg.Logger = log
	if !*noProgress {
		cfg.Progress = m.stderr
	}
	if !*inProcess && cfg.URL == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: find this program to run the backlog node: %w", err)
		}
		cfg.NodeCommand = []string{exe, "bench", "--node"}
	}
	m.run = func(ctx context.Context) error {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("bench: start CPU profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		rep, err := bench.Run(ctx, cfg)
		if err != nil {
			return err
		}
		if *memProfile != "" {
			if err := writeHeapProfile(*memProfile); err != nil {
				return err
			}
		}
		if cfg.JSONPath != "" {
			fmt.Fprintf(m.stdout, "report written to %s\n", cfg.JSONPath)
		}
		var failed []string
		for _, r := range rep.Results {
			if r.Metric == "error" {
				failed = append(failed, r.Store+" "+r.Scenario)
			}
		}
		if len(failed) > 0 {
			return errors.New("bench: scenarios failed: " + strings.Join(failed, ", "))
		}
		return nil
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: write heap profile: %w", err)
	}
	return f.Close()
}
