package bench

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of ds by the nearest-rank method: the
// smallest value such that at least p % of the samples are at or below it. ds must be sorted.
// It returns 0 for no samples.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	rank = max(1, min(len(ds), rank))
	return ds[rank-1]
}

// latencies summarises a set of publish→receive latencies.
type latencies struct {
	P50, P95, P99, Max time.Duration
	N                  int
}

func summarise(ds []time.Duration) latencies {
	s := slices.Clone(ds)
	slices.Sort(s)
	l := latencies{N: len(s), P50: percentile(s, 50), P95: percentile(s, 95), P99: percentile(s, 99)}
	if len(s) > 0 {
		l.Max = s[len(s)-1]
	}
	return l
}

// rate returns n per second over d, or 0 when d is not positive.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ms returns d in milliseconds as a float.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of v (the mean of the middle two for an even count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// joinFloats formats ratios with two decimals, comma-separated.
func joinFloats(v []float64) string {
	out := make([]string, len(v))
	for i, f := range v {
		out[i] = strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strings.Join(out, ", ")
}
