package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// parseHealthcheck reads `aviso healthcheck`: GET /healthz (or /readyz with --ready) on the
// node at --url, default the address serve listens on (AVISO_ADDR), exiting non-zero unless it
// answers 200 within --timeout. A static container image has no curl: its HEALTHCHECK runs this.
func (m *Main) parseHealthcheck(args []string) error {
	fs := m.flagSet("healthcheck")
	fs.Usage = func() {
		fmt.Fprint(m.stderr, `Usage: aviso healthcheck [--url URL] [--ready] [--timeout 3s]

Exits 0 when the node answers GET /healthz (with --ready, GET /readyz: the store answers too)
with 200, 1 otherwise. Used by the Docker image's HEALTHCHECK.

Example:
  aviso healthcheck --url http://127.0.0.1:8080 --ready

Flags:
`)
		fs.PrintDefaults()
	}
	url := fs.String("url", "", "base URL of the node; default http:// + AVISO_ADDR (127.0.0.1:8080), a wildcard host read as 127.0.0.1")
	ready := fs.Bool("ready", false, "check readiness (/readyz) instead of liveness (/healthz)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base := *url
	if base == "" {
		base = "http://" + localAddr(m.envString("AVISO_ADDR", "127.0.0.1:8080"))
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	m.run = func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("healthcheck: %s answered %s", req.URL, res.Status)
		}
		fmt.Fprintln(m.stdout, "ok")
		return nil
	}
	return nil
}

// localAddr turns a listen address into one to dial on this machine: a wildcard or empty host
// (":8080", "0.0.0.0:8080", "[::]:8080") becomes 127.0.0.1.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
