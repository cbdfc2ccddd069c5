package storecopy_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storecopy"
)

// base is an hour ago, so every delivery of the fixture is due.
var base = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)

// testSchema returns the database URL and a fresh schema name, dropped when tb ends.
func testSchema(tb testing.TB) (string, string) {
	tb.Helper()
	return testenv.PostgresSchema(tb, "aviso_copy_")
}

// fixture is what fill stored: what to look up through the Store API afterwards.
type fixture struct {
	tenants []string
	hashes  []string
	leased  string // a delivery leased (to a far future) when the copy ran
}

// fill stores, through the Store API, a bit of everything: tenants, a root and a tenant key,
// event types, endpoints with rotated secrets and a token, events, and deliveries in every state
// with their attempts.
func fill(tb testing.TB, s aviso.Store) fixture {
	tb.Helper()
	ctx := tb.Context()
	must := func(what string, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
	}
	fx := fixture{tenants: []string{"ten_acme", "ten_beta"}}
	must("tenant", s.CreateTenant(ctx, &aviso.Tenant{ID: "ten_acme", Name: "Acme S.A.S.", Metadata: map[string]string{"nit": "900.123.456-7", "país": "CO"},
		CreatedAt: base, UpdatedAt: base.Add(time.Minute)}))
	must("tenant", s.CreateTenant(ctx, &aviso.Tenant{ID: "ten_beta", Name: "Beta", CreatedAt: base, UpdatedAt: base}))
	for _, k := range []*aviso.APIKey{
		{ID: aviso.RootKeyID, Hash: strings.Repeat("a1", 32), Prefix: "avk_root", CreatedAt: base},
		{ID: aviso.NewID(aviso.PrefixKey, base), TenantID: "ten_acme", Hash: strings.Repeat("b2", 32), Prefix: "avk_acme", CreatedAt: base},
	} {
		must("key", s.SaveAPIKey(ctx, k))
		fx.hashes = append(fx.hashes, k.Hash)
	}
	must("event type", s.CreateEventType(ctx, &aviso.EventType{Name: "invoice.created", Description: "An invoice was issued",
		Descriptions: map[string]string{"es": "Se emitió una factura"},
		Schema:       json.RawMessage(`{"type": "object",  "required": ["number"]}`),
		Example:      json.RawMessage(`{"number": "FE-1"}`), CreatedAt: base, UpdatedAt: base}))
	must("event type", s.CreateEventType(ctx, &aviso.EventType{Name: "payment.received", Description: "", CreatedAt: base, UpdatedAt: base}))

	expires := base.Add(24 * time.Hour)
	verified := base.Add(time.Second)
	std := &aviso.Endpoint{ID: aviso.NewID(aviso.PrefixEndpoint, base), TenantID: "ten_acme", URL: "https://erp.example.com/hooks",
		Description: "ERP", EventTypes: []string{"invoice.created"}, Format: aviso.FormatStandard,
		Headers: map[string]string{"X-Env": "prod"}, TimeoutSeconds: 15,
		RetrySchedule: []aviso.Duration{aviso.Duration(time.Second), aviso.Duration(90 * time.Second)},
		Metadata:      map[string]string{"team": "billing"},
		Secrets:       []aviso.Secret{{Value: "whsec_new"}, {Value: "whsec_old", ExpiresAt: &expires}},
		VerifiedAt:    &verified, CreatedAt: base, UpdatedAt: base, Signing: aviso.SigningHMAC,
		Auth:          &aviso.Auth{Type: aviso.AuthBasic, Username: "aviso", Password: "enc:v1:basic-password"},
		SecretHeaders: map[string]string{"X-Api-Key": "enc:v1:api-key"}}
	tf := &aviso.Endpoint{ID: aviso.NewID(aviso.PrefixEndpoint, base.Add(time.Millisecond)), TenantID: "ten_acme",
		URL: "https://tf.example.com/wh", Format: aviso.FormatTusFacturas, TimeoutSeconds: 10, Token: "tf-token-123",
		Secrets: []aviso.Secret{{Value: "whsec_tf"}}, CreatedAt: base, UpdatedAt: base}
	beta := &aviso.Endpoint{ID: aviso.NewID(aviso.PrefixEndpoint, base.Add(2*time.Millisecond)), TenantID: "ten_beta",
		URL: "https://beta.example.com/", Format: aviso.FormatAlegra, TimeoutSeconds: 5,
		Secrets: []aviso.Secret{{Value: "whsec_beta"}}, CreatedAt: base, UpdatedAt: base}
	for _, e := range []*aviso.Endpoint{std, tf, beta} {
		must("endpoint", s.CreateEndpoint(ctx, e))
	}

	var batch []aviso.NewEvent
	for i := range 40 {
		tenant, eps := "ten_acme", []*aviso.Endpoint{std, tf}
		if i%5 == 4 {
			tenant, eps = "ten_beta", []*aviso.Endpoint{beta}
		}
		at := base.Add(time.Duration(i) * time.Millisecond)
		ev := &aviso.Event{ID: fmt.Sprintf("evt_%02d", i), TenantID: tenant, Type: "invoice.created",
			Data: json.RawMessage(fmt.Sprintf(`{"number": "FE-%d",  "total": %d.50, "notas": "ñandú"}`, i, i)), CreatedAt: at}
		if i%3 == 0 {
			ev.ExternalReference = fmt.Sprintf("FE-%d", i)
		}
		ne := aviso.NewEvent{Event: ev}
		for _, e := range eps {
			ne.Deliveries = append(ne.Deliveries, &aviso.Delivery{ID: aviso.NewID(aviso.PrefixDelivery, at), TenantID: tenant,
				EventID: ev.ID, EndpointID: e.ID, EventType: ev.Type, Status: aviso.StatusPending, NextAttemptAt: &at,
				CreatedAt: at, UpdatedAt: at})
		}
		batch = append(batch, ne)
	}
	_, err := s.InsertEvents(ctx, batch)
	must("insert events", err)
	// A signed-out dashboard session, far from its expiry.
	must("revoke session", s.RevokeSession(ctx, "sess-signed-out", base.Add(1000*time.Hour), base))

	// Attempts: succeeded, failed for good, pending a retry; one delivery stays leased.
	now := base.Add(time.Minute)
	claims, err := s.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now, Limit: 31, Owner: "node-a", LeaseUntil: now.Add(24 * time.Hour)})
	must("claim", err)
	if len(claims) != 31 {
		tb.Fatalf("claimed %d deliveries, want 31", len(claims))
	}
	// The one left leased is of an endpoint that stays enabled (disabling beta below fails its
	// pending deliveries); claims of one event's deliveries come in random ID order.
	kept := slices.IndexFunc(claims, func(c *aviso.Claim) bool { return c.Endpoint.ID != beta.ID })
	fx.leased = claims[kept].Delivery.ID
	var cs []aviso.Completion
	for i, c := range slices.Delete(slices.Clone(claims), kept, kept+1) {
		d := c.Delivery
		a := &aviso.Attempt{ID: aviso.NewID(aviso.PrefixAttempt, now), DeliveryID: d.ID, TenantID: d.TenantID, EndpointID: d.EndpointID,
			EventID: d.EventID, At: now.Add(time.Duration(i) * time.Millisecond), URL: c.Endpoint.URL,
			RequestHeaders: map[string]string{"webhook-id": d.ID, "content-type": "application/json"}, DurationMS: int64(i)}
		comp := aviso.Completion{Attempt: a, Owner: "node-a", DisableAfter: aviso.DisableAfterFailures}
		switch i % 3 {
		case 0:
			a.ResponseStatus, a.ResponseBody, comp.Status = 200, `{"ok":true}`, aviso.StatusSucceeded
		case 1:
			a.ResponseStatus, a.ResponseBody, comp.Status = 500, "Error interno — reintente", aviso.StatusPending
			next := now.Add(5 * time.Second)
			comp.NextAttemptAt = &next
		case 2:
			a.Error, comp.Status = "dial tcp: connection refused", aviso.StatusFailed
		}
		cs = append(cs, comp)
	}
	must("complete", func() error { _, err := s.CompleteDeliveries(ctx, cs); return err }())
	// Disabling the beta endpoint fails its pending deliveries.
	_, err = s.SetEndpointDisabled(ctx, aviso.SetEndpointDisabledParams{TenantID: "ten_beta", ID: beta.ID, Disabled: true,
		Reason: aviso.DisabledByUser, Now: now})
	must("disable", err)
	return fx
}

