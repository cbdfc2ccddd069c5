package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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
	// members are the calls a merged body runs.
	members []*writeReq
}

// finish delivers a body's outcome: to its caller, or to the callers it was merged from.
func (r *writeReq) finish(err error) {
	for _, m := range r.members {
		m.finish(err)
	}
	if r.members == nil {
		r.done <- storeErr(r.op, err)
	}
}

// finishAll delivers err to every body of reqs.
func finishAll(reqs []*writeReq, err error) {
	for _, r := range reqs {
		r.finish(err)
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
	merged.fn = func(ctx context.Context, tx *sql.Tx) error {
		var all []aviso.NewEvent
		for _, r := range ins {
			all = append(all, r.insert.events...)
		}
		out, queued, err := s.insertEvents(ctx, tx, all)
		for _, r := range ins {
			if err == nil {
				n := len(r.insert.events)
				r.insert.out, r.insert.queued, out = out[:n:n], queued, out[n:]
			}
		}
		return err
	}
	out := make([]*writeReq, 0, len(group)-len(ins)+1)
	for _, r := range group {
		switch {
		case r == ins[0]:
			out = append(out, merged)
		case !r.merged:
			out = append(out, r)
		}
	}
	return out
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
	group = s.mergeInserts(group)
	single := len(group) == 1 && group[0].members == nil
	// The transaction outlives any one body's context; each body's statements use its own.
	tx, err := s.w.BeginTx(context.WithoutCancel(group[0].ctx), nil)
	if err != nil {
		finishAll(group, err)
		return
	}
	defer tx.Rollback()
	var ok []*writeReq
	for i := 0; i < len(group); i++ {
		r := group[i]
		if err := r.ctx.Err(); err != nil {
			r.finish(err)
			continue
		}
		err, groupErr := runBody(tx, r, single)
		switch {
		case err != nil && single:
			r.finish(err) // without a savepoint: the rollback undoes it
			return
		case groupErr != nil:
			if err == nil {
				err = groupErr
			}
			r.finish(err)
			finishAll(ok, groupErr)
			finishAll(group[i+1:], groupErr)
			return
		case err != nil && r.members != nil:
			// The merged calls run again one at a time, each in a savepoint of its own, so
			// each gets its own outcome.
			group = slices.Insert(group, i+1, r.members...)
		case err != nil:
			r.finish(err)
		case r.members != nil:
			ok = append(ok, r.members...)
		default:
			ok = append(ok, r)
		}
	}
	start := time.Now()
	err = tx.Commit()
	s.commit.commitNs.Add(int64(time.Since(start)))
	if err == nil {
		s.commit.commits.Add(1)
	}
	finishAll(ok, err)
}

// runBody runs r in tx, in a savepoint of its own unless it is alone in its group. It returns
// r's error, undone, and groupErr if the savepoint could not be set or undone: then the group
// fails (SQLite rolls the whole transaction back on some I/O errors, and the savepoint is gone).
func runBody(tx *sql.Tx, r *writeReq, single bool) (err, groupErr error) {
	ctx := context.WithoutCancel(r.ctx)
	if single {
		return r.fn(ctx, tx), nil
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT body`); err != nil {
		return nil, err
	}
	if err := r.fn(ctx, tx); err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO body; RELEASE body`); rerr != nil {
			return err, fmt.Errorf("roll back after %s failed: %w", r.op, rerr)
		}
		return err, nil
	}
	_, err = tx.ExecContext(ctx, `RELEASE body`)
	return nil, err
}
