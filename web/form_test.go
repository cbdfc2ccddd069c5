package web

import (
	"strings"
	"testing"
	"time"
)

func TestEndpointFormParsed(t *testing.T) {
	tests := []struct {
		name      string
		form      endpointForm
		wantField string // "" when the form must parse
	}{
		{"empty", endpointForm{}, ""},
		{"headers and schedule", endpointForm{Headers: "X-A: 1\r\n\nX-B:two: parts\n", Retry: "5s, 1m 2h", Timeout: "7"}, ""},
		{"header without colon", endpointForm{Headers: "X-A 1"}, "headers"},
		{"header without name", endpointForm{Headers: ": v"}, "headers"},
		{"bad timeout", endpointForm{Timeout: "ten"}, "timeout_seconds"},
		{"bad duration", endpointForm{Retry: "5s, soon"}, "retry_schedule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, timeout, retry, _, err := tt.form.parsed()
			if tt.wantField != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantField) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "headers and schedule" {
				if h["X-A"] != "1" || h["X-B"] != "two: parts" || len(h) != 2 || timeout != 7 ||
					len(retry) != 3 || time.Duration(retry[2]) != 2*time.Hour {
					t.Errorf("parsed headers %v timeout %d retry %v", h, timeout, retry)
				}
			}
		})
	}
}

func FuzzEndpointFormParsed(f *testing.F) {
	f.Add("X-A: 1\nX-B: 2", "5s, 25s", "10")
	f.Add(":", ",,", "-1")
	f.Fuzz(func(t *testing.T, headers, retry, timeout string) {
		h, _, rs, _, err := endpointForm{Headers: headers, Retry: retry, Timeout: timeout}.parsed()
		if err != nil {
			return
		}
		for k := range h {
			if strings.TrimSpace(k) != k || k == "" || strings.Contains(k, "\n") {
				t.Fatalf("header name %q not trimmed", k)
			}
		}
		if len(rs) > strings.Count(retry, "")-1 {
			t.Fatalf("%d durations from %q", len(rs), retry)
		}
	})
}
