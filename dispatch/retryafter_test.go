package dispatch

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"spaces", "  7 ", 7 * time.Second},
		{"capped", "86400", aviso.MaxRetryAfter},
		{"overflow", "99999999999999999999999", aviso.MaxRetryAfter},
		{"negative", "-5", 0},
		{"fraction", "1.5", 0},
		{"junk after digits", "12abc", 0},
		{"http date", "Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"http date in the past", "Sun, 01 Mar 2026 11:00:00 GMT", 0},
		{"http date far ahead", "Mon, 02 Mar 2026 12:00:00 GMT", aviso.MaxRetryAfter},
		{"rfc850 date", "Sunday, 01-Mar-26 12:01:00 GMT", time.Minute},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "Sun, 01 Mar 2026 12:00:30 GMT", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseRetryAfter(s, now)
		if got < 0 || got > aviso.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %s, outside [0, %s]", s, got, aviso.MaxRetryAfter)
		}
	})
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name    string
		seconds int
		want    time.Duration
	}{
		{"unset is the default", 0, aviso.DefaultTimeoutSeconds * time.Second},
		{"own", 3, 3 * time.Second},
		{"capped", 300, aviso.MaxTimeoutSeconds * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Timeout(&aviso.Endpoint{TimeoutSeconds: tt.seconds}); got != tt.want {
				t.Errorf("Timeout(%d s) = %s, want %s", tt.seconds, got, tt.want)
			}
		})
	}
}

// TestHoldCap checks that a slow endpoint may hold no more claims than it can attempt in half a
// lease (and in practice about a second's work), that a fast one may hold two claim batches, and
// that an endpoint not measured yet holds a quarter batch.
func TestHoldCap(t *testing.T) {
	d := &Dispatcher{cfg: Config{Lease: 2 * time.Minute, PerEndpoint: 8, ClaimBatch: 256}}
	tests := []struct {
		name    string
		latency time.Duration
		want    int
	}{
		{"not measured yet", 0, 64},
		{"fast", time.Millisecond, 512},
		{"ten milliseconds", 10 * time.Millisecond, 512},
		{"hundred milliseconds", 100 * time.Millisecond, 80},
		{"one second timeouts", time.Second, 16},
		{"ten second timeouts", 10 * time.Second, 16},
		{"slower than half a lease", 90 * time.Second, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.holdCap(&endpointQueue{latency: tt.latency}); got != tt.want {
				t.Errorf("holdCap(latency %s) = %d, want %d", tt.latency, got, tt.want)
			}
			if got := d.holdCap(&endpointQueue{latency: tt.latency}); time.Duration(got/d.cfg.PerEndpoint)*tt.latency > d.cfg.Lease/2 && got > 2*d.cfg.PerEndpoint {
				t.Errorf("holdCap(latency %s) = %d: cannot be attempted within half a lease", tt.latency, got)
			}
		})
	}
}

// TestPaceRule checks the pace's arithmetic: whole-microsecond intervals no shorter than the
// rate allows, the burst and hold of a rate, a slot too late dropped rather than used, and how
// a changed rate_limit applies to a pace slowed or not.
func TestPaceRule(t *testing.T) {
	for _, tt := range []struct {
		rate     float64
		interval time.Duration
		burst    int
		hold     int
	}{
		{1, time.Second, 1, 2},
		{3, 333334 * time.Microsecond, 1, 4},
		{100, 10 * time.Millisecond, 5, 105},
		{10000, 100 * time.Microsecond, 500, 10500},
	} {
		p := &pace{rate: tt.rate}
		if got := p.interval(); got != tt.interval || got < time.Duration(float64(time.Second)/tt.rate) {
			t.Errorf("rate %v: interval %s, want %s", tt.rate, got, tt.interval)
		}
		if got := p.burst(); got != tt.burst {
			t.Errorf("rate %v: burst %d, want %d", tt.rate, got, tt.burst)
		}
		if got := p.holdCap(); got != tt.hold {
			t.Errorf("rate %v: hold %d, want %d", tt.rate, got, tt.hold)
		}
	}

	now := time.Now()
	p := &pace{rate: 10, slots: []time.Time{now.Add(-time.Second), now.Add(-paceLate / 2), now.Add(time.Second)}}
	if !p.take(now) || len(p.slots) != 1 {
		t.Fatalf("take: the slot just due not used, or the stale one kept: %v", p.slots)
	}
	if p.take(now) {
		t.Fatal("take used a slot still to come")
	}

	q := &endpointQueue{}
	if q.setLimit(0) || q.pace != nil {
		t.Fatal("an endpoint without a limit is paced")
	}
	if !q.setLimit(50) || q.pace.rate != 50 || q.pace.ceiling != 50 {
		t.Fatalf("limit 50: %+v", q.pace)
	}
	q.pace.rate, q.pace.slowedAt = 20, now // slowed
	if !q.setLimit(10) || q.pace.rate != 10 || q.pace.ceiling != 10 {
		t.Fatalf("slowed to 20, then limited to 10: %+v", q.pace)
	}
	if !q.setLimit(0) || q.pace == nil {
		t.Fatal("a slowed endpoint whose limit is removed stops being paced before it recovers")
	}
	q.pace.slowedAt = time.Time{}
	q.pace.limit = 5 // recovered; the limit now removed
	if q.setLimit(0) || q.pace != nil {
		t.Fatal("an endpoint not slowed whose limit is removed is still paced")
	}
}
