package postgres_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/postgres"
)

// TestStorageUnavailable: a database that refuses writes (here a read-only session, as a standby
// or a database set read-only answers; a full disk answers 53100 the same way) makes writes
// answer storage_unavailable with the one message, while reads go on.
func TestStorageUnavailable(t *testing.T) {
	t.Parallel()
	url, schema := testSchema(t)
	rw := openSchema(t, url, schema)
	mustTenant(t, rw, "acme")
	ep := mustEndpoint(t, rw, "acme")
	ro, err := postgres.Open(t.Context(), url+"&default_transaction_read_only=on", postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	t.Cleanup(func() { _ = ro.Close() })
	ctx := t.Context()
	if _, err := ro.GetTenant(ctx, "acme"); err != nil {
		t.Fatalf("a read on the read-only store: %v", err)
	}
	second := func(_ any, err error) error { return err }
	for name, err := range map[string]error{
		"create tenant": ro.CreateTenant(ctx, &aviso.Tenant{ID: "b", Name: "b", CreatedAt: base, UpdatedAt: base}),
		"insert events": second(ro.InsertEvents(ctx, []aviso.NewEvent{newEvent("acme", "evt_ro", ep)})),
	} {
		if aviso.ErrorCode(err) != aviso.ESTORAGE || aviso.ErrorMessage(err) != aviso.StorageMessage {
			t.Errorf("%s: %q %q (%v), want %q", name, aviso.ErrorCode(err), aviso.ErrorMessage(err), err, aviso.ESTORAGE)
		}
	}
}
