package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aviso-dev/aviso/internal/backoff"
)

func TestNext(t *testing.T) {
	tests := []struct {
		name   string
		b      backoff.Backoff
		resets map[int]bool // reset before this try
		want   []time.Duration
	}{
		{"doubles to max", backoff.Backoff{Min: 50 * time.Millisecond, Max: 300 * time.Millisecond}, nil,
			[]time.Duration{50, 100, 200, 300, 300}},
		{"reset", backoff.Backoff{Min: 10 * time.Millisecond, Max: time.Second}, map[int]bool{2: true},
			[]time.Duration{10, 20, 10, 20}},
		{"jitter takes its share off the step", backoff.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2,
			Rand: func() float64 { return 0.5 }}, nil, []time.Duration{90, 180, 360}},
		{"min equals max", backoff.Backoff{Min: 5 * time.Millisecond, Max: 5 * time.Millisecond}, nil,
			[]time.Duration{5, 5, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, w := range tc.want {
				if tc.resets[i] {
					tc.b.Reset()
				}
				if got := tc.b.Next(); got != w*time.Millisecond {
					t.Errorf("try %d: wait %s, want %s", i, got, w*time.Millisecond)
				}
			}
		})
	}
}

func TestWaitUsesTheClock(t *testing.T) {
	var asked []time.Duration
	fire := make(chan time.Time, 1)
	b := backoff.Backoff{Min: time.Hour, Max: 4 * time.Hour, After: func(d time.Duration) <-chan time.Time {
		asked = append(asked, d)
		return fire
	}}
	fire <- time.Time{}
	if err := b.Wait(t.Context()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	fire <- time.Time{}
	if err := b.Wait(t.Context()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if len(asked) != 2 || asked[0] != time.Hour || asked[1] != 2*time.Hour {
		t.Errorf("the clock was asked for %v, want [1h 2h]", asked)
	}
}

func TestWaitStopsWithTheContext(t *testing.T) {
	b := backoff.Backoff{Min: time.Hour, Max: time.Hour, After: func(time.Duration) <-chan time.Time {
		return nil // never fires
	}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
	}
}
