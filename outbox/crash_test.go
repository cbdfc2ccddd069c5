package outbox_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/testenv"
)

// startAviso starts the binary on dataDir relaying src, and waits until it serves.
func startAviso(t *testing.T, bin, dataDir, src string) *testenv.Aviso {
	t.Helper()
	return testenv.StartAviso(t, t.Context(), bin, "aviso", []string{"--data-dir", dataDir, "--allow-private-networks",
		"--outbox", src, "--outbox-poll", "50ms", "--retention", "0", "--retry-schedule", "200ms,200ms,200ms,1s,1s,1s"},
		"AVISO_ROOT_KEY="+rootKey)
}

// get decodes GET base+path (root key) into out; false when the node does not answer.
func get(p *testenv.Aviso, path string, out any) bool {
	req, _ := http.NewRequest("GET", p.Base+path, nil)
	req.Header.Set("Authorization", "Bearer "+rootKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	return res.StatusCode == 200 && json.NewDecoder(res.Body).Decode(out) == nil
}

// TestCrash: while eight connections insert 10,000 outbox rows in transactions (about one in
// five rolled back), the relay — the real aviso binary — is SIGKILLed at random moments, at
// least five times, and restarted. Afterwards Aviso holds exactly the committed rows' events,
// each once, and the receiver got each at least once.
func TestCrash(t *testing.T) {
	for _, kind := range []string{"postgres", "mariadb"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			src := openSource(t, kind, false)
			bin := testenv.AvisoBinary(t)
			dataDir := t.TempDir()

			var mu sync.Mutex
			received := map[string]int{}
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				received[r.Header.Get("webhook-id")]++
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer recv.Close()

			p := startAviso(t, bin, dataDir, src.url)
			defer func() { _ = p.Kill() }()
			for _, c := range []struct {
				path string
				body map[string]any
			}{
				{"/v1/tenants", map[string]any{"id": "acme", "name": "ACME SA"}},
				{"/v1/tenants/acme/endpoints", map[string]any{"url": recv.URL, "verify": false}},
			} {
				if code := postJSON(t, p.Base, c.path, c.body); code != 201 {
					t.Fatalf("POST %s: %d", c.path, code)
				}
			}

			// The application writes while the killer kills.
			// Each writer waits for the k-th kill before its (k+1)-th sixth of rows, so at least
			// five kills fall while the application writes.
			var writing atomic.Bool
			var killCount atomic.Int64
			writing.Store(true)
			committedc := make(chan map[string]bool, 1)
			go func() {
				committedc <- writeRows(t, src, 8, 10_000, 40, true, func(k int) {
					for killCount.Load() < int64(k) && !t.Failed() {
						time.Sleep(5 * time.Millisecond)
					}
				})
				writing.Store(false)
			}()
			kills, killedWhileWriting := 0, 0
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			for kills < 5 || writing.Load() {
				time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
				if writing.Load() {
					killedWhileWriting++
				}
				_ = p.Kill()
				kills++
				killCount.Store(int64(kills))
				p = startAviso(t, bin, dataDir, src.url)
			}
			committed := <-committedc
			t.Logf("%d rows committed; the relay was killed %d times (%d while the application wrote)", len(committed), kills, killedWhileWriting)

			// Drain: the outbox empties and every event reaches the receiver.
			deadline := time.Now().Add(120 * time.Second) // a bound for a loaded machine; a quiet one drains in seconds
			var evs []eventRow
			for {
				evs = listEvents(t, p)
				mu.Lock()
				got := len(received)
				mu.Unlock()
				if len(evs) >= len(committed) && got >= len(committed) && src.count(t, "SELECT count(*) FROM aviso_outbox") == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 120 s: %d events, %d received, for %d committed rows; %d rows wait\n%s",
						len(evs), got, len(committed), src.count(t, "SELECT count(*) FROM aviso_outbox"), p.Tail())
				}
				time.Sleep(200 * time.Millisecond)
			}
			perRef := map[string]int{}
			for _, ev := range evs {
				perRef[ev.ExternalReference]++
			}
			for ref := range committed {
				if perRef[ref] != 1 {
					t.Errorf("committed row %s: %d events, want exactly 1", ref, perRef[ref])
				}
			}
			for ref, n := range perRef {
				if !committed[ref] {
					t.Errorf("%d events for %s, whose transaction rolled back", n, ref)
				}
			}
			mu.Lock()
			dups := 0
			for _, ev := range evs {
				switch n := received[ev.ID]; {
				case n == 0:
					t.Errorf("event %s (%s) never reached the receiver", ev.ID, ev.ExternalReference)
				case n > 1:
					dups++
				}
			}
			mu.Unlock()
			if killedWhileWriting < 5 {
				t.Errorf("killed %d times while the application wrote, want at least 5", killedWhileWriting)
			}
			t.Logf("%d events, each once; %d delivered more than once (in flight at a kill)", len(evs), dups)
		})
	}
}

type eventRow struct {
	ID                string `json:"id"`
	ExternalReference string `json:"external_reference"`
}

// listEvents reads every event of tenant acme through the API.
func listEvents(t *testing.T, p *testenv.Aviso) []eventRow {
	t.Helper()
	var out []eventRow
	after := ""
	for {
		var page struct {
			Data       []eventRow `json:"data"`
			HasMore    bool       `json:"has_more"`
			NextCursor string     `json:"next_cursor"`
		}
		if !get(p, "/v1/tenants/acme/events?limit=500&after="+after, &page) {
			t.Fatalf("list events failed\n%s", p.Tail())
		}
		out = append(out, page.Data...)
		if !page.HasMore {
			return out
		}
		after = page.NextCursor
	}
}

func postJSON(t *testing.T, base, path string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(context.Background(), "POST", base+path, strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+rootKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
