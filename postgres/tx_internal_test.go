package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestInTxRetriesAbortedTransactions: a transaction PostgreSQL aborts as a deadlock victim runs
// again, and only its last run's writes are committed; other errors are returned at once.
func TestInTxRetriesAbortedTransactions(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "aviso_tx_")
	s, err := Open(t.Context(), url, Options{Migrate: true, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	count := func() int {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tenants`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	runs := 0
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		runs++
		if _, err := tx.Exec(ctx, `INSERT INTO tenants (id, name, metadata, created_at, updated_at)
			VALUES ($1, 'T', '{}', now(), now())`, fmt.Sprintf("t%d", runs)); err != nil {
			return err
		}
		if runs < 3 {
			return fmt.Errorf("lock rows: %w", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
		}
		return nil
	})
	if err != nil || runs != 3 {
		t.Fatalf("inTx = %v after %d runs, want nil after 3", err, runs)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d tenants committed, want only the last run's 1", n)
	}

	runs = 0
	boom := errors.New("boom")
	if err := s.inTx(ctx, func(tx pgx.Tx) error { runs++; return boom }); !errors.Is(err, boom) || runs != 1 {
		t.Fatalf("plain error: %v after %d runs, want boom after 1", err, runs)
	}
	runs = 0
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		runs++
		return &pgconn.PgError{Code: "40001"}
	})
	if !retryableTx(err) || runs != maxTxTries {
		t.Fatalf("always aborted: %v after %d runs, want the abort after %d", err, runs, maxTxTries)
	}

	cctx, cancel := context.WithCancel(ctx)
	runs = 0
	err = s.inTx(cctx, func(tx pgx.Tx) error { runs++; cancel(); return &pgconn.PgError{Code: "40P01"} })
	if runs != 1 || err == nil {
		t.Fatalf("cancelled: %v after %d runs, want the abort after 1", err, runs)
	}
}
