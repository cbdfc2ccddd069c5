package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aviso-dev/aviso"
)

// Group commit. Every write method's transaction body goes through write. Bodies that arrive
// while another group is committing wait, and the next leader runs all of them in one SQLite
// transaction, each inside a savepoint of its own, and commits once: one WAL sync
// (synchronous=FULL) for the whole group instead of one per method. Each method still happens
// entirely or not at all (a body that fails is rolled back to its savepoint and returns its own
// error; if the commit fails every body of the group fails), and none returns before its
// changes are durable. Bodies of a group run one after another, as they would have serially.

// Several InsertEvents calls in one group (single-event publishes arriving together) run as one
// body that inserts all their events with multi-row statements (mergeInserts): a one-event call
// costs a handful of statements, most of it fixed overhead, and a batch shares them. The calls
// were all waiting, none answered, so running them together (and before bodies queued between
// them) is an order they could have had. Should the merged body fail, it is rolled back and the
// calls run one at a time, each in a savepoint of its own, so each gets its own outcome.

// writeReq is one write method's transaction body waiting for a group commit.
type writeReq struct {
	ctx  context.Context
	op   string
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error // buffered: receives the body's outcome once its group committed

	// insert is set on an InsertEvents call: a group runs several of them as one (mergeInserts).
	insert *insertReq
	merged bool // set by mergeInserts on the calls it merged
	// members are the calls a merged body runs; own is a member's own failure, when the merged
	// body went one call at a time (insertMerged).
	members []*writeReq
	own     error
}

// finish delivers a body's outcome: to its caller, or to the callers it was merged from, each of
// whom gets its own failure if it had one.
func (r *writeReq) finish(err error) {
	if r.members == nil {
		r.done <- storeErr(r.op, err)
		return
	}
	for _, m := range r.members {
		if m.own != nil {
			m.done <- storeErr(m.op, m.own)
		} else {
			m.done <- storeErr(m.op, err)
		}
	}
}

// committer queues bodies and elects the leader that commits them.
type committer struct {
	mu      sync.Mutex
	pending []*writeReq
	leader  chan struct{} // capacity 1: holding a value is leading
	// commits counts the groups committed, incremented once a commit has finished: a read
	// transaction started after reading n sees every commit up to the nth (see lease.go).
	commits atomic.Uint64
	merges  atomic.Int64 // InsertEvents bodies merged by mergeInserts (for tests)
	// What WriterStats reports.
	groups   atomic.Uint64 // groups run, committed or not
	writes   atomic.Uint64 // write method calls those groups took
	busyNs   atomic.Int64  // leaders' time in commitGroup
	commitNs atomic.Int64  // of which in COMMIT
}

// WriterStats is what the single writer has done since Open. Every write method waits for the
// writer, so its Busy time over a stretch of wall time is how loaded it was: near 1, writes
// queue behind one another and the writer bounds what the store can take; the figures then say
// where its time goes. The delivery engine's claims run on the readers and are not counted.
type WriterStats struct {
	Groups uint64        // transactions run, each a group of write method calls (see write)
	Writes uint64        // write method calls those transactions took (run, failed or cancelled)
	Busy   time.Duration // time spent running the groups, their commits included
	// Commit is the part of Busy spent committing: writing the WAL, syncing it (Synchronous
	// FULL), and the checkpoints that copy it into the database when it has grown.
	Commit time.Duration
}

// WriterStats reports what the writer has done since Open. Safe for concurrent use.
func (s *Store) WriterStats() WriterStats {
	c := s.commit
	return WriterStats{Groups: c.groups.Load(), Writes: c.writes.Load(),
		Busy: time.Duration(c.busyNs.Load()), Commit: time.Duration(c.commitNs.Load())}
}

// mergeInserts returns group with its InsertEvents calls, if there are several whose context is
// alive, replaced by one body at the place of the first of them.
func (s *Store) mergeInserts(group []*writeReq) []*writeReq {
	var ins []*writeReq
	for _, r := range group {
		if r.insert != nil && r.ctx.Err() == nil {
			ins = append(ins, r)
		}
	}
	if len(ins) < 2 {
		return group
	}
	for _, r := range ins {
		r.merged = true
	}
	s.commit.merges.Add(int64(len(ins)))
	merged := &writeReq{ctx: context.Background(), op: "insert events", members: ins}
	merged.fn = func(ctx context.Context, tx *sql.Tx) error { return s.insertMerged(ctx, tx, ins) }
	out := make([]*writeReq, 0, len(group)-len(ins)+1)
	for _, r := range group {
		switch {
		case r == ins[0]:
			out = append(out, merged)
		case r.merged:
		default:
			out = append(out, r)
		}
	}
	return out
}

// insertMerged runs the InsertEvents calls reqs as one body; see mergeInserts.
func (s *Store) insertMerged(ctx context.Context, tx *sql.Tx, reqs []*writeReq) error {
	var all []aviso.NewEvent
	var live []*writeReq
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil { // ended while the group ran
			r.own = err
			continue
		}
		live = append(live, r)
		all = append(all, r.insert.events...)
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT merged`); err != nil {
		return err
	}
	out, queued, err := s.insertEvents(ctx, tx, all)
	if err == nil {
		for _, r := range live {
			n := len(r.insert.events)
			r.insert.out, r.insert.queued = out[:n:n], queued
			out = out[n:]
		}
		_, err = tx.ExecContext(ctx, `RELEASE merged`)
		return err
	}
	if _, err := tx.ExecContext(ctx, `ROLLBACK TO merged; RELEASE merged`); err != nil {
		return err
	}
	for _, r := range live {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT one`); err != nil {
			return err
		}
		r.insert.out, r.insert.queued, r.own = s.insertEvents(ctx, tx, r.insert.events)
		undo := `RELEASE one`
		if r.own != nil {
			undo = `ROLLBACK TO one; RELEASE one`
		}
		if _, err := tx.ExecContext(ctx, undo); err != nil {
			return err
		}
	}
	return nil
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
	return s.submit(&writeReq{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)})
}

// submit queues req for a group commit (see write) and returns its outcome.
func (s *Store) submit(req *writeReq) error {
	c := s.commit
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
	start := time.Now()
	s.commitGroup(group) // holds req: it was queued before the previous leader left
	c.busyNs.Add(int64(time.Since(start)))
	c.groups.Add(1)
	c.writes.Add(uint64(len(group)))
	return <-req.done
}

// commitGroup runs the bodies in one IMMEDIATE transaction, a savepoint each, and commits.
func (s *Store) commitGroup(group []*writeReq) {
	fail := func(reqs []*writeReq, err error) {
		for _, r := range reqs {
			r.finish(err)
		}
	}
	group = s.mergeInserts(group)
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
			r.finish(err)
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
			r.finish(err)
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
				r.finish(err)
				fail(group[i+1:], err)
				return
			}
		}
		ok = append(ok, r)
	}
	start := time.Now()
	err = tx.Commit()
	s.commit.commitNs.Add(int64(time.Since(start)))
	if err == nil {
		s.commit.commits.Add(1)
	}
	for _, r := range ok {
		r.finish(err)
	}
}
