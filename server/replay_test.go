package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// TestReplayMissed: events published while an endpoint is disabled create no delivery for it; a
// replay answers 409 until it is enabled, then "missed" gives each event of the window it
// subscribes to a delivery, and the receiver gets them.
func TestReplayMissed(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			n := startNodeOn(t, store == "postgres")
			var mu sync.Mutex
			got := map[string]bool{}
			arrived := make(chan struct{}, 16)
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				mu.Lock()
				got[r.Header.Get("webhook-id")] = true
				mu.Unlock()
				arrived <- struct{}{}
			}))
			defer recv.Close()
			mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
			var ep aviso.Endpoint
			mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": recv.URL, "verify": false,
				"event_types": []string{"invoice.created"}}, &ep)
			mustCall(t, n, 200, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, map[string]any{"disabled": true}, nil)
			since := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
			var ids []string
			for range 3 {
				var ev aviso.Event
				mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "invoice.created", "data": map[string]any{"id": "FAC-1", "total": 1}}, &ev)
				ids = append(ids, ev.ID)
				if ds := eventDeliveries(t, n, "acme", ev.ID); len(ds) != 0 {
					t.Fatalf("an event published while the endpoint is disabled has %d deliveries", len(ds))
				}
			}
			mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "invoice.paid", "data": map[string]any{"id": "FAC-1", "total": 1}}, nil)

			var e struct{ Error aviso.Error }
			mustCall(t, n, 409, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/replay", map[string]any{"since": since, "status": "missed"}, &e)
			mustCall(t, n, 200, "PATCH", "/v1/tenants/acme/endpoints/"+ep.ID, map[string]any{"disabled": false}, nil)
			var res struct{ Queued int }
			mustCall(t, n, 202, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/replay", map[string]any{"since": since, "status": "missed"}, &res)
			if res.Queued != 3 {
				t.Fatalf("missed replay queued %d, want 3 (the invoice.paid event is not subscribed)", res.Queued)
			}
			for range 3 {
				select {
				case <-arrived:
				case <-time.After(20 * time.Second):
					t.Fatal("the missed events did not arrive within 20 s")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if !got[id] {
					t.Errorf("event %s did not arrive", id)
				}
			}
			mustCall(t, n, 202, "POST", "/v1/tenants/acme/endpoints/"+ep.ID+"/replay", map[string]any{"since": since, "status": "missed"}, &res)
			if res.Queued != 0 {
				t.Errorf("a second missed replay queued %d, want 0", res.Queued)
			}
		})
	}
}
