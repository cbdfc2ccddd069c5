package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/server"
)

// TestRequestIDs: a publish's X-Request-Id comes back in the response and appears in the log
// lines of the publish and of its attempts (made later by the engine, from the stored event);
// a request without one, or with one unfit to log, gets a minted id.
func TestRequestIDs(t *testing.T) {
	logs := &testenv.LogBuffer{}
	n := runNode(t, server.Config{RootKey: rootKey, AllowPrivateNetworks: true,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	var calls atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Webhook-Id") == "evt_rid" && calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // one failed attempt, then the retry succeeds
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": recv.URL, "retry_schedule": []string{"1ms"}}, nil)

	publish := func(id string) *http.Response {
		t.Helper()
		body := `{"id":"evt_rid","type":"invoice.created","data":{"id":"F-1","total":1}}`
		req, _ := http.NewRequest("POST", n.URL()+"/v1/tenants/acme/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rootKey)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := publish("checkout-42"); res.StatusCode != 202 || res.Header.Get("X-Request-Id") != "checkout-42" {
		t.Fatalf("publish: %d, X-Request-Id %q; want 202, the caller's id", res.StatusCode, res.Header.Get("X-Request-Id"))
	}
	for _, bad := range []string{"", "has spaces", strings.Repeat("x", 129)} {
		res := publish(bad)
		if got := res.Header.Get("X-Request-Id"); !strings.HasPrefix(got, "req_") || len(got) != 24 {
			t.Errorf("X-Request-Id %q sent: got %q back, want a minted req_… id", bad, got)
		}
	}
	d := eventDeliveries(t, n, "acme", "evt_rid")
	waitDelivery(t, n, "acme", d[0].ID, aviso.StatusSucceeded, 2)

	// The log lines of the publish and of both attempts carry the publish's id; the attempts'
	// lines are written before their completion is recorded, so they are there by now.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var published, attempts int
		for _, r := range logs.Records(t) {
			if r["request_id"] != "checkout-42" {
				continue
			}
			switch r["msg"] {
			case "event published":
				published++
			case "attempt":
				if r["delivery_id"] == d[0].ID {
					attempts++
				}
			}
		}
		if published == 1 && attempts == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lines with request_id checkout-42: %d \"event published\", %d \"attempt\"; want 1 and 2", published, attempts)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
