package requestid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"abc-123", true}, {"0f3c:9a/x_y.z", true}, {strings.Repeat("a", 128), true},
		{"", false}, {strings.Repeat("a", 129), false}, {"has space", false}, {"tab\there", false},
		{"new\nline", false}, {"ñ", false}, {"\x7f", false},
	} {
		if got := Valid(tc.id); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

// TestMiddlewareAndHandler: the id reaches the handler's context, the response and the log
// records made with that context, through loggers derived with With and WithGroup too.
func TestMiddlewareAndHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "inside")
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(Header, "abc-1")
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get(Header); got != "abc-1" {
		t.Errorf("response X-Request-Id %q, want abc-1", got)
	}
	var r map[string]any
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r["request_id"] != "abc-1" || r["component"] != "test" {
		t.Errorf("log record %v: want request_id abc-1 and component test", r)
	}
	buf.Reset()
	log.InfoContext(context.Background(), "outside")
	if strings.Contains(buf.String(), "request_id") {
		t.Errorf("a record without a request context has a request_id: %s", buf.String())
	}
	if a, b := New(), New(); a == b || !Valid(a) || len(a) != 24 {
		t.Errorf("New() = %q, %q: want distinct valid 24-character ids", a, b)
	}
}
