package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/encryption"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/webhook"
)

// startNodeOn starts a node on SQLite in a temporary directory, or on a fresh PostgreSQL
// schema when pg is set.
func startNodeOn(t *testing.T, pg bool) *node {
	t.Helper()
	cfg := server.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), RootKey: rootKey, AllowPrivateNetworks: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
	}
	if pg {
		url, schema := testenv.PostgresSchema(t, "op_")
		cfg.DatabaseURL = testenv.SchemaURL(url, schema)
		cfg.EncryptionKey = encryption.NewKey()
	}
	return runNode(t, cfg)
}

// opNotice is an operational event as an operational endpoint receives it.
type opNotice struct {
	header http.Header
	body   []byte
	Type   string       `json:"type"`
	Data   aviso.Notice `json:"data"`
}

// TestOperationalWebhooks: the root key subscribes an operational endpoint, which then receives,
// signed, endpoint.created, delivery.failed (a delivery that ran out of retries),
// endpoint.disabled, endpoint.enabled and endpoint.deleted about a tenant's endpoint, and
// endpoint.disabled with reason gone when a receiver answers 410. The
// operational tenant is hidden from the tenant routes, and a tenant key cannot manage it.
func TestOperationalWebhooks(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			n := startNodeOn(t, store == "postgres")
			notices := make(chan opNotice, 64)
			ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var msg opNotice
				if err := json.Unmarshal(b, &msg); err == nil && msg.Type != "ping" {
					msg.header, msg.body = r.Header.Clone(), b
					notices <- msg
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer ops.Close()
			failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "down for maintenance", http.StatusInternalServerError)
			}))
			defer failing.Close()

			var op aviso.Endpoint
			mustCall(t, n, 201, "POST", "/v1/operational-endpoints", map[string]any{"url": ops.URL, "verify": false,
				"event_types": aviso.OperationalEventTypes()}, &op)
			var sec struct{ Secret string }
			mustCall(t, n, 200, "GET", "/v1/operational-endpoints/"+op.ID+"/secret", nil, &sec)
			verifier := webhook.Verifier{Secrets: []string{sec.Secret}}
			next := func(wantType string) aviso.Notice {
				t.Helper()
				select {
				case msg := <-notices:
					if msg.Type != wantType {
						t.Fatalf("operational event %s, want %s: %s", msg.Type, wantType, msg.body)
					}
					if err := verifier.Verify(msg.header, msg.body); err != nil {
						t.Fatalf("%s does not verify with the operational endpoint's secret: %v", wantType, err)
					}
					return msg.Data
				case <-time.After(20 * time.Second):
					t.Fatalf("no %s within 20 s", wantType)
				}
				panic("unreachable")
			}

			// The operational tenant is no tenant of the platform's.
			var tenants aviso.Page[*aviso.Tenant]
			mustCall(t, n, 200, "GET", "/v1/tenants", nil, &tenants)
			for _, tn := range tenants.Data {
				if tn.ID == aviso.OperationalTenant {
					t.Errorf("GET /v1/tenants lists the operational tenant")
				}
			}
			mustCall(t, n, 404, "GET", "/v1/tenants/"+aviso.OperationalTenant, nil, nil)
			mustCall(t, n, 404, "GET", "/v1/tenants/"+aviso.OperationalTenant+"/endpoints", nil, nil)
			mustCall(t, n, 404, "DELETE", "/v1/tenants/"+aviso.OperationalTenant, nil, nil)
			mustCall(t, n, 422, "POST", "/v1/tenants", map[string]any{"id": aviso.OperationalTenant}, nil)

			mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME SA"}, nil)
			var key struct{ Key string }
			mustCall(t, n, 201, "POST", "/v1/tenants/acme/keys", nil, &key)
			req, _ := http.NewRequest("GET", n.URL()+"/v1/operational-endpoints", nil)
			req.Header.Set("Authorization", "Bearer "+key.Key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("a tenant key listing operational endpoints: %d, want 403", res.StatusCode)
			}

			var ep aviso.Endpoint
			mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": failing.URL + "/hook?token=s3cret",
				"verify": false, "retry_schedule": []string{"10ms"}}, &ep)
			if got := next(aviso.EventEndpointCreated); got.TenantID != "acme" || got.EndpointID != ep.ID || got.URL != failing.URL+"/hook" {
				t.Errorf("endpoint.created = %+v (the URL without its query string)", got)
			}

			var ev aviso.Event
			mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "invoice.created",
				"data": map[string]any{"id": "FAC-1", "total": 10}}, &ev)
			got := next(aviso.EventDeliveryFailed)
			if got.EndpointID != ep.ID || got.EventID != ev.ID || got.LastResponseStatus != 500 || got.DeliveryID == "" {
				t.Errorf("delivery.failed = %+v", got)
			}
			d := waitDelivery(t, n, "acme", got.DeliveryID, aviso.StatusFailed, 2)
			if len(d.Attempts) != 2 {
				t.Errorf("the failed delivery has %d attempts, want 2 (one retry)", len(d.Attempts))
			}

			mustCall(t, n, 200, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, map[string]any{"disabled": true}, nil)
			if got := next(aviso.EventEndpointDisabled); got.EndpointID != ep.ID || got.Reason != aviso.DisabledByUser {
				t.Errorf("endpoint.disabled = %+v", got)
			}
			mustCall(t, n, 200, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, map[string]any{"disabled": false}, nil)
			if got := next(aviso.EventEndpointEnabled); got.EndpointID != ep.ID {
				t.Errorf("endpoint.enabled = %+v", got)
			}
			mustCall(t, n, 204, "DELETE", "/v1/tenants/acme/endpoints/"+ep.ID, nil, nil)
			if got := next(aviso.EventEndpointDeleted); got.EndpointID != ep.ID || got.TenantID != "acme" {
				t.Errorf("endpoint.deleted = %+v", got)
			}

			// A receiver answering 410 Gone has its endpoint disabled at once, and the operator is told why.
			gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "this integration was removed", http.StatusGone)
			}))
			defer gone.Close()
			mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": gone.URL, "verify": false}, &ep)
			next(aviso.EventEndpointCreated)
			mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "invoice.created",
				"data": map[string]any{"id": "FAC-2", "total": 10}}, &ev)
			// Two notices, published one after the other but delivered concurrently: in any order.
			both := map[string]aviso.Notice{}
			for range 2 {
				select {
				case msg := <-notices:
					if err := verifier.Verify(msg.header, msg.body); err != nil {
						t.Fatalf("%s does not verify: %v", msg.Type, err)
					}
					both[msg.Type] = msg.Data
				case <-time.After(20 * time.Second):
					t.Fatalf("after a 410, got only %v within 20 s", both)
				}
			}
			if got := both[aviso.EventEndpointDisabled]; got.EndpointID != ep.ID || got.Reason != aviso.DisabledGone || got.LastResponseStatus != 410 {
				t.Errorf("endpoint.disabled after a 410 = %+v, want reason %q", got, aviso.DisabledGone)
			}
			if got := both[aviso.EventDeliveryFailed]; got.EventID != ev.ID {
				t.Errorf("delivery.failed after a 410 = %+v", got)
			}

			// The operational endpoint's own deliveries are in its log, and no notice is sent about
			// the operational endpoints themselves.
			var log aviso.Page[*aviso.Delivery]
			mustCall(t, n, 200, "GET", "/v1/operational-endpoints/"+op.ID+"/deliveries", nil, &log)
			if len(log.Data) != 8 {
				t.Errorf("the operational endpoint has %d deliveries, want 8", len(log.Data))
			}
			select {
			case msg := <-notices:
				t.Errorf("unexpected operational event %s: %s", msg.Type, msg.body)
			default:
			}
		})
	}
}
