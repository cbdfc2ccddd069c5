package sqlite

import (
	"slices"
	"strconv"
	"testing"
)

// ids returns the IDs of ds.
func ids(ds []*deferredDelivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.id
	}
	return out
}

// An endpoint's queue hands out its deliveries in due order, whatever order they come back in:
// published, claimed, given back, expired.
func TestDeferredQueueOrder(t *testing.T) {
	newSet := func(n int) (*deferredSet, []*deferredDelivery) {
		s := newDeferredSet(100)
		var ds []*deferredDelivery
		for i := range n {
			ds = append(ds, &deferredDelivery{id: "dlv_" + strconv.Itoa(10+i), endpointID: "ep", seq: int64(i + 1), next: int64(100 + i)})
		}
		s.addTentative(ds)
		s.publish(ds)
		return s, ds
	}
	tests := []struct {
		name string
		run  func(s *deferredSet, ds []*deferredDelivery)
		want []string // due at 1000, limit 10
	}{
		{"published", func(*deferredSet, []*deferredDelivery) {}, []string{"dlv_10", "dlv_11", "dlv_12", "dlv_13", "dlv_14"}},
		{"claimed", func(s *deferredSet, ds []*deferredDelivery) { s.claim(ds[:3], "a", 500) }, []string{"dlv_13", "dlv_14"}},
		{"released", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:3], "a", 500)
			if n := s.release("a", ids(ds[:3])); n != 3 {
				t.Errorf("released %d, want 3", n)
			}
		}, []string{"dlv_10", "dlv_11", "dlv_12", "dlv_13", "dlv_14"}},
		{"released by another owner", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:3], "a", 500)
			s.release("b", ids(ds[:3]))
		}, []string{"dlv_13", "dlv_14"}},
		{"some released", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:4], "a", 500)
			s.release("a", []string{"dlv_11", "dlv_13"})
		}, []string{"dlv_11", "dlv_13", "dlv_14"}},
		{"expired", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:2], "a", 500)
			s.claim(ds[2:4], "a", 2000)
			s.expire(1000)
		}, []string{"dlv_10", "dlv_11", "dlv_14"}},
		{"written and forgotten", func(s *deferredSet, ds []*deferredDelivery) {
			s.writing(ds[1:2])
			s.forget(ds[3:4])
		}, []string{"dlv_10", "dlv_12", "dlv_14"}},
		{"not written after all", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:1], "a", 500)
			s.writing(ds[:2])
			s.unwritten(ds[:2])
		}, []string{"dlv_10", "dlv_11", "dlv_12", "dlv_13", "dlv_14"}},
		{"one published out of order", func(s *deferredSet, ds []*deferredDelivery) {
			late := &deferredDelivery{id: "dlv_125", endpointID: "ep", seq: 9, next: 102}
			s.addTentative([]*deferredDelivery{late})
			s.publish([]*deferredDelivery{late})
		}, []string{"dlv_10", "dlv_11", "dlv_12", "dlv_125", "dlv_13", "dlv_14"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ds := newSet(5)
			tc.run(s, ds)
			if got := ids(s.due(1000, nil, 10)); !slices.Equal(got, tc.want) {
				t.Fatalf("due: %v, want %v", got, tc.want)
			}
			if next, ok := s.nextDue(); len(tc.want) > 0 && (!ok || next > 104) {
				t.Errorf("nextDue: %d %v", next, ok)
			}
		})
	}
}

// Given back many times, a long queue keeps its order (the front has room made for it).
func TestDeferredQueueReleasesInBulk(t *testing.T) {
	s := newDeferredSet(10_000)
	var ds []*deferredDelivery
	for i := range 5000 {
		ds = append(ds, &deferredDelivery{id: "dlv_" + strconv.Itoa(10_000+i), endpointID: "ep", seq: int64(i + 1), next: int64(i)})
	}
	s.addTentative(ds)
	s.publish(ds)
	for range 50 {
		got := s.due(10_000, nil, 100)
		s.claim(got, "a", 1)
		s.release("a", ids(got))
	}
	got := s.due(10_000, nil, 5000)
	if !slices.Equal(ids(got), ids(ds)) {
		t.Fatalf("after 50 claims given back, the queue is out of order")
	}
	if s.due(10_000, map[string]bool{"ep": true}, 10) != nil {
		t.Fatalf("an excluded endpoint's deliveries were due")
	}
}

