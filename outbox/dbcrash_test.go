package outbox_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/outbox"
)

// TestDatabaseCrash: the source database server — one of the test's own, not the shared one —
// is SIGKILLed (every process of it at once) at random moments, four times, and restarted on its
// data directory, while eight connections of an application insert invoices and their outbox
// rows in transactions (about one in five rolled back) and an Aviso node (SQLite, in-process)
// relays them to a receiver. While the server is down /readyz reports the source; after each
// restart it is ready again and the relay relays again. Afterwards Aviso holds exactly the
// committed rows' events, each once, and the receiver got each at least once.
//
// The application knows which of its transactions committed the way a real one would: a commit
// that fails is ambiguous (the server may have died after committing), so it looks its invoice up
// once the server is back and retries the transaction only if the invoice is not there.
func TestDatabaseCrash(t *testing.T) {
	for _, kind := range []string{"postgres", "mariadb"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var dbs *testenv.DBServer
			appTable := "CREATE TABLE app_invoice (ref VARCHAR(40) PRIMARY KEY, total DECIMAL(12, 2) NOT NULL)"
			if kind == "postgres" {
				dbs = testenv.PostgresServer(t)
			} else {
				dbs = testenv.MariaDBServer(t)
				appTable += " ENGINE=InnoDB"
			}
			src := privateSource(t, dbs)
			if _, err := src.db.Exec(appTable); err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			received := map[string]int{}
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				received[r.Header.Get("webhook-id")]++
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(recv.Close) // after the node's cleanup: its dispatcher may be sending
			node := startNode(t, src.url)
			apiCall(t, node, rootKey, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME SA"}, nil)
			if st := apiCall(t, node, rootKey, "POST", "/v1/tenants/acme/endpoints",
				map[string]any{"url": recv.URL, "verify": false}, nil); st != 201 {
				t.Fatalf("create endpoint: %d", st)
			}

			// The application writes from eight connections until the kills are over.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			app := &crashApp{src: src, committed: map[string]bool{}}
			stop := make(chan struct{})
			var stopOnce sync.Once
			var wg sync.WaitGroup
			stopWriting := func() {
				stopOnce.Do(func() { close(stop) })
				wg.Wait()
			}
			defer func() { // also when the test fails early: no writer outlives it
				cancel()
				stopWriting()
			}()
			for c := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := app.write(ctx, c, stop); err != nil {
						t.Errorf("application writer %d: %v", c, err)
					}
				}()
			}

			relayed := func() int64 {
				st, err := node.Outbox.Status(context.Background(), root)
				if err != nil {
					t.Fatal(err)
				}
				return st[0].Relayed
			}
			client := &http.Client{Timeout: 10 * time.Second}
			ready := func() bool {
				res, err := client.Get(node.URL() + "/readyz")
				if err != nil {
					return false
				}
				res.Body.Close()
				return res.StatusCode == http.StatusOK
			}
			waitFor(t, time.Minute, "the relay's first rows", func() bool { return relayed() > 0 })
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
			const kills = 4
			for k := 1; k <= kills; k++ {
				// A random moment of the application's writing and the relay's work.
				time.Sleep(time.Duration(50+rng.IntN(500)) * time.Millisecond)
				dbs.Kill(t)
				before := relayed() // nothing can commit while the server is down
				waitFor(t, 30*time.Second, fmt.Sprintf("/readyz to report the source killed (kill %d)", k),
					func() bool { return !ready() })
				dbs.Start(t)
				up := time.Now()
				waitFor(t, time.Minute, fmt.Sprintf("/readyz after restart %d", k), ready)
				readyIn := time.Since(up)
				waitFor(t, time.Minute, fmt.Sprintf("the relay to relay again after restart %d", k),
					func() bool { return relayed() > before })
				t.Logf("kill %d: /readyz ready %v and the relay relaying %v after the restart", k,
					readyIn.Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
			}
			stopWriting()
			if t.Failed() {
				return
			}

			// The database's own record of what committed: the invoices.
			committed := map[string]bool{}
			rows, err := src.db.Query("SELECT ref FROM app_invoice")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var ref string
				if err := rows.Scan(&ref); err != nil {
					t.Fatal(err)
				}
				committed[ref] = true
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			if len(committed) != len(app.committed) {
				t.Fatalf("%d invoices committed, but the application counted %d", len(committed), len(app.committed))
			}
			for ref := range app.committed {
				if !committed[ref] {
					t.Fatalf("the application counted %s committed; the database has no such invoice", ref)
				}
			}

			// Drain: the outbox empties and every event reaches the receiver.
			deadline := time.Now().Add(90 * time.Second) // a bound for a loaded machine; a quiet one drains in seconds
			for {
				evs := events(t, node.Service, "acme")
				mu.Lock()
				delivered := 0
				for _, ev := range evs {
					if received[ev.ID] > 0 {
						delivered++
					}
				}
				mu.Unlock()
				waiting := src.count(t, "SELECT count(*) FROM aviso_outbox")
				if waiting == 0 && len(evs) >= len(committed) && delivered == len(evs) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 90 s: %d events, %d delivered, for %d committed rows; %d rows wait",
						len(evs), delivered, len(committed), waiting)
				}
				time.Sleep(100 * time.Millisecond)
			}
			checkExactly(t, node.Service, committed)
			st := waitStatus(t, node.Outbox, "the status", func(outbox.Status) bool { return true })
			t.Logf("%d rows committed (%d transactions, %d rolled back); %d attempts failed while the server was down, "+
				"%d commits were in doubt (%d of them had committed); the relay published %d rows, %d of them again after a kill",
				len(committed), app.txns.Load(), app.rolledBack.Load(), app.failed.Load(), app.doubtful.Load(),
				app.doubtfulCommitted.Load(), st.Relayed, st.Repeated)
		})
	}
}

