package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	m := NewMain(&out, &out, env(nil))
	if err := m.ParseFlags([]string{"version"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "aviso 0.") {
		t.Fatalf("version printed %q", out.String())
	}
}

func TestServeFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, m *Main)
	}{
		{"defaults", []string{"serve"}, nil, func(t *testing.T, m *Main) {
			c := m.Server
			if c.Addr != "127.0.0.1:8080" || c.DataDir != "./aviso-data" || c.AllowPrivateNetworks || c.DatabaseURL != "" {
				t.Errorf("defaults: %+v", c)
			}
			if c.CacheTTL != time.Second || c.Lease != 0 || c.NodeID != "" { // 0, "": the server's defaults
				t.Errorf("cache TTL %v, lease %v", c.CacheTTL, c.Lease)
			}
			if len(c.RetrySchedule) != 5 || c.RetrySchedule[4] != 3125*time.Second {
				t.Errorf("schedule %v", c.RetrySchedule)
			}
		}},
		{"environment", []string{"serve"}, map[string]string{"AVISO_ADDR": ":9999", "AVISO_DATA_DIR": "/tmp/x",
			"AVISO_ALLOW_PRIVATE_NETWORKS": "1", "AVISO_ROOT_KEY": "k", "AVISO_RETRY_SCHEDULE": "1s,2s"}, func(t *testing.T, m *Main) {
			c := m.Server
			if c.Addr != ":9999" || c.DataDir != "/tmp/x" || !c.AllowPrivateNetworks || c.RootKey != "k" || len(c.RetrySchedule) != 2 {
				t.Errorf("env: %+v", c)
			}
		}},
		{"portal brand", []string{"serve", "--portal-name", "Facturas Acme", "--portal-color", "#1d4ed8"},
			map[string]string{"AVISO_PORTAL_LOGO_URL": "https://cdn.example/logo.png", "AVISO_PORTAL_SUPPORT_URL": "mailto:soporte@example.com"},
			func(t *testing.T, m *Main) {
				b := m.Server.PortalBrand
				if b.Name != "Facturas Acme" || b.PrimaryColor != "#1d4ed8" || b.LogoURL != "https://cdn.example/logo.png" || b.SupportURL != "mailto:soporte@example.com" {
					t.Errorf("portal brand %+v", b)
				}
			}},
		{"flags win over environment", []string{"serve", "--addr", "127.0.0.1:1", "--allow-private-networks=false"},
			map[string]string{"AVISO_ADDR": ":9999", "AVISO_ALLOW_PRIVATE_NETWORKS": "1"}, func(t *testing.T, m *Main) {
				if m.Server.Addr != "127.0.0.1:1" || m.Server.AllowPrivateNetworks {
					t.Errorf("flags: %+v", m.Server)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m := NewMain(&out, &out, env(tt.env))
			if err := m.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			tt.check(t, m)
		})
	}
}

func TestBadInput(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"serve", "--retry-schedule", "5s,banana"}, {"migrate"}} {
		var out bytes.Buffer
		if err := NewMain(&out, &out, env(nil)).ParseFlags(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
