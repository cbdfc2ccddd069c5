package sqlite

import (
	"context"
	"database/sql"

	"github.com/aviso-dev/aviso"
)

// SetClaimReadHook makes fn run at the start of each claim's read transaction.
func SetClaimReadHook(s *Store, fn func(tx *sql.Tx)) { s.claimReadHook = fn }

// HoldWriter runs a write body that waits until release is called, and returns once that body
// is running: writes made meanwhile queue up for the next group.
func HoldWriter(s *Store) (release func()) {
	running, rel, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_ = s.write(context.Background(), "hold", func(context.Context, *sql.Tx) error {
			close(running)
			<-rel
			return nil
		})
	}()
	<-running
	return func() { close(rel); <-done }
}

// QueuedWrites is how many writes wait for the next group.
func QueuedWrites(s *Store) int {
	s.commit.mu.Lock()
	defer s.commit.mu.Unlock()
	return len(s.commit.pending)
}

// MergedInserts is how many InsertEvents calls have run merged with others.
func MergedInserts(s *Store) int64 { return s.commit.merges.Load() }

// Commits is how many groups the writer has committed.
func Commits(s *Store) uint64 { return s.commit.commits.Load() }

// ClaimPlans returns SQLite's query plans (EXPLAIN QUERY PLAN, one line a step) of the walks in
// due order of ClaimDeliveries ("claim", "claim of an endpoint") and NextDueAt ("next due").
func ClaimPlans(s *Store) (map[string][]string, error) {
	out := make(map[string][]string)
	for name, stmt := range map[string]struct {
		sql  string
		args []any
	}{
		"claim":                {claimDue, []any{1}},
		"claim of an endpoint": {claimOldestOf, []any{"ep_1", 1, true}},
		"next due":             {nextDue, nil},
	} {
		plan, err := explain(s, stmt.sql, stmt.args)
		if err != nil {
			return nil, err
		}
		out[name] = plan
	}
	return out, nil
}

// ListPlan returns SQLite's query plan (EXPLAIN QUERY PLAN, one line a step) of the statement
// that ListEvents (with ev) or ListDeliveries (with d) runs for those parameters.
func ListPlan(s *Store, ev *aviso.ListEventsParams, d *aviso.ListDeliveriesParams) ([]string, error) {
	var stmt string
	var args []any
	var err error
	if ev != nil {
		stmt, args, err = listEventsSQL(*ev)
	} else {
		stmt, args = listDeliveriesSQL(*d)
	}
	if err != nil {
		return nil, err
	}
	return explain(s, stmt, args)
}

// explain returns SQLite's query plan of stmt run with args, one line a step.
func explain(s *Store, stmt string, args []any) ([]string, error) {
	var plan []string
	err := s.read(context.Background(), "explain", func(tx *sql.Tx) error {
		rows, err := tx.Query(`EXPLAIN QUERY PLAN `+stmt, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				return err
			}
			plan = append(plan, detail)
		}
		return rows.Err()
	})
	return plan, err
}
