// Package backoff paces the tries of something that keeps failing: each wait is twice the one
// before, from Min up to Max, spread by jitter so that many waiters do not try again in step, and
// cut short when the context ends. A success resets it. The clock and the randomness are fields,
// so tests run it without real time passing.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff waits between failed tries. The zero value is not ready: set Min and Max. It is not
// safe for concurrent use; give each loop its own.
type Backoff struct {
	// Min is the first wait, Max the longest.
	Min, Max time.Duration
	// Jitter is the share of each wait that is random: a wait is its step times a number in
	// [1-Jitter, 1]. Default 0 (exact steps); 0.2 is a good choice for waiters that start together.
	Jitter float64
	// Rand returns a number in [0, 1). Default math/rand/v2.Float64.
	Rand func() float64
	// After is the clock: it returns a channel that receives once d has passed. Default
	// time.After.
	After func(d time.Duration) <-chan time.Time

	step time.Duration // the next wait before jitter; 0 until the first failure
}

// Next returns the wait after one more failure, and doubles the one after it.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.step == 0:
		b.step = b.Min
	case b.step < b.Max:
		b.step = min(2*b.step, b.Max)
	}
	d := b.step
	if b.Jitter > 0 {
		r := rand.Float64
		if b.Rand != nil {
			r = b.Rand
		}
		d -= time.Duration(b.Jitter * r() * float64(d))
	}
	return max(d, 0)
}

// Wait waits Next(), or until ctx ends, whichever comes first; it returns ctx's error in the
// second case.
func (b *Backoff) Wait(ctx context.Context) error {
	return b.Sleep(ctx, b.Next())
}

// Sleep waits d, or until ctx ends (and then returns its error), on b's clock. Use it with a
// wait from Next that was logged first.
func (b *Backoff) Sleep(ctx context.Context, d time.Duration) error {
	after := time.After
	if b.After != nil {
		after = b.After
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-after(d):
		return nil
	}
}

// Reset starts again from Min: call it after a success.
func (b *Backoff) Reset() { b.step = 0 }
