package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresSchema creates a fresh schema named prefix + random hex on the PostgreSQL of
// AVISO_TEST_POSTGRES_URL, dropped with everything in it when tb ends, so tests can run in
// parallel on one database. It returns the database URL and the schema name; SchemaURL makes a
// URL that selects the schema. Skips (fails under CI) without AVISO_TEST_POSTGRES_URL.
func PostgresSchema(tb testing.TB, prefix string) (url, schema string) {
	tb.Helper()
	url = PostgresURL(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = prefix + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() { DropPostgresSchema(tb, url, schema) })
	return url, schema
}

// DropPostgresSchema drops schema and everything in it, reporting a failure to tb.
func DropPostgresSchema(tb testing.TB, url, schema string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
	}
}

// SchemaURL returns url selecting schema: pgx passes search_path from the URL to the server as a
// run-time parameter, which is also how an operator points `aviso serve --database` at a schema.
func SchemaURL(url, schema string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}