// The deferred column reads back what was written; anything else is an error, never a panic.
func FuzzDecodeDeferred(f *testing.F) {
	f.Add(encodeDeferred([]*deferredDelivery{{id: "dlv_1", endpointID: "ep_1", next: 1, created: 2, updated: 3},
		{id: "dlv_2", endpointID: "ep_2", next: 4, created: 5, updated: 6}}))
	f.Add("dlv_1 ep_1 1 2")
	f.Add("dlv_1 ep_1 1 2 x")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		ds, err := decodeDeferred(text, 7, "ten", "evt", "invoice.created")
		if err != nil {
			return
		}
		again, err := decodeDeferred(encodeDeferred(ds), 7, "ten", "evt", "invoice.created")
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", encodeDeferred(ds), err)
		}
		if len(again) != len(ds) {
			t.Fatalf("%d deliveries, then %d", len(ds), len(again))
		}
		for i := range ds {
			a, b := ds[i], again[i]
			if a.id != b.id || a.endpointID != b.endpointID || a.next != b.next || a.created != b.created || a.updated != b.updated || b.seq != 7 {
				t.Fatalf("delivery %d: %+v, then %+v", i, a, b)
			}
		}
	})
}

// Failed deliveries (an endpoint disabled) leave the queue whatever state the disabling found
// them in, as they would be queued again, and the count of failing ones stays exact through
// every change of state.
func TestDeferredFail(t *testing.T) {
	tests := []struct {
		name        string
		run         func(s *deferredSet, ds []*deferredDelivery)
		wantDue     []string // due at 1000, limit 10
		wantFailing int
	}{
		{"queued", func(s *deferredSet, ds []*deferredDelivery) { s.fail(ds[:2], 900) },
			[]string{"dlv_12", "dlv_13"}, 2},
		{"claimed keeps its lease", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:1], "a", 2000)
			s.fail(ds[:2], 900)
		}, []string{"dlv_12", "dlv_13"}, 1},
		{"claimed then released", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:1], "a", 2000)
			s.fail(ds[:2], 900)
			s.release("a", ids(ds[:1]))
		}, []string{"dlv_12", "dlv_13"}, 2},
		{"claimed then expired", func(s *deferredSet, ds []*deferredDelivery) {
			s.claim(ds[:1], "a", 500)
			s.fail(ds[:1], 900)
			s.expire(1000)
		}, []string{"dlv_11", "dlv_12", "dlv_13"}, 1},
		{"written, not committed", func(s *deferredSet, ds []*deferredDelivery) {
			s.fail(ds[:2], 900)
			s.writing(ds[:2])
			s.unwritten(ds[:2])
		}, []string{"dlv_12", "dlv_13"}, 2},
		{"written and forgotten", func(s *deferredSet, ds []*deferredDelivery) {
			s.fail(ds[:2], 900)
			s.writing(ds[:1])
			s.forget(ds[:2])
		}, []string{"dlv_12", "dlv_13"}, 0},
		{"tentative, then published", func(s *deferredSet, ds []*deferredDelivery) {
			late := &deferredDelivery{id: "dlv_20", endpointID: "ep", seq: 9, next: 120}
			s.addTentative([]*deferredDelivery{late})
			s.fail([]*deferredDelivery{late}, 900)
			s.publish([]*deferredDelivery{late})
		}, []string{"dlv_10", "dlv_11", "dlv_12", "dlv_13"}, 1},
		{"failed twice keeps the first time", func(s *deferredSet, ds []*deferredDelivery) {
			s.fail(ds[:1], 900)
			s.fail(ds[:1], 950)
			if ds[0].failedAt != 900 {
				t.Errorf("failedAt %d, want 900", ds[0].failedAt)
			}
		}, []string{"dlv_11", "dlv_12", "dlv_13"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newDeferredSet(100)
			var ds []*deferredDelivery
			for i := range 4 {
				ds = append(ds, &deferredDelivery{id: "dlv_" + strconv.Itoa(10+i), endpointID: "ep", seq: int64(i + 1), next: int64(100 + i)})
			}
			s.addTentative(ds)
			s.publish(ds)
			tc.run(s, ds)
			if got := ids(s.due(1000, nil, 10)); !slices.Equal(got, tc.wantDue) {
				t.Errorf("due %v, want %v", got, tc.wantDue)
			}
			recount := 0
			for _, d := range s.byID {
				if d.state == deferFailing {
					recount++
				}
			}
			if s.failing != tc.wantFailing || recount != tc.wantFailing {
				t.Errorf("failing: counted %d, in the set %d, want %d", s.failing, recount, tc.wantFailing)
			}
		})
	}
}
