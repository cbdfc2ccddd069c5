package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ordering measures what per-document ordering costs: OrderingEvents events whose external
// references are spread over OrderingReferences (event i carries doc-(i mod references)),
// published by batch to one endpoint while it delivers and timed end to end as end_to_end is,
// first to an unordered endpoint and then, on a tenant of its own, to one with
// "ordering":"external_reference". The figure is the ordered endpoint's throughput as a fraction
// of the unordered one's. Rounds alternate the two (unordered first) and the medians are
// reported, as isolation does.
func (r *runner) ordering(ctx context.Context, n *node) ([]Result, error) {
	count, refs := r.sizes.OrderingEvents, r.sizes.OrderingReferences
	if count == 0 || refs == 0 {
		return nil, nil
	}
	measure := func(name string, ordered bool) (float64, int64, time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
		defer cancel()
		rcv, err := startReceiver(false, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		defer rcv.close()
		tenant, cleanup, err := r.tenant(ctx, n, name)
		if err != nil {
			return 0, 0, 0, err
		}
		defer cleanup()
		var extra map[string]any
		if ordered {
			extra = map[string]any{"ordering": "external_reference"}
		}
		if _, err := n.api.createEndpointWith(ctx, tenant, rcv.URL()+"/"+name, 0, extra); err != nil {
			return 0, 0, 0, err
		}
		stop := r.tick(ctx, n, func() string { return fmt.Sprintf("ordering (%s): %d/%d delivered", name, rcv.Count(), count) })
		defer stop()
		start := time.Now()
		last, err := r.deliverAllRefs(ctx, []*node{n}, rcv, tenant, name, count, refs, int64(count))
		if err != nil && !errors.Is(err, errIncomplete) {
			return 0, 0, 0, err
		}
		elapsed := last.Sub(start)
		return rate(rcv.Count(), elapsed), rcv.Count(), elapsed, err
	}
	var plains, ordereds, ratios []float64
	var got int64
	var took time.Duration
	done := true
	rounds := max(1, r.sizes.OrderingRounds)
	for i := range rounds {
		plain, plainN, plainT, err := measure(fmt.Sprintf("unordered-%d", i), false)
		if err != nil && !errors.Is(err, errIncomplete) {
			return nil, err
		}
		done = done && err == nil
		ordered, orderedN, orderedT, err := measure(fmt.Sprintf("ordered-%d", i), true)
		if err != nil && !errors.Is(err, errIncomplete) {
			return nil, err
		}
		done = done && err == nil
		plains, ordereds = append(plains, plain), append(ordereds, ordered)
		if plain > 0 {
			ratios = append(ratios, ordered/plain)
		}
		got, took = got+plainN+orderedN, took+plainT+orderedT
		if !done {
			break // out of time: report what was measured
		}
	}
	expected := int64(2 * count * rounds)
	note := fmt.Sprintf("median of %d rounds (an unordered endpoint, then an ordered one; %d events each over %d external references, "+
		"published in batches of %d)", len(plains), count, refs, r.sizes.BatchSize)
	return []Result{
		{Metric: "unordered_deliveries_per_s", Value: median(plains), Unit: "dlv/s", OfCeiling: r.ofCeiling(median(plains)),
			Count: got, Expected: expected, Complete: done, Seconds: took.Seconds(), Note: note},
		{Metric: "ordered_deliveries_per_s", Value: median(ordereds), Unit: "dlv/s", OfCeiling: r.ofCeiling(median(ordereds)),
			Count: got, Expected: expected, Complete: done, Seconds: took.Seconds(),
			Note: `"ordering":"external_reference": one delivery of a reference at a time, in publish order`},
		{Metric: "ordered_kept", Value: median(ratios), Unit: "ratio", Target: atLeast(0.5), Count: got, Expected: expected,
			Complete: done, Seconds: took.Seconds(), Note: note + "; each round's ratio: " + joinFloats(ratios)},
	}, nil
}