// Views that show in JSON what aviso's types hide from the API (hashes, secrets, rounds).
type (
	keyView struct {
		*aviso.APIKey
		Hash string `json:"hash"`
	}
	endpointView struct {
		Endpoint      *aviso.Endpoint   `json:"endpoint"`
		Secrets       []aviso.Secret    `json:"secrets"`
		Token         string            `json:"token"`
		Auth          *aviso.Auth       `json:"auth"` // unredacted
		SecretHeaders map[string]string `json:"secret_headers"`
	}
	attemptView struct {
		aviso.Attempt
		TenantID string `json:"tenant_id"`
	}
	deliveryView struct {
		*aviso.Delivery
		RoundAttempts int           `json:"round_attempts"`
		Attempts      []attemptView `json:"attempts"`
	}
	tenantView struct {
		Tenant     *aviso.Tenant  `json:"tenant"`
		Endpoints  []endpointView `json:"endpoints"`
		Events     []*aviso.Event `json:"events"`
		Deliveries []deliveryView `json:"deliveries"`
		Stats      map[string]int `json:"stats"`
	}
	snapshotView struct {
		Keys       []keyView          `json:"keys"`
		EventTypes []*aviso.EventType `json:"event_types"`
		Tenants    []tenantView       `json:"tenants"`
	}
)

