package postgres

import (
	"context"
	"log/slog"
	"time"
)

// Commits that make work due are announced to the other nodes by a NOTIFY sent after the commit,
// in a statement of its own, never inside the transaction.
//
// PostgreSQL commits the transactions that have issued a NOTIFY one at a time, under one lock for
// the whole database that is held until the commit is durable. With a NOTIFY inside each publish,
// every publish of every node waited for the others' disk syncs in turn: at most 1/sync-time
// publishes a second for the whole cluster, a few hundred on disks whose sync takes milliseconds.
// A notifier per Store sends one NOTIFY at a time, covering every commit announced while the
// previous one was on its way, so the lock is taken by the notifiers alone, and publishes commit
// side by side (BENCHMARKS.md, step 21: +15–20 % for single-event publishes from 16 goroutines
// even where a sync takes 0.1 ms).
//
// The NOTIFY follows the commit, so a node that stops in between leaves the other nodes to find
// the work when they next look: the delivery engine looks at least every IdleWait (one second by
// default). Nothing is lost, as the work is in the database; a notification only saves waiting.
//
// The payload is the Store's schema (Options.Schema), so that installations sharing a database in
// schemas of their own do not wake one another's nodes (see heeds).

// notifyTimeout bounds one NOTIFY, Close included.
const notifyTimeout = 5 * time.Second

// notifier sends the NOTIFYs owed for the announced commits, one at a time.
type notifier struct {
	send func(ctx context.Context) error // sends one NOTIFY
	log  *slog.Logger
	owed chan struct{} // holds a value while a NOTIFY is owed
}

func newNotifier(send func(ctx context.Context) error, log *slog.Logger) *notifier {
	return &notifier{send: send, log: log, owed: make(chan struct{}, 1)}
}

// announce records that a NOTIFY is owed. It never blocks: announcements made before the
// notifier takes the last one are covered by a single NOTIFY.
func (n *notifier) announce() {
	select {
	case n.owed <- struct{}{}:
	default: // already owed
	}
}

// run sends the NOTIFYs owed until ctx ends, then the one still owed, if any.
func (n *notifier) run(ctx context.Context) {
	for {
		select {
		case <-n.owed:
			n.notify(ctx)
		case <-ctx.Done():
			select {
			case <-n.owed:
				n.notify(ctx)
			default:
			}
			return
		}
	}
}

// notify sends one NOTIFY, even once ctx has ended (it is owed for a commit that happened); a
// failure is logged, and the other nodes then find the work when they next look.
func (n *notifier) notify(ctx context.Context) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	if err := n.send(sctx); err != nil {
		n.log.Warn("notify the other nodes: they will find the work when they next look", "error", err)
	}
}

// heeds reports whether a Store in schema wakes for a notification with payload: one from its own
// schema, from a Store that names none (or an older version, whose payload was empty), or any
// when it names none itself.
func heeds(schema, payload string) bool {
	return schema == "" || payload == "" || payload == schema
}
