package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/encryption"
	"github.com/aviso-dev/aviso/internal/testcert"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/jackc/pgx/v5"
)

// openNode runs a node on cfg (root key, loopback, quiet logs filled in) until the test ends or
// stop is called.
func openNode(t *testing.T, cfg server.Config) (*node, *bytes.Buffer) {
	t.Helper()
	var stdout bytes.Buffer
	cfg.RootKey, cfg.AllowPrivateNetworks, cfg.Stdout = rootKey, true, &stdout
	return runNode(t, cfg), &stdout
}

// credentials creates endpoints holding every kind of secret through the API and returns the
// secrets, their signing secrets included.
func credentials(t *testing.T, n *node) []string {
	t.Helper()
	certs := testcert.New(t, "aviso")
	if st := call(t, n, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "Acme"}, nil); st != 201 {
		t.Fatalf("create tenant: %d", st)
	}
	secrets := []string{"pw-Raw81kq", "bearer-Raw27zx", "client-Raw63mv", "header-Raw45pd", "tftoken-Raw19we"}
	bodies := []map[string]any{
		{"auth": map[string]any{"type": "basic", "username": "aviso", "password": secrets[0]}},
		{"auth": map[string]any{"type": "bearer", "token": secrets[1]}},
		{"auth": map[string]any{"type": "oauth2", "token_url": "https://auth.example/token", "client_id": "aviso", "client_secret": secrets[2]}},
		{"headers": map[string]any{"X-Api-Key": map[string]any{"value": secrets[3], "secret": true}}, "format": "tusfacturas", "token": secrets[4]},
		{"auth": map[string]any{"type": "mtls", "cert_pem": certs.ClientCertPEM, "key_pem": certs.ClientKeyPEM}},
		{"signing": "ed25519"},
	}
	// The private key's base64 body, which is what a scan would find.
	secrets = append(secrets, strings.Split(certs.ClientKeyPEM, "\n")[1])
	for _, b := range bodies {
		b["url"], b["verify"] = "https://erp.example/hook", false
		var ep aviso.Endpoint
		if st := call(t, n, "POST", "/v1/tenants/acme/endpoints", b, &ep); st != 201 {
			t.Fatalf("create endpoint %v: %d", b, st)
		}
		var sec struct {
			Secret string `json:"secret"`
		}
		call(t, n, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/secret", nil, &sec)
		if strings.HasPrefix(sec.Secret, "whsec_") {
			secrets = append(secrets, strings.TrimPrefix(sec.Secret, "whsec_"))
		}
	}
	return secrets
}

// secretsOf returns the signing secrets and tokens the secret routes show, in order.
func secretsOf(t *testing.T, n *node) []string {
	t.Helper()
	var page aviso.Page[*aviso.Endpoint]
	call(t, n, "GET", "/v1/tenants/acme/endpoints", nil, &page)
	var out []string
	for _, ep := range page.Data {
		var sec struct {
			Secret, Token string
		}
		if st := call(t, n, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/secret", nil, &sec); st != 200 {
			t.Fatalf("secret route: %d", st)
		}
		out = append(out, sec.Secret, sec.Token)
	}
	return out
}

func wantAbsent(t *testing.T, where string, raw []byte, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%s holds %q in clear", where, s)
		}
	}
}

