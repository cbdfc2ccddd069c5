package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/encryption"
	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/service"
	"github.com/aviso-dev/aviso/sqlite"
)

// TestRotateEncryptionKey rotates the key file a node generated in its data directory, then the
// key of AVISO_ENCRYPTION_KEY, and checks each time that the stored secrets open with the new
// key only and still read back the same.
func TestRotateEncryptionKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := server.Open(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dir, RootKey: "avk_rotate_root", AllowPrivateNetworks: true,
		Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard, DisableUI: true})
	if err != nil {
		t.Fatal(err)
	}
	root := aviso.Principal{KeyID: aviso.RootKeyID}
	if _, err := srv.Service.CreateTenant(ctx, root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	no := false
	ep, err := srv.Service.CreateEndpoint(ctx, root, "acme", service.EndpointInput{URL: "https://erp.example/hook", Verify: &no,
		Auth: &aviso.Auth{Type: aviso.AuthBasic, Username: "u", Password: "pw-rotate-1"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := srv.Service.GetSecret(ctx, root, "acme", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()

	keyFile := filepath.Join(dir, server.KeyFileName)
	readKey := func() string {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	run := func(env map[string]string) (string, error) {
		var out bytes.Buffer
		env["AVISO_DATA_DIR"], env["AVISO_LOG_LEVEL"] = dir, "warn"
		m := NewMain(&out, &out, func(k string) string { return env[k] })
		if err := m.ParseFlags([]string{"rotate-encryption-key"}); err != nil {
			return out.String(), err
		}
		err := m.Run(ctx)
		return out.String(), err
	}
	// stored returns the endpoint as stored, and checks it opens with want and not with old.
	check := func(want, old string) {
		t.Helper()
		st, err := sqlite.Open(ctx, filepath.Join(dir, "aviso.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		e, err := st.GetEndpoint(ctx, "acme", ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.Auth.Password, encryption.Prefix) {
			t.Fatalf("stored password %q is not sealed", e.Auth.Password)
		}
		oldKeys, _ := encryption.ParseKeys(old)
		if err := oldKeys.OpenEndpoint(e); err == nil {
			t.Errorf("the rotated-out key still opens the stored secrets")
		}
		e, _ = st.GetEndpoint(ctx, "acme", ep.ID)
		keys, _ := encryption.ParseKeys(want)
		if err := keys.OpenEndpoint(e); err != nil || e.Auth.Password != "pw-rotate-1" || e.Secrets[0].Value != info.Secret {
			t.Errorf("with the new key: %v, password %q, secret %q", err, e.Auth.Password, e.Secrets[0].Value)
		}
	}

	k1 := readKey()
	out, err := run(map[string]string{})
	if err != nil || !strings.Contains(out, "resealed 1 endpoints") {
		t.Fatalf("rotate the key file: %v\n%s", err, out)
	}
	k2 := readKey()
	if k2 == k1 || strings.Contains(k2, "\n") {
		t.Fatalf("key file after rotation %q; want one new key", k2)
	}
	check(k2, k1)

	// The environment: one key is refused with what to do; new,old reseals with the new one.
	if out, err := run(map[string]string{"AVISO_ENCRYPTION_KEY": k2}); err == nil || !strings.Contains(err.Error(), "put the new key first") {
		t.Fatalf("one key in the environment: %v\n%s", err, out)
	}
	k3 := encryption.NewKey()
	if out, err := run(map[string]string{"AVISO_ENCRYPTION_KEY": k3 + "," + k2}); err != nil || !strings.Contains(out, "resealed 1 endpoints") {
		t.Fatalf("rotate the environment's key: %v\n%s", err, out)
	}
	check(k3, k2)
	if readKey() != k2 {
		t.Errorf("rotating the environment's key changed the key file")
	}
}
