package outbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testnode"
	"github.com/aviso-dev/aviso/outbox"
	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/webhook"
)

const rootKey = "avk_outbox_test_root"

// startNode runs a real Aviso node (SQLite, in-process) relaying the outbox sources.
func startNode(t *testing.T, sources ...string) *server.Server {
	t.Helper()
	return testnode.Run(t, server.Config{RootKey: rootKey, AllowPrivateNetworks: true,
		Outbox: sources, OutboxPoll: 50 * time.Millisecond}).Server
}

// apiCall makes a request with key and decodes the answer into out (if non-nil).
func apiCall(t *testing.T, srv *server.Server, key, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL()+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

type received struct {
	header http.Header
	body   []byte
}

// TestFacturascliEndToEnd: the trigger example of docs/outbox/ on a FacturaScripts-like table.
// An INSERT, an UPDATE and a DELETE of an invoice reach a receiver as signed invoice.created,
// invoice.updated and invoice.deleted with data built from the row, verified with the webhook
// package; the status and rejected routes answer.
func TestFacturascliEndToEnd(t *testing.T) {
	for _, kind := range []string{"postgres", "mariadb"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			src := openSource(t, kind, true)
			srv := startNode(t, src.url)
			got := make(chan received, 8)
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- received{r.Header.Clone(), b}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer recv.Close()
			apiCall(t, srv, rootKey, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME SA"}, nil)
			var ep aviso.Endpoint
			if st := apiCall(t, srv, rootKey, "POST", "/v1/tenants/acme/endpoints",
				map[string]any{"url": recv.URL, "verify": false}, &ep); st != 201 {
				t.Fatalf("create endpoint: %d", st)
			}
			var sec struct{ Secret string }
			apiCall(t, srv, rootKey, "GET", "/v1/tenants/acme/endpoints/"+ep.ID+"/secret", nil, &sec)

			if _, err := src.db.Exec("INSERT INTO facturascli (codigo, codcliente, nombrecliente, fecha, total, pagada) " +
				"VALUES ('FAC2026001', 'CUST001', 'Cliente Uno', '2026-03-04', 1000.00, false)"); err != nil {
				t.Fatal(err)
			}
			v := webhook.Verifier{Secrets: []string{sec.Secret}}
			next := func(want string) map[string]any {
				t.Helper()
				select {
				case r := <-got:
					if err := v.Verify(r.header, r.body); err != nil {
						t.Fatalf("the delivery does not verify: %v", err)
					}
					var msg struct {
						Type              string         `json:"type"`
						ExternalReference string         `json:"external_reference"`
						Data              map[string]any `json:"data"`
					}
					if err := json.Unmarshal(r.body, &msg); err != nil {
						t.Fatal(err)
					}
					if msg.Type != want || msg.ExternalReference != "FAC2026001" {
						t.Fatalf("got %s for %q, want %s for FAC2026001: %s", msg.Type, msg.ExternalReference, want, r.body)
					}
					return msg.Data
				case <-time.After(15 * time.Second):
					t.Fatalf("no %s within 15 s", want)
				}
				return nil
			}
			data := next("invoice.created")
			if data["idfactura"] != 1.0 || data["codigo"] != "FAC2026001" || data["codcliente"] != "CUST001" ||
				data["fecha"] != "2026-03-04" || data["total"] != 1000.0 || data["pagada"] != false || data["nombrecliente"] != "Cliente Uno" {
				t.Errorf("invoice.created data %v", data)
			}
			if _, err := src.db.Exec("UPDATE facturascli SET pagada = true WHERE codigo = 'FAC2026001'"); err != nil {
				t.Fatal(err)
			}
			if data := next("invoice.updated"); data["pagada"] != true {
				t.Errorf("invoice.updated data %v", data)
			}
			if _, err := src.db.Exec("DELETE FROM facturascli WHERE codigo = 'FAC2026001'"); err != nil {
				t.Fatal(err)
			}
			next("invoice.deleted")

			var st struct {
				Data []struct {
					Source        string `json:"source"`
					Reachable     bool   `json:"reachable"`
					LastRelayedID int64  `json:"last_relayed_id"`
					LagRows       int64  `json:"lag_rows"`
					Rejected      int64  `json:"rejected"`
				} `json:"data"`
			}
			// The event is delivered once Aviso committed it; the row's delete commits just after.
			waitFor(t, 5*time.Second, "row 3 relayed", func() bool {
				return apiCall(t, srv, rootKey, "GET", "/v1/outbox", nil, &st) == 200 && len(st.Data) == 1 && st.Data[0].LastRelayedID == 3
			})
			if !st.Data[0].Reachable || st.Data[0].LagRows != 0 || st.Data[0].Rejected != 0 {
				t.Errorf("GET /v1/outbox: %+v", st)
			}
			var rej struct {
				Data []map[string]any `json:"data"`
			}
			if code := apiCall(t, srv, rootKey, "GET", "/v1/outbox/rejected", nil, &rej); code != 200 || len(rej.Data) != 0 {
				t.Errorf("GET /v1/outbox/rejected: %d %+v", code, rej)
			}
		})
	}
}

