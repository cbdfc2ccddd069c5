package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit. Every write method's transaction body goes through write. Bodies that arrive
// while another group is committing wait, and the next leader runs all of them in one SQLite
// transaction, each inside a savepoint of its own, and commits once: one WAL sync
// (synchronous=FULL) for the whole group instead of one per method. Each method still happens
// entirely or not at all (a body that fails is rolled back to its savepoint and returns its own
// error; if the commit fails every body of the group fails), and none returns before its
// changes are durable. Bodies of a group run one after another, as they would have serially.

// writeReq is one write method's transaction body waiting for a group commit.
type writeReq struct {
	ctx  context.Context
	op   string
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error // buffered: receives the body's outcome once its group committed
}

// committer queues bodies and elects the leader that commits them.
type committer struct {
	mu      sync.Mutex
	pending []*writeReq
	leader  chan struct{} // capacity 1: holding a value is leading
	// commits counts the groups committed, incremented once a commit has finished: a read
	// transaction started after reading n sees every commit up to the nth (see lease.go).
	commits atomic.Uint64
}

func newCommitter() *committer { return &committer{leader: make(chan struct{}, 1)} }

// write runs fn in a write transaction on the writer (shared with other bodies waiting at the
// same time; see above) and returns once it is committed.
//
// ctx decides whether fn runs: a body whose context has ended by its turn is not run. Once
// started, a body runs to its end: fn gets ctx without its cancellation. Bodies are short, and the
// SQLite driver would otherwise start a goroutine per statement to watch a cancellable context,
// a cost every statement of the single writer paid.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	c := s.commit
	req := &writeReq{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, req)
	c.mu.Unlock()
	select {
	case err := <-req.done: // a leader ran it
		return err
	case c.leader <- struct{}{}:
	}
	defer func() { <-c.leader }()
	// A leader that ran this body may have finished just before this one took over.
	select {
	case err := <-req.done:
		return err
	default:
	}
	c.mu.Lock()
	group := c.pending
	c.pending = nil
	c.mu.Unlock()
	s.commitGroup(group) // holds req: it was queued before the previous leader left
	return <-req.done
}

// commitGroup runs the bodies in one IMMEDIATE transaction, a savepoint each, and commits.
func (s *Store) commitGroup(group []*writeReq) {
	fail := func(reqs []*writeReq, err error) {
		for _, r := range reqs {
			r.done <- storeErr(r.op, err)
		}
	}
	// The transaction outlives any one body's context; each body's statements use its own.
	tx, err := s.w.BeginTx(context.WithoutCancel(group[0].ctx), nil)
	if err != nil {
		fail(group, err)
		return
	}
	defer tx.Rollback()
	single := len(group) == 1
	var ok []*writeReq
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- storeErr(r.op, err)
			continue
		}
		if !single {
			if _, err := tx.ExecContext(context.WithoutCancel(r.ctx), `SAVEPOINT body`); err != nil {
				fail(ok, err)
				fail(group[i:], err)
				return
			}
		}
		if err := r.fn(context.WithoutCancel(r.ctx), tx); err != nil {
			r.done <- storeErr(r.op, err)
			if single {
				return
			}
			// Undo this body only. If SQLite already rolled the whole transaction back (as it
			// does on some I/O errors), the savepoint is gone and the group fails.
			_, rerr := tx.ExecContext(context.WithoutCancel(r.ctx), `ROLLBACK TO body`)
			if rerr == nil {
				_, rerr = tx.ExecContext(context.WithoutCancel(r.ctx), `RELEASE body`)
			}
			if rerr != nil {
				rerr = fmt.Errorf("roll back after %s failed: %w", r.op, rerr)
				fail(ok, rerr)
				fail(group[i+1:], rerr)
				return
			}
			continue
		}
		if !single {
			if _, err := tx.ExecContext(context.WithoutCancel(r.ctx), `RELEASE body`); err != nil {
				fail(ok, err)
				r.done <- storeErr(r.op, err)
				fail(group[i+1:], err)
				return
			}
		}
		ok = append(ok, r)
	}
	err = tx.Commit()
	if err == nil {
		s.commit.commits.Add(1)
	}
	for _, r := range ok {
		r.done <- storeErr(r.op, err)
	}
}
