package aviso

import "time"

// DefaultRetrySchedule returns the wait before each retry after a failed attempt: exponential ×5
// as in the FacturaScripts guide. One first attempt plus five retries; then the delivery is
// failed. Each call returns a new slice.
func DefaultRetrySchedule() []time.Duration {
	return []time.Duration{5 * time.Second, 25 * time.Second, 125 * time.Second, 625 * time.Second, 3125 * time.Second}
}

// DisableAfterFailures is how many consecutive failed attempts disable an endpoint (as Alegra does).
const DisableAfterFailures = 10

// DisableMinSpan is how long an endpoint must have been failing before consecutive failures
// disable it.
const DisableMinSpan = time.Hour

// Bounds of an endpoint's DisablePolicy.
const (
	MaxDisableFailures = 10_000
	MaxDisableMinSpan  = 30 * 24 * time.Hour
)

// MaxRetryAfter caps how long a receiver's Retry-After header may push a retry back.
const MaxRetryAfter = time.Hour

// NextAttempt returns when a delivery should be tried again after its n-th failed attempt in the
// current round (n ≥ 1), and false when the schedule is exhausted and the delivery has failed.
//
// retryAfter is the receiver's Retry-After on a 429 or 503 (0 if none); when set it replaces the
// scheduled wait, capped at MaxRetryAfter. jitter, in [-1, 1], spreads the scheduled wait by ±10 %
// so that endpoints coming back from an outage are not hit by every retry at once; pass 0 in tests
// that want exact times. The function is pure: the same inputs give the same answer.
func NextAttempt(now time.Time, schedule []time.Duration, n int, retryAfter time.Duration, jitter float64) (time.Time, bool) {
	if n < 1 || n > len(schedule) {
		return time.Time{}, false
	}
	if retryAfter > 0 {
		return now.Add(min(retryAfter, MaxRetryAfter)), true
	}
	wait := schedule[n-1]
	jitter = max(-1, min(1, jitter))
	wait += time.Duration(float64(wait) * 0.1 * jitter)
	return now.Add(wait), true
}
