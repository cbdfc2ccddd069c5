package aviso

import (
	"testing"
	"time"
)

func TestIDFloorCeiling(t *testing.T) {
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"on the millisecond", base},
		{"within the millisecond", base.Add(700 * time.Microsecond)},
		{"last nanosecond of the millisecond", base.Add(time.Millisecond - 1)},
		{"epoch", time.UnixMilli(0)},
		{"zero time", time.Time{}},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			floor := IDFloor(PrefixDelivery, tc.at)
			if len(floor) != len(PrefixDelivery)+26 || floor[:len(PrefixDelivery)] != PrefixDelivery {
				t.Fatalf("IDFloor = %q, want %s and 26 digits", floor, PrefixDelivery)
			}
			ms := tc.at.Truncate(time.Millisecond)
			for range 200 {
				if tc.at.UnixMilli() < 0 {
					if floor != PrefixDelivery+"00000000000000000000000000" {
						t.Fatalf("IDFloor before the epoch = %q, want the lowest ID", floor)
					}
					return
				}
				if id, ceil := NewID(PrefixDelivery, tc.at), IDCeiling(PrefixDelivery, tc.at); id >= ceil || ceil <= floor {
					t.Fatalf("NewID at %v = %q, not before IDCeiling %q (floor %q)", tc.at, id, ceil, floor)
				}
				if id := NewID(PrefixDelivery, ms.Add(time.Millisecond)); id < IDCeiling(PrefixDelivery, tc.at) {
					t.Fatalf("NewID a millisecond later = %q, before IDCeiling", id)
				}
				if id := NewID(PrefixDelivery, tc.at); id < floor {
					t.Fatalf("NewID at %v = %q sorts before IDFloor %q", tc.at, id, floor)
				}
				if id := NewID(PrefixDelivery, ms.Add(time.Millisecond)); id <= floor {
					t.Fatalf("NewID a millisecond later = %q, not after IDFloor %q", id, floor)
				}
				if tc.at.UnixMilli() > 0 {
					if id := NewID(PrefixDelivery, ms.Add(-time.Microsecond)); id >= floor {
						t.Fatalf("NewID just before the millisecond = %q, not before IDFloor %q", id, floor)
					}
				}
			}
		})
	}
}
