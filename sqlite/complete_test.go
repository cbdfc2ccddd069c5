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

// Disabling an endpoint fails its pending rows a chunk per write, not in one long write that
// would hold every other; the method returns once they are all failed, by hand or after the
// endpoint's failures.
func TestDisableFailsRowsByChunks(t *testing.T) {
	for _, byHand := range []bool{true, false} {
		t.Run(map[bool]string{true: "by hand", false: "after failures"}[byHand], func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{DeferLimit: -1}) // rows
			sqlite.SetFailChunk(s, 2)
			ten, ep, backlog := backlogOf(t, s, 7)
			at := storetest.Base().Add(time.Minute)
			before := sqlite.Commits(s)
			if byHand {
				if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
					Disabled: true, Reason: aviso.DisabledByUser, Now: at}); err != nil {
					t.Fatal(err)
				}
			} else {
				cs := storetest.Claim(t, s, "node", at, 1)
				c := storetest.Completion(cs[0].Delivery, "node", at, 503, false)
				c.DisableAfter = 1
				storetest.Complete(t, s, c)
				backlog = backlog[1:] // the attempted one is failed by its own attempt
			}
			// 6 or 7 pending rows, 2 a write: the disabling's own, then 3 more.
			if writes := sqlite.Commits(s) - before; writes < 4 {
				t.Errorf("disabling took %d writes, want at least 4 (a chunk of 2 each)", writes)
			}
			for _, d := range backlog {
				got, err := s.GetDelivery(t.Context(), ten.ID, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != aviso.StatusFailed || got.LastError != "endpoint disabled" || !got.UpdatedAt.Equal(at) {
					t.Errorf("delivery %s: %s %q at %v, want failed, endpoint disabled, at %v", d.ID, got.Status, got.LastError, got.UpdatedAt, at)
				}
			}
		})
	}
}

// A disabling whose chunks a stop cut short is finished by Open, as of the disabling; unless the
// endpoint was enabled again first, whose pending deliveries are then attempted.
func TestDisableFinishedAtOpen(t *testing.T) {
	for _, reenable := range []bool{false, true} {
		t.Run(map[bool]string{false: "stopped", true: "enabled again"}[reenable], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviso.db")
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{DeferLimit: -1}) // rows
			if err != nil {
				t.Fatal(err)
			}
			sqlite.SetFailChunk(s, 2)
			ten, ep, backlog := backlogOf(t, s, 7)
			at := storetest.Base().Add(time.Minute)
			sqlite.StopFailing(s)
			if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
				Disabled: true, Reason: aviso.DisabledByUser, Now: at}); err == nil {
				t.Fatal("disabling: no error, want the stop of its failing")
			}
			if reenable {
				if _, err := s.SetEndpointDisabled(t.Context(), aviso.SetEndpointDisabledParams{TenantID: ten.ID, ID: ep.ID,
					Disabled: false, Now: at.Add(time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := sqlite.Abandon(s); err != nil {
				t.Fatal(err)
			}

			s = open(t, path, sqlite.Options{DeferLimit: -1})
			failed := 0
			for _, d := range backlog {
				got, err := s.GetDelivery(t.Context(), ten.ID, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case got.Status == aviso.StatusFailed && got.LastError == "endpoint disabled" && got.UpdatedAt.Equal(at):
					failed++
				case got.Status != aviso.StatusPending:
					t.Errorf("delivery %s: %s %q at %v, want failed by the disabling or pending", d.ID, got.Status, got.LastError, got.UpdatedAt)
				}
			}
			want := 7 // every one, by the disabling's own chunk and then by Open
			if reenable {
				want = 2 // the disabling's own chunk only
			}
			if failed != want {
				t.Errorf("%d failed by the disabling after reopening, want %d", failed, want)
			}
			if reenable {
				if cs := storetest.Claim(t, s, "node", at.Add(time.Hour), 10); len(cs) != 5 {
					t.Errorf("claimed %d, want the 5 left pending", len(cs))
				}
			}
		})
	}
}
