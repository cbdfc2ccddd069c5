package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storecopy"
)

// TestMigrateStore runs `aviso migrate-store` in-process from a data directory (AVISO_DATA_DIR)
// into a PostgreSQL schema chosen with the URL's search_path, as an operator would.
func TestMigrateStore(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "aviso_cmd_")
	ctx := t.Context()

	dir := t.TempDir()
	src, err := sqlite.Open(ctx, filepath.Join(dir, "aviso.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := src.CreateTenant(ctx, &aviso.Tenant{ID: "ten_cmd", Name: "Cmd", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	src.Close()

	to := testenv.SchemaURL(url, schema)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		m := NewMain(&out, &out, env(map[string]string{"AVISO_DATA_DIR": dir, "AVISO_DATABASE_URL": to, "AVISO_LOG_LEVEL": "warn"}))
		if err := m.ParseFlags(append([]string{"migrate-store"}, args...)); err != nil {
			return out.String(), err
		}
		err := m.Run(ctx)
		return out.String(), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("migrate-store: %v\n%s", err, out)
	}
	if !strings.Contains(out, "1 tenants") {
		t.Errorf("output %q does not report the tenant copied", out)
	}
	pg, err := postgres.Open(ctx, to, postgres.Options{})
	if err != nil {
		t.Fatalf("open the copy through the URL's search_path: %v", err)
	}
	defer pg.Close()
	if got, err := pg.GetTenant(ctx, "ten_cmd"); err != nil || !got.CreatedAt.Equal(now) {
		t.Fatalf("copied tenant = %+v, %v; want ten_cmd created at %v", got, err, now)
	}

	if _, err := run(); !errors.Is(err, storecopy.ErrTargetNotEmpty) {
		t.Errorf("second run: err = %v, want ErrTargetNotEmpty", err)
	}
	if out, err := run("--force"); err != nil {
		t.Errorf("--force: %v\n%s", err, out)
	}
}

func TestMigrateStoreFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no target", nil, nil, "--to or AVISO_DATABASE_URL is required"},
		{"stray argument", []string{"--to", "postgres://x", "extra"}, nil, "unexpected argument"},
		{"unknown flag", []string{"--database", "postgres://x"}, nil, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := NewMain(&out, &out, env(tt.env)).ParseFlags(append([]string{"migrate-store"}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