// crashApp is the application of TestDatabaseCrash: it inserts an invoice and its outbox row in
// one transaction, as a real one would, and survives its database's crashes.
type crashApp struct {
	src *sourceDB

	mu        sync.Mutex
	committed map[string]bool // the refs of the invoices it committed

	txns, rolledBack, failed, doubtful, doubtfulCommitted atomic.Int64
}

// write runs writer c's transactions of one to four invoices until stop is closed, retrying each
// transaction that did not commit.
func (a *crashApp) write(ctx context.Context, c int, stop <-chan struct{}) error {
	rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
	n := 0
	for txn := 0; ; txn++ {
		select {
		case <-stop:
			return nil
		default:
		}
		refs := make([]string, 1+(txn*7+c*3)%4)
		for i := range refs {
			n++
			refs[i] = fmt.Sprintf("W%d-%05d", c, n)
		}
		rollback := (txn+c)%5 == 0
		for pause := 10 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
			doubt, err := a.attempt(ctx, refs, rollback)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("transaction of %s: %w", refs[0], err)
			}
			a.failed.Add(1)
			if doubt {
				a.doubtful.Add(1)
				done, err := a.committedYet(ctx, refs[0])
				if err != nil {
					return err
				}
				if done {
					a.doubtfulCommitted.Add(1)
					a.record(refs)
					break
				}
			}
			select { // the server is down or recovering: retry shortly
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
		a.txns.Add(1)
		if rollback {
			a.rolledBack.Add(1)
		}
		select { // the application's pace: a few dozen transactions a second per connection
		case <-ctx.Done():
		case <-time.After(time.Duration(10+rng.IntN(40)) * time.Millisecond):
		}
	}
}

// attempt runs the transaction once. An error with doubt true came from the commit: the
// transaction may or may not have committed.
func (a *crashApp) attempt(ctx context.Context, refs []string, rollback bool) (doubt bool, err error) {
	tx, err := a.src.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, ref := range refs {
		if _, err := tx.ExecContext(ctx, "INSERT INTO app_invoice (ref, total) VALUES ("+a.src.ph(1)+", 100.5)", ref); err != nil {
			return false, err
		}
		if err := outbox.Write(ctx, tx, outbox.Event{TenantID: "acme", Type: "invoice.created",
			Data: invoice(len(ref)), ExternalReference: ref}); err != nil {
			return false, err
		}
	}
	if rollback {
		return false, tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return true, err
	}
	a.record(refs)
	return false, nil
}

func (a *crashApp) record(refs []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ref := range refs {
		a.committed[ref] = true
	}
}

// committedYet looks the invoice up once the server answers again: whether the transaction that
// inserted it committed.
func (a *crashApp) committedYet(ctx context.Context, ref string) (bool, error) {
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		var n int
		err := a.src.db.QueryRowContext(ctx, "SELECT count(*) FROM app_invoice WHERE ref = "+a.src.ph(1), ref).Scan(&n)
		if err == nil {
			return n == 1, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("look up invoice %s: %w", ref, err)
		case <-time.After(pause):
		}
	}
}
