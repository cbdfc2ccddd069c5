package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/aviso-dev/aviso/internal/migration"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrate brings the database at url up to the newest embedded migration (what `aviso migrate`
// runs). Only Options.Schema and Options.Logger are used. It is safe to run from several
// processes at once: they serialize on an advisory lock and every migration is applied once.
func Migrate(ctx context.Context, url string, opts Options) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrate: parse url: %w", err)
	}
	if opts.Schema != "" {
		cfg.RuntimeParams["search_path"] = opts.Schema
	}
	return migrate(ctx, cfg, opts)
}

// migrate applies the pending migrations in one transaction, so a failure leaves the schema as
// it was. The transaction first takes an advisory lock keyed by the schema; a second node
// starting at the same time waits on it and then finds nothing left to do.
func migrate(ctx context.Context, cfg *pgx.ConnConfig, opts Options) error {
	ms, err := migration.List(migrationFS)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log := opts.logger()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.Background())

	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('aviso_migrate'), hashtext($1))`, opts.Schema); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if opts.Schema != "" {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{opts.Schema}.Sanitize()); err != nil {
			return fmt.Errorf("migrate: create schema: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	applied := 0
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		log.Info("applied migration", "migration", m.Name, "schema", opts.Schema)
		applied++
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	if applied == 0 {
		log.Debug("schema is current", "version", current, "schema", opts.Schema)
	}
	return nil
}

// checkVersion fails unless the database is at the newest embedded migration, so a node started
// without migrations never runs against a schema it does not know.
func checkVersion(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migration.List(migrationFS)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	want := ms[len(ms)-1].Version
	var have int
	err = pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have)
	if err != nil {
		return fmt.Errorf("check schema (run `aviso migrate` first): %w", err)
	}
	if have != want {
		return fmt.Errorf("check schema: database is at migration %d, this build needs %d: run `aviso migrate`", have, want)
	}
	return nil
}
