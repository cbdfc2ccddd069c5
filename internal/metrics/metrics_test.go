package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatusClass(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{{0, "none"}, {99, "none"}, {200, "2xx"}, {204, "2xx"}, {301, "3xx"}, {429, "4xx"}, {503, "5xx"}, {600, "none"}} {
		if got := StatusClass(tc.code); got != tc.want {
			t.Errorf("StatusClass(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}

// TestMiddleware: requests are counted by the pattern that matched and the status written, and
// a handler that streams can still flush through the wrapper.
func TestMiddleware(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the wrapper: %v", err)
		}
		w.WriteHeader(http.StatusTeapot)
	})
	h := m.Middleware(mux)
	for _, path := range []string{"/things/1", "/things/2", "/nothing"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	want := `
# HELP aviso_http_requests_total HTTP requests served, by matched route pattern and status code.
# TYPE aviso_http_requests_total counter
aviso_http_requests_total{code="200",route="GET /things/{id}"} 2
aviso_http_requests_total{code="404",route="unmatched"} 1
`
	// Flush before WriteHeader commits 200: the status a streaming client sees.
	if err := testutil.CollectAndCompare(m.requests, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
