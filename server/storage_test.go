package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
)

// TestDiskFull runs an SQLite node on a 16 MiB tmpfs and fills it: publishes answer 503
// storage_unavailable with Retry-After, /readyz answers 503, nothing accepted before is lost;
// once space is freed /readyz answers 200 again, without a restart, and publishing and delivery
// go on.
func TestDiskFull(t *testing.T) {
	dir := testenv.Tmpfs(t, 16<<20)
	n := startNode(t, dir)
	var mu sync.Mutex
	got := map[string]int{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	mustCall(t, n, 201, "POST", "/v1/tenants", map[string]any{"id": "acme", "name": "ACME"}, nil)
	mustCall(t, n, 201, "POST", "/v1/event-types", map[string]any{"name": "disk.test", "description": "a blob"}, nil)
	mustCall(t, n, 201, "POST", "/v1/tenants/acme/endpoints", map[string]any{"url": recv.URL, "verify": false}, nil)
	var before aviso.Event
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events", map[string]any{"type": "disk.test", "data": map[string]any{"n": 1}}, &before)

	// Fill the filesystem.
	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)

	// A batch bigger than any room SQLite's write-ahead log has left: it cannot be written.
	blob := strings.Repeat("x", 600<<10)
	batch := map[string]any{"events": []map[string]any{
		{"type": "disk.test", "data": map[string]any{"blob": blob}},
		{"type": "disk.test", "data": map[string]any{"blob": blob}},
		{"type": "disk.test", "data": map[string]any{"blob": blob}},
	}}
	res, e := rawCall(t, n, "POST", "/v1/tenants/acme/events/batch", batch)
	if res.StatusCode != 503 || e.Error.Code != aviso.ESTORAGE || e.Error.Message != aviso.StorageMessage || res.Header.Get("Retry-After") == "" {
		t.Fatalf("publish on a full disk: %d %+v, Retry-After %q; want 503 %s with Retry-After", res.StatusCode, e.Error, res.Header.Get("Retry-After"), aviso.ESTORAGE)
	}
	if res, e := rawCall(t, n, "GET", "/readyz", nil); res.StatusCode != 503 || e.Error.Code != aviso.ESTORAGE {
		t.Fatalf("/readyz on a full disk: %d %+v, want 503 %s", res.StatusCode, e.Error, aviso.ESTORAGE)
	}
	// What was accepted before is there, and reads answer.
	mustCall(t, n, 200, "GET", "/v1/tenants/acme/events/"+before.ID, nil, nil)

	// Free the space: ready again, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, _ := rawCall(t, n, "GET", "/readyz", nil)
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 20 s after the disk was freed", res.StatusCode)
		}
		time.Sleep(100 * time.Millisecond) // polling interval of a condition with a deadline
	}
	var out struct {
		Data []aviso.Event `json:"data"`
	}
	mustCall(t, n, 202, "POST", "/v1/tenants/acme/events/batch", batch, &out)
	want := []string{before.ID}
	for _, ev := range out.Data {
		want = append(want, ev.ID)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		have := 0
		for _, id := range want {
			if got[id] > 0 {
				have++
			}
		}
		mu.Unlock()
		if have == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered 20 s after the disk was freed", have, len(want))
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition with a deadline
	}
	for _, id := range want {
		if ds := eventDeliveries(t, n, "acme", id); len(ds) != 1 {
			t.Fatalf("event %s: %d deliveries, want 1", id, len(ds))
		} else {
			waitDelivery(t, n, "acme", ds[0].ID, aviso.StatusSucceeded, 1)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("event %s reached the receiver %d times, want once", id, got[id])
		}
	}
}

// fillDisk writes path until the filesystem is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{0xAA}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatalf("fill the disk: %v", err)
		}
	}
	small := []byte{0}
	for {
		if _, err := f.Write(small); err != nil {
			break // not one byte more
		}
	}
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// rawCall makes an API request with the root key and returns the response (body read) and any
// error body.
func rawCall(t *testing.T, n *node, method, path string, body any) (*http.Response, apiError) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.URL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+rootKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e apiError
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &e)
	return res, e
}