// snapshot reads back through the Store API everything fill stored, as indented JSON.
func snapshot(tb testing.TB, s aviso.Store, fx fixture) string {
	tb.Helper()
	ctx := tb.Context()
	var v snapshotView
	for _, h := range fx.hashes {
		k, err := s.GetAPIKeyByHash(ctx, h)
		if err != nil {
			tb.Fatalf("get key by hash: %v", err)
		}
		v.Keys = append(v.Keys, keyView{k, k.Hash})
	}
	types, err := s.ListEventTypes(ctx, aviso.ListParams{Limit: aviso.MaxLimit})
	if err != nil {
		tb.Fatalf("list event types: %v", err)
	}
	v.EventTypes = types.Data
	for _, id := range fx.tenants {
		var tv tenantView
		if tv.Tenant, err = s.GetTenant(ctx, id); err != nil {
			tb.Fatalf("get tenant: %v", err)
		}
		eps, err := s.ListEndpoints(ctx, aviso.ListEndpointsParams{TenantID: id, ListParams: aviso.ListParams{Limit: aviso.MaxLimit}})
		if err != nil {
			tb.Fatalf("list endpoints: %v", err)
		}
		for _, e := range eps.Data {
			tv.Endpoints = append(tv.Endpoints, endpointView{e, e.Secrets, e.Token, e.Auth, e.SecretHeaders})
		}
		tv.Events = listEvents(tb, s, id, "")
		ds, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: id, ListParams: aviso.ListParams{Limit: aviso.MaxLimit}})
		if err != nil {
			tb.Fatalf("list deliveries: %v", err)
		}
		tv.Stats = map[string]int{}
		for _, d := range ds.Data {
			full, err := s.GetDelivery(ctx, id, d.ID)
			if err != nil {
				tb.Fatalf("get delivery: %v", err)
			}
			dv := deliveryView{Delivery: full, RoundAttempts: full.RoundAttempts}
			for _, a := range full.Attempts {
				dv.Attempts = append(dv.Attempts, attemptView{a, a.TenantID})
			}
			tv.Deliveries = append(tv.Deliveries, dv)
			tv.Stats[string(full.Status)]++
		}
		v.Tenants = append(v.Tenants, tv)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatalf("encode snapshot: %v", err)
	}
	return string(b)
}

