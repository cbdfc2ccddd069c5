package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// benchRateLimit is the rate limit of the rate_limit scenario's limited endpoint, per second.
const benchRateLimit = 100

// rateSkip is how many of the limited endpoint's first arrivals its achieved rate leaves out: the
// burst credit a quiet endpoint starts with (dispatch's pace: the rate's worth of 50 ms), and room.
const rateSkip = 10

// rateLimit runs rounds of a solo run of Isolation events to a healthy endpoint and a run
// beside an endpoint limited to 100/s, of a tenant of its own, with a backlog of RateLimited
// events published just before the run: due at once, the oldest due of the node, and far more
// than it may send meanwhile. It reports the healthy endpoint's throughput beside the limited one
// relative to alone (the medians of the rounds), which is what the limit costs its neighbours
// (the limited endpoint's own rows cost what any endpoint's do: a neighbour that gets every event
// too is the isolation scenario), and, in the last round, the limited endpoint's achieved rate
// over its backlog (leaving out its first burst).
func (r *runner) rateLimit(ctx context.Context, n *node) ([]Result, error) {
	count, want := r.sizes.Isolation, r.sizes.RateLimited
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()

	var (
		mu       sync.Mutex
		arrivals []time.Time // at the limited endpoint's receiver, of the round under way
	)

	// measure runs one round; beside adds the limited endpoint and its backlog first, and last
	// waits for it to have had want deliveries before its tenant (and the rest of its backlog)
	// goes.
	measure := func(name string, beside, last bool) (float64, int64, time.Duration, writerUse, error) {
		rcv, err := startReceiver(false, nil)
		if err != nil {
			return 0, 0, 0, writerUse{}, err
		}
		defer rcv.close()
		tenant, cleanup, err := r.tenant(ctx, n, name)
		if err != nil {
			return 0, 0, 0, writerUse{}, err
		}
		defer cleanup()
		if _, err := n.api.createEndpoint(ctx, tenant, rcv.URL()+"/healthy", 0); err != nil {
			return 0, 0, 0, writerUse{}, err
		}
		var limitedRcv *receiver
		if beside {
			mu.Lock()
			arrivals = arrivals[:0]
			mu.Unlock()
			limitedRcv, err = startReceiver(false, func(_ *http.Request, at time.Time) {
				mu.Lock()
				arrivals = append(arrivals, at)
				mu.Unlock()
			})
			if err != nil {
				return 0, 0, 0, writerUse{}, err
			}
			defer limitedRcv.close()
			other, cleanup, err := r.tenant(ctx, n, name+"-limited")
			if err != nil {
				return 0, 0, 0, writerUse{}, err
			}
			defer cleanup()
			if _, err := n.api.createLimitedEndpoint(ctx, other, limitedRcv.URL()+"/limited", benchRateLimit); err != nil {
				return 0, 0, 0, writerUse{}, err
			}
			var published atomic.Int64
			if err := publishBatches(ctx, []*node{n}, other, name+"-limited", want, r.sizes.BatchSize, 2, 0, &published); err != nil {
				return 0, 0, 0, writerUse{}, err
			}
		}
		stop := r.tick(ctx, n, func() string {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprintf("rate_limit (%s): %d/%d delivered, %d to the limited endpoint", name, rcv.Count(), count, len(arrivals))
		})
		defer stop()
		writer := writerWindow(n)
		start := time.Now()
		lastAt, err := r.deliverAll(ctx, []*node{n}, rcv, tenant, name, count, int64(count))
		if err != nil && !errors.Is(err, errIncomplete) {
			return 0, 0, 0, writerUse{}, err
		}
		elapsed, use := lastAt.Sub(start), writer()
		if last && err == nil {
			_, err = limitedRcv.waitFor(ctx, int64(want))
		}
		return rate(rcv.Count(), elapsed), rcv.Count(), elapsed, use, err
	}

	var solos, mixeds, ratios []float64
	var soloBusy, mixedBusy []writerUse
	var got int64
	var took time.Duration
	done := true
	rounds := max(1, r.sizes.IsolationRounds)
	type run struct {
		rate float64
		n    int64
		took time.Duration
		use  writerUse
	}
	for i := range rounds {
		// Odd rounds go beside first, so that what a run leaves the next (the rows of the
		// tenants just deleted, warm caches) falls on both alike.
		var solo, mixed run
		for _, beside := range []bool{i%2 == 1, i%2 == 0} {
			var err error
			if beside {
				mixed.rate, mixed.n, mixed.took, mixed.use, err = measure(fmt.Sprintf("rl-beside-%d", i), true, i == rounds-1)
			} else {
				solo.rate, solo.n, solo.took, solo.use, err = measure(fmt.Sprintf("rl-solo-%d", i), false, false)
			}
			if err != nil && !errors.Is(err, errIncomplete) {
				return nil, err
			}
			done = done && err == nil
		}
		solos, mixeds = append(solos, solo.rate), append(mixeds, mixed.rate)
		soloBusy, mixedBusy = append(soloBusy, solo.use), append(mixedBusy, mixed.use)
		if solo.rate > 0 {
			ratios = append(ratios, mixed.rate/solo.rate)
		}
		got, took = got+solo.n+mixed.n, took+solo.took+mixed.took
		if !done {
			break
		}
	}

	mu.Lock()
	ts := append([]time.Time(nil), arrivals...)
	mu.Unlock()
	achieved, limitedN := 0.0, int64(len(ts))
	if len(ts) > rateSkip+1 {
		ts = ts[:min(len(ts), want)]
		achieved = rate(int64(len(ts)-rateSkip-1), ts[len(ts)-1].Sub(ts[rateSkip]))
	}
	limitedDone := done && int(limitedN) >= want
	expected := int64(2 * count * rounds)
	soloW, mixedW := medianUse(soloBusy), medianUse(mixedBusy)
	roundsNote := fmt.Sprintf("median of %d rounds (a solo run and one beside an endpoint limited to %d/s with a backlog of %d events of its own, odd rounds beside first; %d events each)",
		len(solos), benchRateLimit, want, count)
	return []Result{
		{Metric: "solo_deliveries_per_s", Value: median(solos), Unit: "dlv/s", OfCeiling: r.ofCeiling(median(solos)),
			Count: got, Expected: expected, Complete: done, Seconds: took.Seconds(), WriterBusy: soloW.value(),
			Note: roundsNote + soloW.note()},
		{Metric: "beside_limited_deliveries_per_s", Value: median(mixeds), Unit: "dlv/s", OfCeiling: r.ofCeiling(median(mixeds)),
			Count: got, Expected: expected, Complete: done, Seconds: took.Seconds(), WriterBusy: mixedW.value(),
			Note: roundsNote + mixedW.note()},
		{Metric: "healthy_kept", Value: median(ratios), Unit: "ratio", Target: atLeast(0.95), Count: got, Expected: expected,
			Complete: done, Seconds: took.Seconds(), Note: roundsNote + "; each round's ratio: " + joinFloats(ratios)},
		{Metric: "limited_deliveries_per_s", Value: achieved, Unit: "dlv/s", Count: min(limitedN, int64(want)),
			Expected: int64(want), Complete: limitedDone,
			Note: fmt.Sprintf("limit %d/s; measured by the receiver over its deliveries %d to %d of the last round (the first are the burst a quiet endpoint may send at once)",
				benchRateLimit, rateSkip+1, want)},
		{Metric: "limited_off_target", Value: math.Abs(achieved/benchRateLimit - 1), Unit: "ratio", Target: atMost(0.05),
			Count: min(limitedN, int64(want)), Expected: int64(want), Complete: limitedDone,
			Note: "how far the achieved rate is from the limit, as a share of it"},
	}, nil
}
