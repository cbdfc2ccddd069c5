package server_test

import (
	"strings"
	"testing"

	"github.com/aviso-dev/aviso/server"
)

// FuzzParseSchedule: the --retry-schedule parser never panics; what it accepts is positive
// durations, one per non-empty comma-separated part, that print back to a schedule it reads
// the same.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"5s,25s,125s", "", " 1m , 2m ", "0s", "-5s", "5s,,6s", "soon", "1h2m3s4ms", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := server.ParseSchedule(s)
		if err != nil {
			return
		}
		parts := make([]string, len(ds))
		for i, d := range ds {
			if d <= 0 {
				t.Fatalf("ParseSchedule(%q) accepted %v", s, d)
			}
			parts[i] = d.String()
		}
		back, err := server.ParseSchedule(strings.Join(parts, ","))
		if err != nil || len(back) != len(ds) {
			t.Fatalf("ParseSchedule(%q) = %v; printed back and read: %v, %v", s, ds, back, err)
		}
		for i := range ds {
			if back[i] != ds[i] {
				t.Fatalf("entry %d: %v read back as %v", i, ds[i], back[i])
			}
		}
	})
}
