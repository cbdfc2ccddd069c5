package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/jackc/pgx/v5"
)

// postgresBackend runs the engine on PostgreSQL, each test in a fresh schema.
var postgresBackend = backend{
	name: "postgres",
	newKey: func(tb testing.TB) string {
		return "dispatch_test_" + strings.ToLower(aviso.NewID("", time.Now()))
	},
	open: func(tb testing.TB, key string) aviso.Store {
		tb.Helper()
		url := testenv.PostgresURL(tb)
		tb.Cleanup(func() { dropSchema(tb, url, key) })
		s, err := postgres.Open(tb.Context(), url, postgres.Options{Migrate: true, Schema: key})
		if err != nil {
			tb.Fatalf("open postgres: %v", err)
		}
		return closeAtEnd(tb, s)
	},
}

func dropSchema(tb testing.TB, url, schema string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Errorf("drop schema: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
	}
}
