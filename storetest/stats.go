package storetest

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// attemptsAt publishes one delivery to ep per entry of codes, claims them all, and records one
// attempt for each at the matching time with the matching status code; it returns the deliveries.
func attemptsAt(tb testing.TB, s aviso.Store, tenantID string, ep *aviso.Endpoint, ats []time.Time, codes []int) []*aviso.Delivery {
	tb.Helper()
	start := Base().Add(-24 * time.Hour)
	var ds []*aviso.Delivery
	for range ats {
		_, d := Publish(tb, s, tenantID, start, ep)
		ds = append(ds, d[0])
	}
	if cs := Claim(tb, s, "stats", start, len(ats)); len(cs) != len(ats) {
		tb.Fatalf("claimed %d, want %d", len(cs), len(ats))
	}
	var cs []aviso.Completion
	for i, d := range ds {
		cs = append(cs, Completion(d, "stats", ats[i], codes[i], true))
	}
	Complete(tb, s, cs...)
	return ds
}

func testEndpointStats(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten, other := NewTenant(t, s), NewTenant(t, s)
	ep1, ep2, quiet := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	since := Base()
	attemptsAt(t, s, ten.ID, ep1,
		[]time.Time{since.Add(-time.Minute), since.Add(time.Minute), since.Add(2 * time.Minute), since.Add(3 * time.Minute), since.Add(4 * time.Minute)},
		[]int{200, 201, 500, 200, 0})
	attemptsAt(t, s, ten.ID, ep2, []time.Time{since.Add(time.Second)}, []int{204})
	attemptsAt(t, s, other.ID, NewEndpoint(t, s, other.ID), []time.Time{since.Add(time.Second)}, []int{500})

	st, err := s.EndpointStats(ctx, ten.ID, since)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	last1, last2 := since.Add(4*time.Minute), since.Add(time.Second)
	tests := []struct {
		name string
		id   string
		want aviso.EndpointStats
	}{
		{"mixed", ep1.ID, aviso.EndpointStats{Succeeded: 2, Failed: 2, LastAttemptAt: &last1, LastResponseStatus: 0, LastError: "dial tcp: connection refused"}},
		{"one success", ep2.ID, aviso.EndpointStats{Succeeded: 1, LastAttemptAt: &last2, LastResponseStatus: 204}},
		{"no attempts", quiet.ID, aviso.EndpointStats{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := st[tc.id]
			if got.Succeeded != tc.want.Succeeded || got.Failed != tc.want.Failed ||
				got.LastResponseStatus != tc.want.LastResponseStatus || got.LastError != tc.want.LastError {
				t.Errorf("stats %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.want.LastAttemptAt == nil && got.LastAttemptAt != nil:
				t.Errorf("LastAttemptAt %v, want nil", *got.LastAttemptAt)
			case tc.want.LastAttemptAt != nil && (got.LastAttemptAt == nil || !ms(*got.LastAttemptAt).Equal(ms(*tc.want.LastAttemptAt))):
				t.Errorf("LastAttemptAt %v, want %v", got.LastAttemptAt, *tc.want.LastAttemptAt)
			case got.LastAttemptAt != nil:
				checkUTC(t, "LastAttemptAt", *got.LastAttemptAt)
			}
		})
	}
	if len(st) > 3 {
		t.Errorf("stats for %d endpoints, want at most the tenant's 3: %v", len(st), st)
	}
}

func testAttemptHistogram(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten, other := NewTenant(t, s), NewTenant(t, s)
	ep1, ep2 := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	since := Base()
	until := since.Add(4 * time.Hour)
	attemptsAt(t, s, ten.ID, ep1,
		[]time.Time{since.Add(-time.Minute), since, since.Add(10 * time.Minute), since.Add(59 * time.Minute), since.Add(150 * time.Minute), until},
		[]int{200, 200, 500, 204, 0, 200})
	attemptsAt(t, s, ten.ID, ep2, []time.Time{since.Add(61 * time.Minute), since.Add(62 * time.Minute)}, []int{500, 200})
	attemptsAt(t, s, other.ID, NewEndpoint(t, s, other.ID), []time.Time{since.Add(time.Minute)}, []int{200})

	type counts struct{ ok, failed int }
	tests := []struct {
		name     string
		endpoint string
		bucket   time.Duration
		want     []counts
	}{
		{"all endpoints", "", time.Hour, []counts{{2, 1}, {1, 1}, {0, 1}, {0, 0}}},
		{"one endpoint", ep2.ID, time.Hour, []counts{{0, 0}, {1, 1}, {0, 0}, {0, 0}}},
		{"two-hour buckets", ep1.ID, 2 * time.Hour, []counts{{2, 1}, {0, 1}}},
		{"partial last bucket", ep1.ID, 3 * time.Hour, []counts{{2, 2}, {0, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.AttemptHistogram(ctx, aviso.HistogramParams{TenantID: ten.ID, EndpointID: tc.endpoint,
				Since: since, Until: until, Bucket: tc.bucket})
			if err != nil {
				t.Fatalf("histogram: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d buckets %+v, want %d", len(got), got, len(tc.want))
			}
			for i, b := range got {
				if start := since.Add(time.Duration(i) * tc.bucket); !ms(b.Start).Equal(ms(start)) {
					t.Errorf("bucket %d starts at %v, want %v", i, b.Start, start)
				}
				checkUTC(t, "bucket Start", b.Start)
				if b.Succeeded != tc.want[i].ok || b.Failed != tc.want[i].failed {
					t.Errorf("bucket %d: %d succeeded, %d failed; want %d, %d", i, b.Succeeded, b.Failed, tc.want[i].ok, tc.want[i].failed)
				}
			}
		})
	}
}

func testPrune(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten, other := NewTenant(t, s), NewTenant(t, s)
	ep, epOther := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, other.ID)
	var old []*aviso.Delivery
	var oldEvents []*aviso.Event
	for _, at := range []time.Time{Base().Add(-3 * time.Hour), Base().Add(-2 * time.Hour), Base().Add(-time.Hour)} {
		ev, ds := Publish(t, s, ten.ID, at, ep)
		old = append(old, ds[0])
		oldEvents = append(oldEvents, ev)
	}
	newEv, newDs := Publish(t, s, ten.ID, Base(), ep)
	otherEv, _ := Publish(t, s, other.ID, Base().Add(time.Minute), epOther)
	Claim(t, s, "node", Base(), 10)
	for _, d := range append(old, newDs[0]) {
		Complete(t, s, Completion(d, "node", Base(), 500, true))
	}

	for i, want := range []int{2, 1, 0} {
		n, err := s.Prune(ctx, Base(), 2)
		if err != nil {
			t.Fatalf("prune %d: %v", i, err)
		}
		if n != want {
			t.Errorf("prune %d deleted %d events, want %d", i, n, want)
		}
		if i == 0 {
			// The oldest go first.
			if _, err := s.GetEvent(ctx, ten.ID, oldEvents[2].ID); err != nil {
				t.Errorf("the newest old event was pruned before the older ones: %v", err)
			}
		}
	}
	for i, ev := range oldEvents {
		_, err := s.GetEvent(ctx, ten.ID, ev.ID)
		wantCode(t, "get a pruned event", err, aviso.ENOTFOUND)
		_, err = s.GetDelivery(ctx, ten.ID, old[i].ID)
		wantCode(t, "get a pruned event's delivery", err, aviso.ENOTFOUND)
	}
	if _, err := s.GetEvent(ctx, ten.ID, newEv.ID); err != nil {
		t.Errorf("a recent event was pruned: %v", err)
	}
	if _, err := s.GetEvent(ctx, other.ID, otherEv.ID); err != nil {
		t.Errorf("another tenant's recent event was pruned: %v", err)
	}
	if d := mustGetDelivery(t, s, ten.ID, newDs[0].ID); len(d.Attempts) != 1 {
		t.Errorf("a recent delivery has %d attempts, want 1", len(d.Attempts))
	}
	st, err := s.EndpointStats(ctx, ten.ID, Base().Add(-24*time.Hour))
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if got := st[ep.ID].Failed; got != 1 {
		t.Errorf("%d failed attempts left after pruning, want 1 (the pruned events' attempts are gone)", got)
	}
}

func testPing(t *testing.T, s aviso.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("ping: %v", err)
	}
}