// listEvents pages through a tenant's events in publication order, starting after cursor.
func listEvents(tb testing.TB, s aviso.Store, tenant, cursor string) []*aviso.Event {
	tb.Helper()
	var out []*aviso.Event
	for {
		p, err := s.ListEvents(tb.Context(), aviso.ListEventsParams{TenantID: tenant, ListParams: aviso.ListParams{After: cursor, Limit: 7}})
		if err != nil {
			tb.Fatalf("list events: %v", err)
		}
		out = append(out, p.Data...)
		if !p.HasMore {
			return out
		}
		cursor = p.NextCursor
	}
}

// diffLines returns the first differing line of two texts, with its number.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  sqlite:   %s\n  postgres: %s", i+1, x, y)
		}
	}
	return ""
}

// newSQLite fills a fresh SQLite store and closes it, returning its path and the fixture.
func newSQLite(tb testing.TB) (string, fixture, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "aviso.db")
	src, err := sqlite.Open(tb.Context(), path, sqlite.Options{})
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	fx := fill(tb, src)
	want := snapshot(tb, src, fx)
	if err := src.Close(); err != nil {
		tb.Fatalf("close sqlite: %v", err)
	}
	return path, fx, want
}

func TestCopy(t *testing.T) {
	t.Parallel()
	path, fx, want := newSQLite(t)
	url, schema := testSchema(t)
	ctx := t.Context()

	counts, err := storecopy.Copy(ctx, path, url, storecopy.Options{Schema: schema})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	wantCounts := storecopy.Counts{Tenants: 2, APIKeys: 2, EventTypes: 2, Endpoints: 3, Events: 40, Deliveries: 72, Attempts: 30,
		RevokedSessions: 1}
	if counts != wantCounts {
		t.Errorf("counts = %v, want %v", counts, wantCounts)
	}

	pg, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer pg.Close()
	if ok, err := pg.SessionRevoked(ctx, base, "sess-signed-out"); err != nil || !ok {
		t.Errorf("the signed-out session reads as revoked %v (%v) after the copy, want true", ok, err)
	}
	got := snapshot(t, pg, fx)
	if got != want {
		t.Fatalf("the copy reads back differently through aviso.Store; first difference at %s", diffLines(want, got))
	}
	if !strings.Contains(got, `"pending"`) || !strings.Contains(got, `"succeeded"`) || !strings.Contains(got, `"failed"`) ||
		!strings.Contains(got, "whsec_old") || !strings.Contains(got, "tf-token-123") ||
		!strings.Contains(got, "enc:v1:basic-password") || !strings.Contains(got, "enc:v1:api-key") {
		t.Fatalf("the fixture lacks a delivery state, a rotated secret or a token:\n%s", got)
	}

	t.Run("leases are not copied", func(t *testing.T) {
		now := base.Add(time.Minute)
		claims, err := pg.ClaimDeliveries(ctx, aviso.ClaimParams{Now: now, Limit: 100, Owner: "node-b", LeaseUntil: now.Add(time.Minute)})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		ids := make([]string, len(claims))
		for i, c := range claims {
			ids[i] = c.Delivery.ID
		}
		if !slices.Contains(ids, fx.leased) {
			t.Errorf("the delivery leased in SQLite (%s) is not claimable on PostgreSQL; claimed %v", fx.leased, ids)
		}
		if err := pg.ReleaseDeliveries(ctx, "node-b", ids); err != nil {
			t.Fatalf("release: %v", err)
		}
	})

	t.Run("publication order continues after the copied events", func(t *testing.T) {
		before := listEvents(t, pg, "ten_acme", "")
		page, err := pg.ListEvents(ctx, aviso.ListEventsParams{TenantID: "ten_acme", ListParams: aviso.ListParams{Limit: len(before) - 1}})
		if err != nil || !page.HasMore {
			t.Fatalf("list events: %v, has_more %v", err, page != nil && page.HasMore)
		}
		// An ID that sorts before every copied one: order must come from seq, not the ID.
		ev := &aviso.Event{ID: "evt_0000_after_copy", TenantID: "ten_acme", Type: "payment.received", Data: json.RawMessage(`{}`),
			CreatedAt: time.Now().UTC()}
		if _, err := pg.InsertEvents(ctx, []aviso.NewEvent{{Event: ev}}); err != nil {
			t.Fatalf("publish on postgres: %v", err)
		}
		after := listEvents(t, pg, "ten_acme", "")
		if len(after) != len(before)+1 || after[len(after)-1].ID != ev.ID {
			t.Fatalf("after publishing, events end with %s (%d events), want %s last of %d", after[len(after)-1].ID, len(after), ev.ID, len(before)+1)
		}
		rest := listEvents(t, pg, "ten_acme", page.NextCursor)
		if len(rest) != 2 || rest[0].ID != before[len(before)-1].ID || rest[1].ID != ev.ID {
			t.Errorf("a cursor taken before the publish continues with %v, want [%s %s]", eventIDs(rest), before[len(before)-1].ID, ev.ID)
		}
	})

	t.Run("a non-empty target is refused", func(t *testing.T) {
		_, err := storecopy.Copy(ctx, path, url, storecopy.Options{Schema: schema})
		if !errors.Is(err, storecopy.ErrTargetNotEmpty) {
			t.Fatalf("second copy: err = %v, want ErrTargetNotEmpty", err)
		}
		if n := len(listEvents(t, pg, "ten_acme", "")); n != 33 {
			t.Errorf("after the refused copy the target has %d events of ten_acme, want 33 (untouched)", n)
		}
	})

	t.Run("force replaces the target", func(t *testing.T) {
		counts, err := storecopy.Copy(ctx, path, url, storecopy.Options{Schema: schema, Force: true})
		if err != nil {
			t.Fatalf("forced copy: %v", err)
		}
		if counts != wantCounts {
			t.Errorf("counts = %v, want %v", counts, wantCounts)
		}
		if got := snapshot(t, pg, fx); got != want {
			t.Fatalf("after the forced copy, first difference at %s", diffLines(want, got))
		}
	})
}

