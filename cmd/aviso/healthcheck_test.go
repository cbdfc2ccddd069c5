package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/aviso-dev/aviso/internal/testnode"
	"github.com/aviso-dev/aviso/server"
)

// TestHealthcheck runs `aviso healthcheck` against a real node: liveness and readiness pass,
// and a node that is gone fails.
func TestHealthcheck(t *testing.T) {
	srv := testnode.Run(t, server.Config{RootKey: "avk_hc_root"})
	check := func(args ...string) error {
		var out bytes.Buffer
		m := NewMain(&out, &out, func(k string) string {
			if k == "AVISO_ADDR" {
				return srv.Addr()
			}
			return ""
		})
		if err := m.ParseFlags(append([]string{"healthcheck"}, args...)); err != nil {
			t.Fatal(err)
		}
		return m.Run(context.Background())
	}
	if err := check(); err != nil {
		t.Errorf("healthcheck (AVISO_ADDR): %v", err)
	}
	if err := check("--ready", "--url", srv.URL()); err != nil {
		t.Errorf("healthcheck --ready: %v", err)
	}
	srv.Stop()
	if err := check("--timeout", "1s"); err == nil {
		t.Error("healthcheck of a stopped node passed")
	}
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{":8080": "127.0.0.1:8080", "0.0.0.0:80": "127.0.0.1:80", "[::]:9": "127.0.0.1:9",
		"10.1.2.3:8080": "10.1.2.3:8080", "localhost:1": "localhost:1"} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
