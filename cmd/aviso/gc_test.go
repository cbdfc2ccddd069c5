package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(-1)
	debug.SetGCPercent(orig)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	tests := []struct {
		name    string
		gogc    string
		runtime int // the percent in force before, as the runtime took it from GOGC
		want    int
	}{
		{"GOGC unset: aviso's default", "", 100, gcPercent},
		{"GOGC set: left alone", "150", 150, 150},
		{"GOGC=off: left alone", "off", -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.runtime)
			got := tuneGC(func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			})
			inForce := debug.SetGCPercent(tc.runtime)
			if got != tc.want || inForce != tc.want {
				t.Errorf("tuneGC = %d, in force %d; want %d", got, inForce, tc.want)
			}
		})
	}
}
