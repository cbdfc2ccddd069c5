// Package testnode runs a real Aviso node (server.Open, then Run) in a test's process, for the
// end-to-end tests of the server and of what is built on it (the CLI, the client, the outbox
// relay). A node listens on a free 127.0.0.1 port unless its config says otherwise, and stops
// when the test ends. (It is apart from internal/testenv because it imports the server, which
// imports the stores whose own tests use testenv.)
package testnode

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/server"
)

// stopWait bounds how long Stop waits for the node to shut down.
const stopWait = 20 * time.Second

// Node is a node running in the test's process.
type Node struct {
	*server.Server
	stop func()
}

// Run opens a node with cfg and runs it until Stop or the end of the test. Fields left empty
// get a test's defaults: Addr 127.0.0.1:0, a temporary DataDir (without DatabaseURL), and a
// Logger and Stdout that discard. An error opening the node, an error its Run returns, and a
// shutdown that takes longer than 20 seconds fail the test.
func Run(tb testing.TB, cfg server.Config) *Node {
	tb.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" && cfg.DatabaseURL == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("open node: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	n := &Node{Server: srv}
	n.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("node stopped with %v", err)
				}
			case <-time.After(stopWait):
				tb.Errorf("node did not stop within %s", stopWait)
			}
		})
	}
	tb.Cleanup(n.stop)
	return n
}

// Stop shuts the node down gracefully and waits for it; later calls do nothing.
func (n *Node) Stop() { n.stop() }
