package aviso_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func TestDurationJSON(t *testing.T) {
	type input struct {
		Schedule []aviso.Duration `json:"retry_schedule"`
		TTL      aviso.Duration   `json:"ttl"`
	}
	tests := []struct {
		body      string
		want      []time.Duration // nil: an error
		field     string
		found     string // the error's Value
		roundTrip string
	}{
		{`{"retry_schedule":["5s","1m30s"]}`, []time.Duration{5 * time.Second, 90 * time.Second}, "", "", `["5s","1m30s"]`},
		{`{"retry_schedule":["5s","soon"]}`, nil, "retry_schedule", `"soon"`, ""},
		{`{"retry_schedule":[5]}`, nil, "retry_schedule", "JSON number", ""},
		{`{"ttl":{"s":1}}`, nil, "ttl", "JSON object", ""},
		{`{"ttl":true}`, nil, "ttl", "JSON boolean", ""},
		{`{"ttl":null}`, nil, "ttl", "JSON null", ""},
	}
	for _, tc := range tests {
		var in input
		err := json.Unmarshal([]byte(tc.body), &in)
		if tc.want == nil {
			var typ *json.UnmarshalTypeError
			if !errors.As(err, &typ) || typ.Field != tc.field || typ.Value != tc.found {
				t.Errorf("%s: error %#v, want an UnmarshalTypeError of field %q having found %s", tc.body, err, tc.field, tc.found)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if got := aviso.Durations(in.Schedule); len(got) != len(tc.want) || got[0] != tc.want[0] || got[1] != tc.want[1] {
			t.Errorf("%s: %v, want %v", tc.body, got, tc.want)
		}
		if b, _ := json.Marshal(in.Schedule); string(b) != tc.roundTrip {
			t.Errorf("%s: marshals back as %s, want %s", tc.body, b, tc.roundTrip)
		}
	}
}

// FuzzDuration: any JSON either reads as a duration that writes back and reads again the same,
// or fails with an UnmarshalTypeError.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"5s"`, `"1h2m3.5s"`, `"-1s"`, `"soon"`, `5`, `null`, `{}`, `""`, `"9999999999h"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d aviso.Duration
		err := d.UnmarshalJSON([]byte(s))
		if err != nil {
			var typ *json.UnmarshalTypeError
			if !errors.As(err, &typ) {
				t.Fatalf("%q: %T %v, want an UnmarshalTypeError", s, err, err)
			}
			return
		}
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back aviso.Duration
		if err := back.UnmarshalJSON(b); err != nil || back != d {
			t.Fatalf("%q → %s → %v, %v; want %v", s, b, back, err, d)
		}
	})
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", time.Hour: "1h", 90 * time.Minute: "1h30m",
		5 * time.Minute: "5m", 25 * time.Second: "25s", time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s"} {
		if got := aviso.Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", time.Duration(d), got, want)
		}
	}
}
