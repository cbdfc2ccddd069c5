package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/service"
)

// invoice is data that satisfies the catalog's invoice schema.
func invoice(n int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"idfactura":%d,"codigo":"FAC%06d","total":%d.5}`, n, n, n))
}

// TestRelay publishes committed rows as events — a derived id, or the row's event_id — with the
// row's type, data and external reference, and deletes the rows.
func TestRelay(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		svc := newService(t, nil)
		src.write(t,
			outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(1), ExternalReference: "FAC000001"},
			outbox.Event{TenantID: "acme", Type: "invoice.paid", Data: map[string]any{"idfactura": 1, "pagada": true}},
			outbox.Event{TenantID: "acme", Type: "invoice.updated", Data: invoice(1), EventID: "evt_app_chosen"})
		r := startRelay(t, outbox.Config{Sources: []string{src.url}, Service: svc})
		waitFor(t, 10*time.Second, "3 events", func() bool { return len(events(t, svc, "acme")) == 3 })
		evs := events(t, svc, "acme")
		prefix := strings.TrimSuffix(r.EventID(r.Sources()[0], 1), "1")
		if evs[0].ID != prefix+"1" || evs[1].ID != prefix+"2" || evs[2].ID != "evt_app_chosen" {
			t.Errorf("event ids %s %s %s; want %s1, %s2, evt_app_chosen", evs[0].ID, evs[1].ID, evs[2].ID, prefix, prefix)
		}
		if evs[0].Type != "invoice.created" || evs[0].ExternalReference != "FAC000001" || string(evs[0].Data) != string(invoice(1)) {
			t.Errorf("first event %+v (data %s)", evs[0], evs[0].Data)
		}
		if evs[1].Type != "invoice.paid" || string(evs[1].Data) != `{"idfactura":1,"pagada":true}` || evs[1].ExternalReference != "" {
			t.Errorf("second event %+v (data %s)", evs[1], evs[1].Data)
		}
		waitFor(t, 5*time.Second, "an empty outbox", func() bool { return src.count(t, "SELECT count(*) FROM aviso_outbox") == 0 })
		st := waitStatus(t, r, "3 rows relayed", func(st outbox.Status) bool { return st.Relayed == 3 })
		if !st.Reachable || st.LastRelayedID != 3 || st.LagRows != 0 || st.Kind != src.kind || st.LastRelayedAt == nil {
			t.Errorf("status %+v", st)
		}
		if _, err := r.Status(context.Background(), aviso.Principal{TenantID: "acme"}); aviso.ErrorCode(err) != aviso.EFORBIDDEN {
			t.Errorf("a tenant key read the status: %v", err)
		}
	})
}

// TestRelayKeep marks relayed rows instead of deleting them, and reads them only once.
func TestRelayKeep(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		svc := newService(t, nil)
		for i := range 5 {
			src.write(t, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(i)})
		}
		r := startRelay(t, outbox.Config{Sources: []string{src.url}, Service: svc, Keep: true})
		waitFor(t, 10*time.Second, "5 marked rows", func() bool {
			return src.count(t, "SELECT count(*) FROM aviso_outbox WHERE relayed_at IS NOT NULL") == 5
		})
		src.write(t, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(6)})
		waitFor(t, 10*time.Second, "6 marked rows", func() bool {
			return src.count(t, "SELECT count(*) FROM aviso_outbox WHERE relayed_at IS NOT NULL") == 6
		})
		if n := len(events(t, svc, "acme")); n != 6 {
			t.Errorf("%d events, want 6", n)
		}
		st := waitStatus(t, r, "6 rows relayed", func(st outbox.Status) bool { return st.Relayed >= 6 })
		if st.Relayed != 6 || st.Repeated != 0 || st.LagRows != 0 {
			t.Errorf("status %+v: each kept row must be relayed once", st)
		}
	})
}

// TestOutOfOrderCommit: a transaction that took a smaller id and commits after one that took a
// larger id is not skipped, and the open transaction does not hold the committed row back.
func TestOutOfOrderCommit(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		svc := newService(t, nil)
		r := startRelay(t, outbox.Config{Sources: []string{src.url}, Service: svc})
		ctx := context.Background()
		early, err := src.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer early.Rollback()
		if err := outbox.Write(ctx, early, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(1)}); err != nil {
			t.Fatal(err)
		}
		src.write(t, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(2)})
		name := r.Sources()[0]
		// The later row (id 2) is relayed while the earlier one (id 1) is still uncommitted.
		waitFor(t, 10*time.Second, "row 2's event", func() bool { return hasEvent(svc, "acme", r.EventID(name, 2)) })
		if hasEvent(svc, "acme", r.EventID(name, 1)) {
			t.Fatal("an uncommitted row was published")
		}
		if err := early.Commit(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "row 1's event, committed last", func() bool { return hasEvent(svc, "acme", r.EventID(name, 1)) })
		// A third transaction rolls back: its row is never published.
		tx, _ := src.db.BeginTx(ctx, nil)
		if err := outbox.Write(ctx, tx, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(3)}); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		src.write(t, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(4)})
		waitFor(t, 10*time.Second, "row 4's event", func() bool { return hasEvent(svc, "acme", r.EventID(name, 4)) })
		if n := len(events(t, svc, "acme")); n != 3 {
			t.Errorf("%d events, want 3 (rows 1, 2 and 4)", n)
		}
	})
}

// TestConcurrentWriters: eight connections insert rows in transactions of varying size, some
// rolled back, while the relay runs; exactly the committed rows become events, each once.
func TestConcurrentWriters(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		svc := newService(t, nil)
		r := startRelay(t, outbox.Config{Sources: []string{src.url}, Service: svc})
		committed := writeConcurrently(t, src, 8, 800)
		waitFor(t, 30*time.Second, fmt.Sprintf("%d events", len(committed)), func() bool {
			return len(events(t, svc, "acme")) >= len(committed)
		})
		checkExactly(t, svc, committed)
		st := waitStatus(t, r, "every row relayed", func(st outbox.Status) bool { return st.Relayed >= int64(len(committed)) })
		if st.Repeated != 0 || st.Relayed != int64(len(committed)) {
			t.Errorf("%d rows relayed for %d, %d of them twice", st.Relayed, len(committed), st.Repeated)
		}
	})
}

// writeConcurrently inserts total rows from conns goroutines in transactions of 1 to 7 rows
// with outbox.Write, rolling back about one in five, and returns the external references of the
// committed rows.
func writeConcurrently(t testing.TB, src *sourceDB, conns, total int) map[string]bool {
	return writeRows(t, src, conns, total, 7, false, nil)
}

// writeRows is writeConcurrently with transactions of 1 to maxTx rows, inserted with one
// multi-row INSERT per transaction when bulk. With gate, each writer calls gate(k) before
// writing the k-th sixth of its rows (k = 1…5).
func writeRows(t testing.TB, src *sourceDB, conns, total, maxTx int, bulk bool, gate func(k int)) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	committed := map[string]bool{}
	var wg sync.WaitGroup
	per := total / conns
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			stage := 0
			for n, txn := 0, 0; n < per; txn++ {
				if gate != nil && n*6/per > stage {
					stage = n * 6 / per
					gate(stage)
				}
				size := min(1+(txn*7+c*3)%maxTx, per-n)
				tx, err := src.db.BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				var refs []string
				var values []string
				var args []any
				for range size {
					ref := fmt.Sprintf("W%d-%05d", c, n)
					n++
					refs = append(refs, ref)
					if bulk {
						k := len(args)
						values = append(values, fmt.Sprintf("('acme', 'invoice.created', %s, %s)", src.ph(k+1), src.ph(k+2)))
						args = append(args, ref, string(invoice(n)))
						continue
					}
					if err := outbox.Write(ctx, tx, outbox.Event{TenantID: "acme", Type: "invoice.created",
						Data: invoice(n), ExternalReference: ref}); err != nil {
						t.Error(err)
						tx.Rollback()
						return
					}
				}
				if bulk {
					if _, err := tx.ExecContext(ctx, "INSERT INTO aviso_outbox (tenant_id, type, external_reference, data) VALUES "+
						strings.Join(values, ", "), args...); err != nil {
						t.Error(err)
						tx.Rollback()
						return
					}
				}
				if (txn+c)%5 == 0 {
					tx.Rollback()
					continue
				}
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, ref := range refs {
					committed[ref] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return committed
}

// checkExactly fails unless the tenant's events are exactly the committed references, each once.
func checkExactly(t testing.TB, svc *service.Service, committed map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range events(t, svc, "acme") {
		seen[ev.ExternalReference]++
	}
	for ref := range committed {
		if seen[ref] != 1 {
			t.Errorf("committed row %s has %d events, want 1", ref, seen[ref])
		}
	}
	for ref, n := range seen {
		if !committed[ref] {
			t.Errorf("%d events for %s, a row that was rolled back", n, ref)
		}
	}
}

// TestRejected: rows the service refuses move to aviso_outbox_rejected with the reason, without
// holding back the rows around them, and are listed newest first.
func TestRejected(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		svc := newService(t, nil)
		// A text column lets the application write data that is not JSON, as some schemas do.
		alter := map[string]string{"postgres": "ALTER TABLE aviso_outbox ALTER COLUMN data TYPE text",
			"mariadb": "ALTER TABLE aviso_outbox MODIFY data LONGTEXT NOT NULL"}[src.kind]
		if _, err := src.db.Exec(alter); err != nil {
			t.Fatal(err)
		}
		good := outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(1)}
		src.write(t, good,
			outbox.Event{TenantID: "nobody", Type: "invoice.created", Data: invoice(2)},
			outbox.Event{TenantID: "acme", Type: "no.such.type", Data: invoice(3)},
			outbox.Event{TenantID: "acme", Type: "invoice.created", Data: map[string]any{"total": "lots"}},
			outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(5), EventID: "bad id with spaces"},
			good)
		if _, err := src.db.Exec("INSERT INTO aviso_outbox (tenant_id, type, data) VALUES ('acme', 'invoice.created', 'not json')"); err != nil {
			t.Fatal(err)
		}
		src.write(t, good)
		logs := &testenv.LogBuffer{}
		r := startRelay(t, outbox.Config{Sources: []string{src.url}, Service: svc, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		waitFor(t, 10*time.Second, "an empty outbox", func() bool { return src.count(t, "SELECT count(*) FROM aviso_outbox") == 0 })
		if n := len(events(t, svc, "acme")); n != 3 {
			t.Errorf("%d events, want the 3 good rows", n)
		}
		page, err := r.ListRejected(context.Background(), root, outbox.ListRejectedParams{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]string{2: `tenant "nobody" not found`, 3: `type: "no.such.type" is not in the event catalog`,
			4: "data", 5: "id:", 7: "data: is not valid JSON"}
		if len(page.Data) != len(want) {
			t.Fatalf("%d rejected rows, want %d: %+v", len(page.Data), len(want), page.Data)
		}
		for i, rj := range page.Data {
			if i > 0 && rj.ID >= page.Data[i-1].ID {
				t.Errorf("not newest first: %d after %d", rj.ID, page.Data[i-1].ID)
			}
			if w, ok := want[rj.ID]; !ok || !strings.Contains(rj.Reason, w) {
				t.Errorf("row %d rejected for %q; want a reason with %q", rj.ID, rj.Reason, w)
			}
			if rj.Source != r.Sources()[0] || rj.CreatedAt.IsZero() || rj.RejectedAt.IsZero() {
				t.Errorf("rejected row %+v", rj)
			}
		}
		if page.Data[0].Data != "not json" || page.Data[4].TenantID != "nobody" {
			t.Errorf("rejected rows keep the row as it was: %+v, %+v", page.Data[0], page.Data[4])
		}
		// Paging: two at a time.
		p1, _ := r.ListRejected(context.Background(), root, outbox.ListRejectedParams{ListParams: aviso.ListParams{Limit: 2}})
		p2, _ := r.ListRejected(context.Background(), root, outbox.ListRejectedParams{ListParams: aviso.ListParams{Limit: 2, After: p1.NextCursor}})
		if !p1.HasMore || len(p2.Data) != 2 || p2.Data[0].ID != page.Data[2].ID {
			t.Errorf("paging: %+v then %+v", p1, p2)
		}
		if st := waitStatus(t, r, "the counters", func(st outbox.Status) bool { return st.Relayed == 3 }); st.Rejected != 5 {
			t.Errorf("status counts %d rejected, want 5", st.Rejected)
		}
		for _, want := range []string{`msg="outbox row rejected"`, "outbox_id=2 tenant_id=nobody", `reason="type: \"no.such.type\" is not in the event catalog"`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the log lacks %s:\n%s", want, logs.String())
			}
		}
		if _, err := r.ListRejected(context.Background(), aviso.Principal{TenantID: "acme"}, outbox.ListRejectedParams{}); aviso.ErrorCode(err) != aviso.EFORBIDDEN {
			t.Errorf("a tenant key listed rejected rows: %v", err)
		}
		if _, err := r.ListRejected(context.Background(), root, outbox.ListRejectedParams{Source: "elsewhere"}); aviso.ErrorCode(err) != aviso.EINVALID {
			t.Errorf("unknown source: %v", err)
		}
	})
}

// TestSeveralRelays: two relays (two Aviso nodes) on one outbox share the rows without relaying
// any twice.
func TestSeveralRelays(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		store := testenv.SQLite(t)
		svc1, svc2 := newService(t, store), newService(t, store)
		cfg := outbox.Config{Sources: []string{src.url}, BatchSize: 50}
		cfg.Service = svc1
		r1 := startRelay(t, cfg)
		cfg.Service = svc2
		r2 := startRelay(t, cfg)
		committed := writeConcurrently(t, src, 8, 1200)
		waitFor(t, 30*time.Second, "every committed row's event", func() bool {
			return len(events(t, svc1, "acme")) >= len(committed)
		})
		waitFor(t, 10*time.Second, "an empty outbox", func() bool { return src.count(t, "SELECT count(*) FROM aviso_outbox") == 0 })
		checkExactly(t, svc1, committed)
		waitFor(t, 10*time.Second, "the counters", func() bool {
			s1, _ := r1.Status(context.Background(), root)
			s2, _ := r2.Status(context.Background(), root)
			return s1[0].Relayed+s2[0].Relayed >= int64(len(committed))
		})
		s1, _ := r1.Status(context.Background(), root)
		s2, _ := r2.Status(context.Background(), root)
		if s1[0].Relayed+s2[0].Relayed != int64(len(committed)) || s1[0].Repeated+s2[0].Repeated != 0 {
			t.Errorf("relayed %d + %d (repeated %d + %d) for %d rows: work was doubled",
				s1[0].Relayed, s2[0].Relayed, s1[0].Repeated, s2[0].Repeated, len(committed))
		}
		t.Logf("relay 1: %d rows, relay 2: %d rows", s1[0].Relayed, s2[0].Relayed)
	})
}

// TestUnreachable: a source that cannot be reached fails Ping (readiness) and shows in the
// status, and the relay keeps retrying without failing.
func TestUnreachable(t *testing.T) {
	svc := newService(t, nil)
	for _, url := range []string{"postgres://postgres@127.0.0.1:1/nowhere?connect_timeout=1", "mysql://root@127.0.0.1:1/nowhere?timeout=1s"} {
		r := startRelay(t, outbox.Config{Sources: []string{url}, Service: svc})
		err := r.Ping(context.Background())
		if aviso.ErrorCode(err) != aviso.EUNAVAILABLE || !strings.Contains(aviso.ErrorMessage(err), r.Sources()[0]) {
			t.Errorf("%s: Ping answered %v", url, err)
		}
		st, err := r.Status(context.Background(), root)
		if err != nil || st[0].Reachable || st[0].Error == "" {
			t.Errorf("%s: status %+v, %v", url, st, err)
		}
	}
}

// TestLag: the status counts the rows waiting and the age of the oldest.
func TestLag(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		svc := newService(t, nil)
		r, err := outbox.New(outbox.Config{Sources: []string{src.url}, Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		src.write(t, outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(1)},
			outbox.Event{TenantID: "acme", Type: "invoice.created", Data: invoice(2)})
		if _, err := src.db.Exec("UPDATE aviso_outbox SET created_at = created_at - INTERVAL '90' SECOND WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		st, err := r.Status(context.Background(), root)
		if err != nil {
			t.Fatal(err)
		}
		if !st[0].Reachable || st[0].LagRows != 2 || st[0].LagSeconds < 89 || st[0].LagSeconds > 3600 || st[0].LastRelayedID != 0 {
			t.Errorf("status %+v: want 2 rows, the oldest about 90 s old", st[0])
		}
		if err := r.Ping(context.Background()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// TestSourceURLs: how sources are parsed, named and refused.
func TestSourceURLs(t *testing.T) {
	svc := newService(t, nil)
	tests := []struct {
		url, name, err string
	}{
		{"postgres://u:secret@db.example:5433/billing?sslmode=disable", "postgres://db.example:5433/billing", ""},
		{"postgresql://db.example/billing?search_path=app", "postgres://db.example:5432/billing?search_path=app", ""},
		{"mysql://root:secret@127.0.0.1/facturas?timeout=5s", "mysql://127.0.0.1:3306/facturas", ""},
		{"mysql://root@db:3307/facturas?aviso_source=fs-main", "fs-main", ""},
		{"redis://localhost/0", "", "scheme"},
		{"mysql://root:secret@db", "", "names no database"},
		{"mysql://root:secret@db/x?timeout=banana", "", "options"},
		{"not a url", "", "not a postgres"},
		// A password in the query (libpq's password=) is no more shown than one in the userinfo.
		{"redis://localhost/0?password=secret", "", "scheme"},
		{"postgres://db.example?sslmode=require&password=secret", "", "names no database"},
		{"postgres://u:secret@db example/x?password=secret", "", "not a postgres"},
	}
	for _, tt := range tests {
		r, err := outbox.New(outbox.Config{Sources: []string{tt.url}, Service: svc})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: error %v, want one with %q and no password", tt.url, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if got := r.Sources()[0]; got != tt.name {
			t.Errorf("%s: named %q, want %q", tt.url, got, tt.name)
		}
		r.Close()
	}
	if _, err := outbox.New(outbox.Config{Sources: []string{"mysql://a@h/x", "mysql://b@h:3306/x"}, Service: svc}); err == nil {
		t.Error("the same source twice was accepted")
	}
	a, _ := outbox.New(outbox.Config{Sources: []string{"mysql://a@h/x", "mysql://a@h/y"}, Service: svc})
	defer a.Close()
	if a.EventID("mysql://h:3306/x", 7) == a.EventID("mysql://h:3306/y", 7) {
		t.Error("two sources derive the same event id for their row 7")
	}
}

// TestWriteRefuses: Write refuses an event it can tell is incomplete before touching the table.
func TestWriteRefuses(t *testing.T) {
	eachDB(t, func(t *testing.T, src *sourceDB) {
		tx, err := src.db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		for _, e := range []outbox.Event{
			{Type: "invoice.created", Data: invoice(1)},
			{TenantID: "acme", Data: invoice(1)},
			{TenantID: "acme", Type: "invoice.created"},
			{TenantID: "acme", Type: "invoice.created", Data: json.RawMessage("{nope")},
			{TenantID: "acme", Type: "invoice.created", Data: func() {}},
		} {
			if err := outbox.Write(context.Background(), tx, e); err == nil {
				t.Errorf("Write(%+v) accepted", e)
			}
		}
	})
}