// sqliteFiles reads the database file with its WAL.
func sqliteFiles(t *testing.T, dir string) []byte {
	t.Helper()
	var raw []byte
	for _, f := range []string{"aviso.db", "aviso.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	return raw
}

// TestEncryptionAtRestSQLite: the first start generates the key in the data directory and says
// so; the credentials of every kind of endpoint are nowhere in the SQLite file in clear; a restart
// reads them back.
func TestEncryptionAtRestSQLite(t *testing.T) {
	dir := t.TempDir()
	n, stdout := openNode(t, server.Config{DataDir: dir})
	if !strings.Contains(stdout.String(), filepath.Join(dir, server.KeyFileName)) {
		t.Errorf("the first start did not say where it generated the key: %q", stdout.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, server.KeyFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	secrets := credentials(t, n)
	before := secretsOf(t, n)
	n.stop()
	raw := sqliteFiles(t, dir)
	if !bytes.Contains(raw, []byte(encryption.Prefix)) {
		t.Fatal("no sealed value in the SQLite file; the scan read the wrong file")
	}
	wantAbsent(t, "the SQLite file", raw, secrets)
	n, stdout = openNode(t, server.Config{DataDir: dir})
	if stdout.Len() != 0 {
		t.Errorf("a restart printed %q; the key exists", stdout.String())
	}
	if after := secretsOf(t, n); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("after a restart the secret routes show %v, want %v", after, before)
	}
}

// TestEncryptionUpgrade: a store written before encryption (plaintext secrets) is sealed on the
// first start of this version, and reads back the same.
func TestEncryptionUpgrade(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "aviso.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.CreateTenant(ctx, &aviso.Tenant{ID: "acme", Name: "Acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const secret, token, password = "whsec_UGxhaW5TZWNyZXRCZWZvcmVFbmNyeXB0aW9uMTI=", "tf-plain-Up73", "pw-plain-Up91"
	if err := st.CreateEndpoint(ctx, &aviso.Endpoint{ID: "ep_old", TenantID: "acme", URL: "https://erp.example/hook",
		Format: aviso.FormatTusFacturas, TimeoutSeconds: 10, Secrets: []aviso.Secret{{Value: secret}}, Token: token,
		Auth: &aviso.Auth{Type: aviso.AuthBasic, Username: "u", Password: password}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	plain := []string{strings.TrimPrefix(secret, "whsec_"), token, password}
	if raw := sqliteFiles(t, dir); !bytes.Contains(raw, []byte(token)) {
		t.Fatal("the old store does not hold the token in clear; the test proves nothing")
	}
	n, _ := openNode(t, server.Config{DataDir: dir})
	if got := secretsOf(t, n); got[0] != secret || got[1] != token {
		t.Errorf("after the upgrade the secret route shows %v, want %s and %s", got, secret, token)
	}
	n.stop()
	wantAbsent(t, "the upgraded SQLite file", sqliteFiles(t, dir), plain)
}

// TestEncryptionAtRestPostgres: on PostgreSQL the key must be given; with it, no table holds a
// credential in clear.
func TestEncryptionAtRestPostgres(t *testing.T) {
	url, schema := testenv.PostgresSchema(t, "enc_")
	dbURL := testenv.SchemaURL(url, schema)
	if _, err := server.Open(context.Background(), server.Config{Addr: "127.0.0.1:0", DatabaseURL: dbURL, RootKey: rootKey,
		Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard}); err == nil || !strings.Contains(err.Error(), "AVISO_ENCRYPTION_KEY") {
		t.Fatalf("PostgreSQL without a key: %v, want an error naming AVISO_ENCRYPTION_KEY", err)
	}
	key := encryption.NewKey()
	n, _ := openNode(t, server.Config{DataDir: t.TempDir(), DatabaseURL: dbURL, EncryptionKey: key})
	secrets := credentials(t, n)
	before := secretsOf(t, n)
	n.stop()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 5 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	var raw []byte
	for _, tb := range tables {
		var text string
		if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+pgx.Identifier{tb}.Sanitize()+` t`).Scan(&text); err != nil {
			t.Fatalf("read %s: %v", tb, err)
		}
		raw = append(raw, text...)
	}
	if !bytes.Contains(raw, []byte(encryption.Prefix)) {
		t.Fatal("no sealed value in the tables; the scan read the wrong schema")
	}
	wantAbsent(t, "the PostgreSQL tables", raw, secrets)
	n, _ = openNode(t, server.Config{DataDir: t.TempDir(), DatabaseURL: dbURL, EncryptionKey: key})
	if after := secretsOf(t, n); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("after a restart the secret routes show %v, want %v", after, before)
	}
}

// TestNoCredentialsInLogs runs a node logging at debug level through a handshake, a test send,
// deliveries and refusals of an endpoint with basic auth, a secret header and a TusFacturas token,
// and checks the log never holds them.
func TestNoCredentialsInLogs(t *testing.T) {
	const password, apiKey, tfToken = "pw-Log58ns", "hdr-Log17qa", "tf-Log94bc"
	var accept atomic.Bool
	accept.Store(true)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !accept.Load() || !ok || u != "aviso" || p != password || r.Header.Get("X-Api-Key") != apiKey {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(rc.Close)
	var logs testenv.LogBuffer
	n, _ := openNode(t, server.Config{DataDir: t.TempDir(), RetrySchedule: []time.Duration{time.Hour},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	call(t, n, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "Acme"}, nil)
	var ep aviso.Endpoint
	body := map[string]any{"url": rc.URL, "format": "tusfacturas", "token": tfToken, "event_types": []string{"invoice.created"},
		"auth":    map[string]any{"type": "basic", "username": "aviso", "password": password},
		"headers": map[string]any{"X-Api-Key": map[string]any{"value": apiKey, "secret": true}}}
	if st := call(t, n, "POST", "/v1/tenants/acme/endpoints", body, &ep); st != 201 {
		t.Fatalf("create (with the handshake): %d", st)
	}
	var at aviso.Attempt
	call(t, n, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/test", map[string]any{}, &at)
	if at.ResponseStatus != 200 {
		t.Fatalf("test send: %d %s", at.ResponseStatus, at.Error)
	}
	accept.Store(false) // refusals are logged too
	call(t, n, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/test", map[string]any{}, &at)
	call(t, n, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, map[string]any{"url": rc.URL + "/moved"}, nil) // a refused handshake
	accept.Store(true)
	var et aviso.EventType
	call(t, n, "GET", "/v1/event-types/invoice.created", nil, &et)
	var pub map[string]any
	if st := call(t, n, "POST", "/v1/tenants/acme/events", map[string]any{"type": "invoice.created", "data": et.Example}, &pub); st != 202 && st != 201 {
		t.Fatalf("publish: %d %v", st, pub)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var page aviso.Page[*aviso.Delivery]
		call(t, n, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/deliveries?status=succeeded", nil, &page)
		if len(page.Data) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the published event was not delivered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.stop()
	got := logs.String()
	if !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "endpoint handshake refused") {
		t.Fatalf("the log lacks the debug lines and the refusal this test reads:\n%s", got)
	}
	wantAbsent(t, "the debug log", []byte(got), []string{password, apiKey, tfToken})
}