// TestOutboxRoutes: the rejected rows through the API; tenant keys are refused; /readyz
// reports a source that cannot be reached.
func TestOutboxRoutes(t *testing.T) {
	src := openSource(t, "postgres", false)
	srv := startNode(t, src.url)
	apiCall(t, srv, rootKey, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME SA"}, nil)
	var key struct{ Key string }
	apiCall(t, srv, rootKey, "POST", "/v1/tenants/acme/keys", nil, &key)
	src.write(t, outboxEvent("acme", "no.such.type"), outboxEvent("acme", "invoice.created"))
	var rej struct {
		Data []struct {
			ID     int64  `json:"id"`
			Type   string `json:"type"`
			Reason string `json:"reason"`
			Source string `json:"source"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	waitFor(t, 10*time.Second, "a rejected row", func() bool {
		return apiCall(t, srv, rootKey, "GET", "/v1/outbox/rejected?limit=10", nil, &rej) == 200 && len(rej.Data) == 1
	})
	if rej.Data[0].ID != 1 || rej.Data[0].Type != "no.such.type" || !strings.Contains(rej.Data[0].Reason, "not in the event catalog") {
		t.Errorf("rejected %+v", rej.Data)
	}
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	for _, path := range []string{"/v1/outbox", "/v1/outbox/rejected"} {
		if code := apiCall(t, srv, key.Key, "GET", path, nil, &e); code != 403 || e.Error.Code != aviso.EFORBIDDEN {
			t.Errorf("tenant key on %s: %d %+v", path, code, e)
		}
	}
	if code := apiCall(t, srv, rootKey, "GET", "/v1/outbox/rejected?source=nope", nil, &e); code != 422 || e.Error.Field != "source" {
		t.Errorf("unknown source: %d %+v", code, e)
	}
	if code := apiCall(t, srv, "", "GET", "/readyz", nil, nil); code != 200 {
		t.Errorf("/readyz with a reachable source: %d", code)
	}

	down := startNode(t, "mysql://root@127.0.0.1:1/nowhere?timeout=1s")
	if code := apiCall(t, down, "", "GET", "/readyz", nil, &e); code != 503 || !strings.Contains(e.Error.Message, "mysql://127.0.0.1:1/nowhere") {
		t.Errorf("/readyz with an unreachable source: %d %+v", code, e)
	}
	var st struct {
		Data []struct {
			Reachable bool   `json:"reachable"`
			Error     string `json:"error"`
		} `json:"data"`
	}
	if code := apiCall(t, down, rootKey, "GET", "/v1/outbox", nil, &st); code != 200 || len(st.Data) != 1 || st.Data[0].Reachable || st.Data[0].Error == "" {
		t.Errorf("status of an unreachable source: %d %+v", code, st)
	}
}

func outboxEvent(tenant, typ string) outbox.Event {
	return outbox.Event{TenantID: tenant, Type: typ, Data: invoice(1)}
}
