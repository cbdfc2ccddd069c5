package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// CompleteDeliveries updates a batch's deliveries on the endpoints its attempts name; when one
// does not match (here an attempt naming another endpoint than its delivery's), the batch is
// applied one completion at a time, on the deliveries' own endpoints.
func TestCompleteFallsBackWhenAnAttemptNamesAnotherEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name         string
		wrongOf      int // index of the completion whose attempt names the other endpoint; -1: none
		wantFailures int // of the deliveries' endpoint
	}{
		{name: "all match", wrongOf: -1, wantFailures: 2},
		{name: "first names another", wrongOf: 0, wantFailures: 2},
		{name: "last names another", wrongOf: 1, wantFailures: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
			ten := storetest.NewTenant(t, s)
			ep, other := storetest.NewEndpoint(t, s, ten.ID), storetest.NewEndpoint(t, s, ten.ID)
			storetest.Publish(t, s, ten.ID, storetest.Base(), ep)
			storetest.Publish(t, s, ten.ID, storetest.Base().Add(time.Millisecond), ep)
			now := storetest.Base().Add(time.Hour)
			cs := storetest.Claim(t, s, "node", now, 10)
			if len(cs) != 2 {
				t.Fatalf("claimed %d, want 2", len(cs))
			}
			comps := make([]aviso.Completion, len(cs))
			for i, c := range cs {
				comps[i] = storetest.Completion(c.Delivery, "node", now, 503, false)
				if i == tc.wrongOf {
					comps[i].Attempt.EndpointID = other.ID
				}
			}
			storetest.Complete(t, s, comps...)
			for _, c := range cs {
				d, err := s.GetDelivery(t.Context(), ten.ID, c.Delivery.ID)
				if err != nil {
					t.Fatalf("get delivery: %v", err)
				}
				if d.AttemptCount != 1 || len(d.Attempts) != 1 || d.Attempts[0].EndpointID != ep.ID {
					t.Errorf("delivery %s: %d attempts counted, %d listed; want 1 on endpoint %s", d.ID, d.AttemptCount, len(d.Attempts), ep.ID)
				}
			}
			for _, want := range []struct {
				ep       *aviso.Endpoint
				failures int
			}{{ep, tc.wantFailures}, {other, 0}} {
				got, err := s.GetEndpoint(t.Context(), ten.ID, want.ep.ID)
				if err != nil {
					t.Fatalf("get endpoint: %v", err)
				}
				if got.ConsecutiveFailures != want.failures {
					t.Errorf("endpoint %s: %d consecutive failures, want %d", got.ID, got.ConsecutiveFailures, want.failures)
				}
			}
		})
	}
}

// BenchmarkCompleteDeliveries8 completes batches of 8, the size a dispatcher sending 8 requests
// at a time to one endpoint tends to record, with synchronous NORMAL so that the WAL sync does
// not hide the statements' cost.
func BenchmarkCompleteDeliveries8(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "aviso.db"), sqlite.Options{Synchronous: "NORMAL"})
	ten := storetest.NewTenant(b, s)
	ep := storetest.NewEndpoint(b, s, ten.ID)
	for i := range 64 {
		storetest.Publish(b, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Millisecond), ep)
	}
	now := storetest.Base().Add(time.Hour)
	for b.Loop() {
		b.StopTimer()
		cs := storetest.Claim(b, s, "bench", now, 8)
		comps := make([]aviso.Completion, len(cs))
		for i, c := range cs {
			// Failed attempts keep the deliveries pending, due again a minute later.
			comps[i] = storetest.Completion(c.Delivery, "bench", now, 503, false)
		}
		b.StartTimer()
		if err := s.CompleteDeliveries(b.Context(), comps); err != nil {
			b.Fatalf("complete deliveries: %v", err)
		}
		now = now.Add(2 * time.Minute)
	}
}