// testAttemptLatency: nearest-rank percentiles of one endpoint's attempts in the window only.
func testAttemptLatency(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	ten := NewTenant(t, s)
	ep, sibling := NewEndpoint(t, s, ten.ID), NewEndpoint(t, s, ten.ID)
	since := Base()
	until := since.Add(time.Hour)
	// Twenty attempts of 10, 20, … 200 ms inside the window, out of order; one before it, one at
	// Until and one of another endpoint, all slower, which must not count.
	type at struct {
		ep *aviso.Endpoint
		t  time.Time
		ms int64
	}
	var ats []at
	for i := range 20 {
		ats = append(ats, at{ep, since.Add(time.Duration((i*7)%20) * time.Minute), int64(10 * (i + 1))})
	}
	ats = append(ats, at{ep, since.Add(-time.Second), 9000}, at{ep, until, 9000}, at{sibling, since, 9000})
	start := since.Add(-24 * time.Hour)
	var ds []*aviso.Delivery
	for _, a := range ats {
		_, d := Publish(t, s, ten.ID, start, a.ep)
		ds = append(ds, d[0])
	}
	if cs := Claim(t, s, "latency", start, len(ats)); len(cs) != len(ats) {
		t.Fatalf("claimed %d, want %d", len(cs), len(ats))
	}
	var cs []aviso.Completion
	for i, d := range ds {
		c := Completion(d, "latency", ats[i].t, 200, true)
		c.Attempt.DurationMS = ats[i].ms
		cs = append(cs, c)
	}
	Complete(t, s, cs...)

	got, err := s.AttemptLatency(ctx, aviso.LatencyParams{TenantID: ten.ID, EndpointID: ep.ID, Since: since, Until: until})
	if err != nil {
		t.Fatalf("latency: %v", err)
	}
	// Nearest rank: p50 is the 10th of 20 (100 ms), p95 the 19th (190 ms).
	if want := (aviso.Latency{Count: 20, P50MS: 100, P95MS: 190}); got != want {
		t.Errorf("latency %+v, want %+v", got, want)
	}
	got, err = s.AttemptLatency(ctx, aviso.LatencyParams{TenantID: ten.ID, EndpointID: ep.ID, Since: until.Add(time.Hour), Until: until.Add(2 * time.Hour)})
	if err != nil || got != (aviso.Latency{}) {
		t.Errorf("latency of an empty window %+v (%v), want zero", got, err)
	}
	other := NewTenant(t, s)
	got, err = s.AttemptLatency(ctx, aviso.LatencyParams{TenantID: other.ID, EndpointID: ep.ID, Since: since, Until: until})
	if err != nil || got != (aviso.Latency{}) {
		t.Errorf("latency through another tenant %+v (%v), want zero", got, err)
	}
}
