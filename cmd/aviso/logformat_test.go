package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestLogFormat: AVISO_LOG_FORMAT=json makes every log line a JSON object; the default is text.
func TestLogFormat(t *testing.T) {
	for _, tc := range []struct {
		format string
		json   bool
	}{{"json", true}, {"JSON", true}, {"", false}, {"text", false}} {
		var stderr bytes.Buffer
		m := NewMain(&bytes.Buffer{}, &stderr, func(k string) string {
			if k == "AVISO_LOG_FORMAT" {
				return tc.format
			}
			return ""
		})
		m.logger().Info("hello", "n", 1)
		var rec map[string]any
		err := json.Unmarshal(stderr.Bytes(), &rec)
		if got := err == nil && rec["msg"] == "hello"; got != tc.json {
			t.Errorf("AVISO_LOG_FORMAT=%q: line %q, JSON %v, want %v", tc.format, stderr.String(), got, tc.json)
		}
	}
}
