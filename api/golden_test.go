package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGoldenResponses")

// The values of a response that change from run to run, and what stands for them in the golden
// files: IDs keep their prefix, so a golden file still says what kind of ID is where.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b(ten|ep|evt|dlv|att|key)_[0-9A-Z]{26}\b`), "${1}_<id>"},
	{regexp.MustCompile(`\bavk_[A-Za-z0-9_-]{6,}`), "avk_<key>"},
	{regexp.MustCompile(`\bwhsec_[A-Za-z0-9+/=]{20,}`), "whsec_<secret>"},
	{regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`), `"<time>"`},
	{regexp.MustCompile(`"next_cursor":"[^"]+"`), `"next_cursor":"<cursor>"`},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:<port>"},
}

// TestGoldenResponses is the API's contract: a scripted session (tenant, key, endpoint,
// publish, read back, and the usual mistakes) whose answers, status and body with the volatile
// values replaced, must match testdata/golden/<step>.json. A change of a field name, a status or
// an error code fails it; go test ./api -run TestGoldenResponses -update rewrites the files
// after a deliberate change, for review in the diff.
func TestGoldenResponses(t *testing.T) {
	e := newEnv(t)
	e.eventType(t, "invoice.created", invoiceSchema)
	rc := newReceiver(t, 200)

	var key, endpointID, eventID, deliveryID string
	steps := []struct {
		name, method string
		path         func() string
		key          func() string
		body         any
		status       int
		after        func(t *testing.T, body []byte) // reads IDs for later steps
	}{
		{name: "create_tenant", method: "POST", path: lit("/v1/tenants"), key: root(e),
			body: map[string]any{"id": "acme", "name": "ACME S.A.", "metadata": map[string]string{"plan": "pyme"}}, status: 201},
		{name: "create_key", method: "POST", path: lit("/v1/tenants/acme/keys"), key: root(e), status: 201,
			after: func(t *testing.T, b []byte) { key = field(t, b, "key") }},
		{name: "create_endpoint", method: "POST", path: lit("/v1/tenants/acme/endpoints"), key: ptr(&key),
			body: map[string]any{"url": rc.URL + "/hooks", "verify": false, "event_types": []string{"invoice.created"},
				"description": "ERP"}, status: 201,
			after: func(t *testing.T, b []byte) { endpointID = field(t, b, "id") }},
		{name: "get_endpoint", method: "GET", path: func() string { return "/v1/tenants/acme/endpoints/" + endpointID },
			key: ptr(&key), status: 200},
		{name: "publish", method: "POST", path: lit("/v1/tenants/acme/events"), key: ptr(&key),
			body: map[string]any{"type": "invoice.created", "external_reference": "FAC-0001",
				"data": map[string]any{"id": "FAC-0001", "total": 1190}}, status: 202,
			after: func(t *testing.T, b []byte) { eventID = field(t, b, "id") }},
		{name: "publish_batch", method: "POST", path: lit("/v1/tenants/acme/events/batch"), key: ptr(&key),
			body: map[string]any{"events": []any{
				map[string]any{"id": "FAC-0002", "type": "invoice.created", "data": map[string]any{"total": 10}},
				map[string]any{"id": "FAC-0003", "type": "invoice.created", "data": map[string]any{"total": 20}},
			}}, status: 202},
		{name: "error_batch_duplicate", method: "POST", path: lit("/v1/tenants/acme/events/batch"), key: ptr(&key),
			body: map[string]any{"events": []any{
				map[string]any{"id": "FAC-0004", "type": "invoice.created", "data": map[string]any{"total": 10}},
				map[string]any{"id": "FAC-0004", "type": "invoice.created", "data": map[string]any{"total": 10}},
			}}, status: 422},
		{name: "get_event", method: "GET", path: func() string { return "/v1/tenants/acme/events/" + eventID },
			key: ptr(&key), status: 200},
		{name: "event_deliveries", method: "GET", path: func() string { return "/v1/tenants/acme/events/" + eventID + "/deliveries" },
			key: ptr(&key), status: 200,
			after: func(t *testing.T, b []byte) {
				var page struct{ Data []struct{ ID string } }
				if err := json.Unmarshal(b, &page); err != nil || len(page.Data) != 1 {
					t.Fatalf("deliveries %s: %v", b, err)
				}
				deliveryID = page.Data[0].ID
			}},
		{name: "get_delivery", method: "GET", path: func() string { return "/v1/tenants/acme/deliveries/" + deliveryID },
			key: ptr(&key), status: 200},
		{name: "list_events", method: "GET", path: lit("/v1/tenants/acme/events?limit=2"), key: ptr(&key), status: 200},
		{name: "list_deliveries", method: "GET", path: lit("/v1/tenants/acme/deliveries?status=pending&type=invoice.created&external_reference=FAC-0001"),
			key: ptr(&key), status: 200},
		{name: "whoami", method: "GET", path: lit("/v1/key"), key: ptr(&key), status: 200},
		{name: "error_invalid_cursor", method: "GET", path: lit("/v1/tenants/acme/events?after=12"), key: ptr(&key), status: 422},
		{name: "error_unknown_type", method: "POST", path: lit("/v1/tenants/acme/events"), key: ptr(&key),
			body: map[string]any{"type": "invoice.lost", "data": map[string]any{}}, status: 422},
		{name: "error_schema", method: "POST", path: lit("/v1/tenants/acme/events"), key: ptr(&key),
			body: map[string]any{"type": "invoice.created", "data": map[string]any{"total": "mil"}}, status: 422},
		{name: "error_bad_json", method: "POST", path: lit("/v1/tenants/acme/events"), key: ptr(&key),
			body: `{"type": "invoice.created",`, status: 400},
		{name: "error_no_key", method: "GET", path: lit("/v1/tenants/acme/events"), key: lit(""), status: 401},
		{name: "error_other_tenant", method: "GET", path: lit("/v1/tenants/other/events"), key: ptr(&key), status: 404},
		{name: "error_not_found", method: "GET", path: lit("/v1/tenants/acme/events/nope"), key: ptr(&key), status: 404},
		{name: "error_bad_url", method: "POST", path: lit("/v1/tenants/acme/endpoints"), key: ptr(&key),
			body: map[string]any{"url": "ftp://example.com/hook"}, status: 422},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			status, body := e.do(t, st.method, st.path(), st.key(), st.body)
			if status != st.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", st.method, st.path(), status, st.status, body)
			}
			if st.after != nil {
				st.after(t, body)
			}
			checkOpenAPIResponse(t, st.method, st.path(), status, body)
			got := golden(t, status, body)
			file := filepath.Join("testdata", "golden", st.name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s answered, normalised:\n%s\nwant (%s):\n%s", st.method, st.path(), got, file, want)
			}
		})
	}
}

// golden is a response as a golden file holds it: the status, then the body indented, with its
// volatile values replaced.
func golden(t *testing.T, status int, body []byte) []byte {
	t.Helper()
	s := string(body)
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "%d\n", status)
	if err := json.Indent(&out, []byte(strings.TrimSpace(s)), "", "  "); err != nil {
		t.Fatalf("the answer is not JSON: %s", body)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func lit(s string) func() string  { return func() string { return s } }
func ptr(s *string) func() string { return func() string { return *s } }
func root(e *env) func() string   { return func() string { return e.root } }
func field(t *testing.T, b []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	s, _ := m[name].(string)
	if s == "" {
		t.Fatalf("no %q in %s", name, b)
	}
	return s
}
