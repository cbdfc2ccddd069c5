package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"
)

// benchRateLimit is the rate limit of the rate_limit scenario's limited endpoint, per second.
const benchRateLimit = 100

// rateSkip is how many of the limited endpoint's first arrivals its achieved rate leaves out: the
// burst credit a quiet endpoint starts with (dispatch's pace: the rate's worth of 50 ms), and room.
const rateSkip = 10

// rateLimit runs rounds of a solo run of Isolation events to a healthy endpoint, then a run
// beside an endpoint limited to 100/s that gets every event too. It reports the healthy
// endpoint's throughput beside the limited one relative to alone (the medians of the rounds)
// and, in the last round, the limited endpoint's achieved rate over its first RateLimited
// deliveries (leaving out its first burst).
func (r *runner) rateLimit(ctx context.Context, n *node) ([]Result, error) {
	count, want := r.sizes.Isolation, r.sizes.RateLimited
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()

	var (
		mu       sync.Mutex
		arrivals []time.Time // at the limited endpoint's receiver, of the round under way
	)

	// measure runs one round; beside adds the limited endpoint (with a receiver of its own, so
	// that the last round's count only its own deliveries), and last waits for it to have want
	// arrivals before the tenant (and its pending deliveries) goes.
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
			if _, err := n.api.createLimitedEndpoint(ctx, tenant, limitedRcv.URL()+"/limited", benchRateLimit); err != nil {
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
	for i := range rounds {
		solo, soloN, soloT, soloW, err := measure(fmt.Sprintf("rl-solo-%d", i), false, false)
		if err != nil && !errors.Is(err, errIncomplete) {
			return nil, err
		}
		done = done && err == nil
		mixed, mixedN, mixedT, mixedW, err := measure(fmt.Sprintf("rl-beside-%d", i), true, i == rounds-1)
		if err != nil && !errors.Is(err, errIncomplete) {
			return nil, err
		}
		done = done && err == nil
		solos, mixeds = append(solos, solo), append(mixeds, mixed)
		soloBusy, mixedBusy = append(soloBusy, soloW), append(mixedBusy, mixedW)
		if solo > 0 {
			ratios = append(ratios, mixed/solo)
		}
		got, took = got+soloN+mixedN, took+soloT+mixedT
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
	roundsNote := fmt.Sprintf("median of %d rounds (a solo run, then one beside an endpoint limited to %d/s that gets every event too; %d events each)",
		len(solos), benchRateLimit, count)
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
