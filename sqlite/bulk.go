package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// The hot paths (publish, claim, complete) write many rows per transaction. Two things make
// that cheap on SQLite through database/sql: statements are parsed once and kept (prepare), and
// rows go in multi-row statements (bulkStatement) so that each row costs a few bound values rather than a
// round trip through database/sql and the VDBE set-up of a statement of its own.

// maxBulkRows is the most rows one multi-row statement carries. A batch is cut into chunks of
// powers of two up to it, so at most log2(maxBulkRows)+1 statement shapes exist per kind.
const maxBulkRows = 64

// prepare prepares the hot paths' statements once, at Open: the writer's (hotStatements, in
// every chunk size) on the writer, the claim's (claimStatements) on the readers. A statement
// prepared on a DB is then reused by every transaction (sql.Tx.StmtContext binds it without
// parsing it again); database/sql prepares it on each reader connection the first time it runs
// there. The map is not modified after Open.
func (s *Store) prepare(ctx context.Context) error {
	s.prepared = make(map[string]*sql.Stmt)
	for db, queries := range map[*sql.DB][]string{s.w: hotStatements(), s.r: claimStatements()} {
		for _, q := range queries {
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", q, err)
			}
			s.prepared[q] = st
		}
	}
	return nil
}

// rstmt returns a statement of claimStatements, prepared, bound to the read transaction tx.
func (s *Store) rstmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	return tx.StmtContext(ctx, s.prepared[query])
}

// stmt returns query, prepared, bound to tx.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := s.prepared[query]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, query) // not a hot statement: parsed for this transaction
}

// query runs query, prepared if it is a hot one, in tx.
func (s *Store) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// bulkStatement is a multi-row statement: head, then row repeated (comma-separated), then tail.
type bulkStatement struct{ head, row, tail string }

// sql is the statement for rows rows.
func (b bulkStatement) sql(rows int) string {
	var sb strings.Builder
	sb.Grow(len(b.head) + rows*(len(b.row)+1) + len(b.tail))
	sb.WriteString(b.head)
	for i := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(b.row)
	}
	sb.WriteString(b.tail)
	return sb.String()
}

// hotStatements lists every statement prepare prepares.
func hotStatements() []string {
	var out []string
	for _, b := range []bulkStatement{insertAttempts, updateCompleted, updateEndpointFailures, insertEventRows, insertDeliveryRows} {
		for size := maxBulkRows; size >= 1; size /= 2 {
			out = append(out, b.sql(size))
		}
	}
	return append(out, completeOwners)
}

// chunkSize is the size of the next chunk of a batch of n rows: the largest power of two ≤ n,
// at most maxBulkRows.
func chunkSize(n int) int {
	size := maxBulkRows
	for size > n {
		size /= 2
	}
	return size
}

// exec runs b over n rows in chunks; args appends row i's values.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, b bulkStatement, n int, args func(dst []any, i int) []any) error {
	_, err := s.queryIDs(ctx, tx, b, n, args)
	return err
}

// queryIDs is exec for a statement that may return IDs: it returns the set of them.
func (s *Store) queryIDs(ctx context.Context, tx *sql.Tx, b bulkStatement, n int, args func(dst []any, i int) []any) (map[string]bool, error) {
	var vals []any
	ids := make(map[string]bool, n)
	for done := 0; done < n; {
		size := chunkSize(n - done)
		vals = vals[:0]
		for i := done; i < done+size; i++ {
			vals = args(vals, i)
		}
		rows, err := s.query(ctx, tx, b.sql(size), vals...)
		if err != nil {
			return nil, err
		}
		got, err := collect(rows, func(sc scanner) (id string, err error) { return id, sc.Scan(&id) })
		if err != nil {
			return nil, err
		}
		for _, id := range got {
			ids[id] = true
		}
		done += size
	}
	return ids, nil
}
