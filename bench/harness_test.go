package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even is the lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p95 of 20 is the 19th", ms(seq(20)...), 95, 19 * time.Millisecond},
		{"p100 is the max", ms(1, 5, 9), 100, 9 * time.Millisecond},
		{"tiny p is the min", ms(1, 5, 9), 0.001, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{0.8}, 0.8},
		{[]float64{0.9, 0.7}, 0.8},
		{[]float64{0.95, 0.7, 0.85}, 0.85},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(tc.in)
		if got := median(tc.in); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median reordered its input: %v, was %v", tc.in, in)
		}
	}
}

func TestSummariseSortsACopy(t *testing.T) {
	in := []time.Duration{30, 10, 20}
	l := summarise(in)
	if l.P50 != 20 || l.Max != 30 || l.N != 3 {
		t.Errorf("summarise = %+v, want p50 20, max 30, n 3", l)
	}
	if in[0] != 30 {
		t.Errorf("summarise reordered its input: %v", in)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.00"}, {0.456, "0.46"}, {12.34, "12.3"}, {123.4, "123"}, {1234.5, "1,235"},
		{1234567, "1,234,567"}, {-4321, "-4,321"}, {math.Inf(1), "+Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatValue(tt.in); got != tt.want {
				t.Errorf("formatValue(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseKB(t *testing.T) {
	status := "Name:\taviso\nVmPeak:\t  812345 kB\nVmHWM:\t   45678 kB\nThreads:\t9\n"
	tests := []struct {
		name, key string
		want      int64
		ok        bool
	}{
		{"with unit", "VmHWM", 45678, true},
		{"without unit", "Threads", 9, true},
		{"missing", "VmSwap", 0, false},
		{"not a number", "Name", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseKB(strings.NewReader(status), tt.key)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseKB(%q) = %d, %v; want %d, %v", tt.key, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseKB(f *testing.F) {
	f.Add("VmHWM:\t 1234 kB\n", "VmHWM")
	f.Add("VmHWM: -5 kB", "VmHWM")
	f.Add(":::\n\n", "")
	f.Fuzz(func(t *testing.T, text, key string) {
		n, ok := parseKB(strings.NewReader(text), key)
		if ok && n < 0 {
			t.Errorf("parseKB accepted a negative size %d", n)
		}
		if !ok && n != 0 {
			t.Errorf("parseKB returned %d with ok false", n)
		}
	})
}

func TestPeakRSSOfThisProcess(t *testing.T) {
	rss, ok := peakRSS(0)
	if !ok {
		t.Skip("no /proc/self/status VmHWM on this system")
	}
	if rss <= 0 {
		t.Errorf("peakRSS = %d, want > 0", rss)
	}
}

func TestCeiling(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var lines []string
	res, err := measureCeiling(ctx, 300, 4, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 300 || !res.Complete || res.Concurrency != 4 {
		t.Errorf("ceiling = %+v, want 300 requests complete at concurrency 4", res)
	}
	if v := res.perSecond(); v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		t.Errorf("ceiling rate = %v, want a positive finite number", v)
	}
}

func TestReceiver(t *testing.T) {
	t.Run("waitFor returns when the count is reached", func(t *testing.T) {
		rcv := mustReceiver(t, false)
		hc := newClient(2)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for range 3 {
			post(t, hc, rcv.URL()+"/x", http.StatusNoContent)
		}
		at, err := rcv.waitFor(ctx, 3)
		if err != nil || at.IsZero() {
			t.Fatalf("waitFor(3) after 3 requests = %v, %v", at, err)
		}
		done := make(chan error, 1)
		go func() { _, err := rcv.waitFor(ctx, 5); done <- err }()
		post(t, hc, rcv.URL()+"/x", http.StatusNoContent)
		post(t, hc, rcv.URL()+"/x", http.StatusNoContent)
		if err := <-done; err != nil {
			t.Errorf("waitFor(5) = %v", err)
		}
		if rcv.Count() != 5 {
			t.Errorf("Count = %d, want 5", rcv.Count())
		}
	})
	t.Run("waitFor is incomplete when the bound passes", func(t *testing.T) {
		rcv := mustReceiver(t, false)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := rcv.waitFor(ctx, 1); !errors.Is(err, errIncomplete) {
			t.Errorf("waitFor with nothing sent = %v, want errIncomplete", err)
		}
	})
	t.Run("a hanging receiver never answers until closed", func(t *testing.T) {
		rcv, err := startReceiver(true, nil)
		if err != nil {
			t.Fatal(err)
		}
		hc := newClient(1)
		hc.Timeout = 100 * time.Millisecond
		resp, err := hc.Post(rcv.URL()+"/dead", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("hanging receiver answered %d", resp.StatusCode)
		}
		rcv.close()
		if rcv.Count() != 0 {
			t.Errorf("hanging receiver counted %d answers", rcv.Count())
		}
	})
}

func mustReceiver(tb testing.TB, hang bool) *receiver {
	tb.Helper()
	rcv, err := startReceiver(hang, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(rcv.close)
	return rcv
}

func post(tb testing.TB, hc *http.Client, url string, want int) {
	tb.Helper()
	resp, err := hc.Post(url, "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		tb.Fatalf("POST %s = %d, want %d", url, resp.StatusCode, want)
	}
}

func TestWriteTable(t *testing.T) {
	yes, no := true, false
	rep := &Report{Quick: true, Machine: Machine{CPUs: 2, CPUModel: "Test CPU"}, Ceiling: 20000, Results: []Result{
		{Scenario: "ceiling", Metric: "requests_per_s", Value: 20000, Unit: "req/s", OfCeiling: 1, Count: 10, Expected: 10, Complete: true},
		{Store: "sqlite", Scenario: "end_to_end", Metric: "deliveries_per_s", Value: 8000, Unit: "dlv/s", OfCeiling: 0.4,
			Target: atLeast(10000), Met: &no, Count: 5, Expected: 5, Complete: true, Note: "one endpoint"},
		{Store: "sqlite", Scenario: "latency", Metric: "p99_ms", Value: 3.2, Unit: "ms", Target: atMost(25), Met: &yes,
			Count: 4, Expected: 5},
	}}
	var b bytes.Buffer
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"QUICK", "Test CPU", "20,000", "≥ 10,000", "≤ 25.0", "NO", "yes", "0.40",
		"4/5 INCOMPLETE", "sqlite end_to_end deliveries_per_s: one endpoint"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		want *bool
	}{
		{"at least met", Result{Value: 10, Target: atLeast(10), Complete: true}, ptr(true)},
		{"at least missed", Result{Value: 9, Target: atLeast(10), Complete: true}, ptr(false)},
		{"at most met", Result{Value: 2, Target: atMost(2), Complete: true}, ptr(true)},
		{"at most missed", Result{Value: 3, Target: atMost(2), Complete: true}, ptr(false)},
		{"incomplete is not judged", Result{Value: 30, Target: atLeast(10)}, nil},
		{"no target", Result{Value: 30, Complete: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.judge()
			if (tt.r.Met == nil) != (tt.want == nil) || (tt.want != nil && *tt.r.Met != *tt.want) {
				t.Errorf("Met = %v, want %v", tt.r.Met, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
