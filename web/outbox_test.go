package web_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/web"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestOutboxPage: the operator sees each outbox source's status and its rejected rows with the
// reason, in both languages; a tenant key is refused; a node without an outbox says so.
func TestOutboxPage(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "aviso_web_outbox_")
	url = testenv.SchemaURL(url, schema)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ddl, err := os.ReadFile("../docs/outbox/postgres.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(ddl)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO aviso_outbox (tenant_id, type, data) VALUES
		('acme', 'invoice.created', '{"idfactura": 1}'), ('ghost', 'invoice.created', '{"idfactura": 2}')`); err != nil {
		t.Fatal(err)
	}
	var relay *outbox.Relay
	e := newEnv(t, func(c *web.Config) {
		relay, err = outbox.New(outbox.Config{Sources: []string{url}, Service: c.Service, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c.Outbox = relay
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { relay.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM aviso_outbox_rejected").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bad row was not rejected within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	u := e.user(t)
	home := u.login(rootKey)
	wantContains(t, home, `href="/ui/outbox"`)
	r := u.get("/ui/outbox")
	wantStatus(t, r, 200)
	wantContains(t, r, relay.Sources()[0], "Reachable", "Rejected rows", "ghost", "not found", "Last relayed id")
	r = u.get("/ui/outbox", "Accept-Language", "es")
	wantContains(t, r, "Filas rechazadas", "Accesible", "ghost")

	tu := e.user(t)
	tu.login(e.tenantKey)
	wantStatus(t, tu.get("/ui/outbox"), 403)

	none := newEnv(t).user(t)
	none.login(rootKey)
	r = none.get("/ui/outbox")
	wantStatus(t, r, 200)
	wantContains(t, r, "relays no outbox")
}