// A store's files taken while it runs (what a crash leaves) hold every delivery as a row:
// the copy of that image matches the store as it was.
func TestCopyCrashImage(t *testing.T) {
	t.Parallel()
	liveDir := t.TempDir()
	live, err := sqlite.Open(t.Context(), filepath.Join(liveDir, "aviso.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fx := fill(t, live)
	want := snapshot(t, live, fx)
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(liveDir, "aviso.db"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	url, schema := testSchema(t)
	counts, err := storecopy.Copy(t.Context(), crashed, url, storecopy.Options{Schema: schema})
	if err != nil {
		t.Fatalf("copy of the crash image: %v", err)
	}
	if counts.Deliveries != 72 || counts.Events != 40 {
		t.Errorf("counts = %v, want the fixture's 40 events and 72 deliveries", counts)
	}
	pg, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if got := snapshot(t, pg, fx); got != want {
		t.Fatalf("the copy of the crash image differs from the store, first at %s", diffLines(want, got))
	}
}

func TestCopyRefuses(t *testing.T) {
	t.Parallel()
	path, _, _ := newSQLite(t)
	url, schema := testSchema(t)

	// A store at a schema version this build does not know.
	future := filepath.Join(t.TempDir(), "future.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(future, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", future)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)`); err != nil {
		t.Fatalf("add a future migration: %v", err)
	}
	db.Close()

	tests := []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.db"), "no such file"},
		{"future schema", future, "migration 99"},
		{"not a plain path", path + "?mode=rw", "plain file name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := storecopy.Copy(t.Context(), tc.path, url, storecopy.Options{Schema: schema})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// Nothing was written: a real copy into the same schema still works.
	if _, err := storecopy.Copy(t.Context(), path, url, storecopy.Options{Schema: schema}); err != nil {
		t.Fatalf("copy after the refusals: %v", err)
	}
}

func eventIDs(es []*aviso.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}
