package dispatch_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// testOrdering: an endpoint ordered by external reference, whose receiver fails the first event
// of one reference (doc-0) three times, gets that reference's later events only after it, in
// publish order, while the other references arrive meanwhile (the receiver keeps failing doc-0's
// first event until they have all come, so a store that held them would exhaust its retries).
// An unordered endpoint on the same receiver, failing the same way, gets doc-0's later events
// while its first is still being retried.
func testOrdering(t *testing.T, b backend) {
	s := b.open(t, b.newKey(t))
	ten := newTenant(t, s)
	const refs, perRef = 5, 4
	type arrival struct {
		ref string
		n   int
		ok  bool
	}
	var (
		mu  sync.Mutex
		got = map[string][]arrival{} // by path
	)
	var rc *receiver
	rc = newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		var msg struct {
			Data struct {
				Ref string `json:"ref"`
				N   int    `json:"n"`
			} `json:"data"`
		}
		if err := json.Unmarshal(rc.requests()[n-1].body, &msg); err != nil {
			t.Errorf("receiver: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		path := r.URL.Path
		a := arrival{ref: msg.Data.Ref, n: msg.Data.N, ok: true}
		if a.ref == "doc-0" && a.n == 0 {
			failures, others := 0, 0
			for _, p := range got[path] {
				switch {
				case p.ref == "doc-0" && p.n == 0:
					failures++
				case path == "/ordered" && p.ref != "doc-0" && p.ok:
					others++
				case path == "/plain" && p.ref == "doc-0" && p.ok:
					others++
				}
			}
			// The ordered endpoint waits for the other references; the unordered one for doc-0's later events.
			want := (refs - 1) * perRef
			if path == "/plain" {
				want = perRef - 1
			}
			a.ok = failures >= 3 && others == want
		}
		got[path] = append(got[path], a)
		if !a.ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	schedule := ms(20, 20, 20, 40, 40, 80, 80, 160, 160, 320, 320, 640, 640, 1280, 1280)
	ordered := newEndpoint(t, s, ten.ID, rc.srv.URL+"/ordered", func(e *aviso.Endpoint) {
		e.Ordering, e.RetrySchedule = aviso.OrderingExternalReference, schedule
	})
	plain := newEndpoint(t, s, ten.ID, rc.srv.URL+"/plain", func(e *aviso.Endpoint) { e.RetrySchedule = schedule })

	// The events in publish order: every reference's n-th event before any (n+1)-th.
	now := time.Now().UTC()
	var batch []aviso.NewEvent
	for n := range perRef {
		for r := range refs {
			ev := &aviso.Event{ID: aviso.NewID(aviso.PrefixEvent, now), TenantID: ten.ID, Type: "invoice.created",
				Data:              json.RawMessage(fmt.Sprintf(`{"ref":"doc-%d","n":%d}`, r, n)),
				ExternalReference: fmt.Sprintf("doc-%d", r), CreatedAt: now}
			ne := aviso.NewEvent{Event: ev}
			for _, e := range []*aviso.Endpoint{ordered, plain} {
				due := now
				ne.Deliveries = append(ne.Deliveries, &aviso.Delivery{ID: aviso.NewID(aviso.PrefixDelivery, now),
					TenantID: ten.ID, EventID: ev.ID, EndpointID: e.ID, EventType: ev.Type, Status: aviso.StatusPending,
					NextAttemptAt: &due, CreatedAt: now, UpdatedAt: now})
			}
			batch = append(batch, ne)
		}
	}
	if _, err := s.InsertEvents(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	start(t, config(s))

	waitFor(t, "every event on both endpoints", func() bool {
		return countStatus(t, s, ten.ID, ordered.ID, aviso.StatusSucceeded) == refs*perRef &&
			countStatus(t, s, ten.ID, plain.ID, aviso.StatusSucceeded) == refs*perRef
	})
	mu.Lock()
	defer mu.Unlock()
	// The ordered endpoint: each reference's requests in publish order, doc-0's first three failed
	// and no later one of doc-0 before its success.
	for r := range refs {
		ref := fmt.Sprintf("doc-%d", r)
		var seq []string
		for _, a := range got["/ordered"] {
			if a.ref == ref {
				seq = append(seq, fmt.Sprintf("%d:%v", a.n, a.ok))
			}
		}
		failed := 0
		for failed < len(seq) && seq[failed] == "0:false" {
			failed++
		}
		want := []string{"0:true", "1:true", "2:true", "3:true"}
		if r == 0 && failed < 3 || r > 0 && failed > 0 || !slices.Equal(seq[failed:], want) {
			t.Errorf("ordered endpoint, %s: requests %s; want %s after (for doc-0) at least three failures of the first",
				ref, strings.Join(seq, " "), strings.Join(want, " "))
		}
	}
	// The unordered endpoint: doc-0's later events came while its first was being retried.
	var first int
	for i, a := range got["/plain"] {
		if a.ref == "doc-0" && a.n == 0 && a.ok {
			first = i
		}
	}
	for _, a := range got["/plain"][:first] {
		if a.ref == "doc-0" && a.n > 0 {
			return
		}
	}
	t.Errorf("unordered endpoint: no later event of doc-0 before its first succeeded: %+v", got["/plain"])
}
