package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/catalog"
)

// Fixed inputs, so that rendered requests are byte-for-byte reproducible.
const (
	testSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	testOldSecret = "whsec_dGhpcyBpcyB0aGUgb2xkIHNlY3JldCAxMjM0NTY="
	testToken     = "tf_7Hq2kP9xWm4Lr8Zc"
	testEventID   = "evt_01JNKQ8W5M3T4XG2H7Y9C6B0AD"
	testExtRef    = "FAC-A-00001-00000123"
)

var testNow = time.Date(2026, 3, 4, 10, 0, 5, 0, time.UTC)

// testEndpoint returns an endpoint in format f with the fixed secret and token, and with an old
// secret still live when rotating.
func testEndpoint(tb testing.TB, f aviso.Format, rotating bool) *aviso.Endpoint {
	tb.Helper()
	ep := &aviso.Endpoint{ID: "ep_test", TenantID: "acme", URL: "http://127.0.0.1/webhook", Format: f,
		TimeoutSeconds: 10, Token: testToken, Secrets: []aviso.Secret{{Value: testSecret}}}
	if rotating {
		exp := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) // live for every test clock
		ep.Secrets = append(ep.Secrets, aviso.Secret{Value: testOldSecret, ExpiresAt: &exp})
	}
	return ep
}

// testEvent returns the fixed event of a catalog type, with its example as data.
func testEvent(tb testing.TB, eventType string) *aviso.Event {
	tb.Helper()
	for _, et := range catalog.EventTypes() {
		if et.Name == eventType {
			return &aviso.Event{ID: testEventID, TenantID: "acme", Type: et.Name, Data: CompactData(et.Example), // as the service stores it
				ExternalReference: testExtRef, CreatedAt: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
		}
	}
	tb.Fatalf("no catalog type %q", eventType)
	return nil
}

// render writes a request as it goes on the wire: request line, headers sorted, blank line, body.
func render(req *Request) []byte {
	var b bytes.Buffer
	b.WriteString("POST /webhook HTTP/1.1\r\n")
	keys := make([]string, 0, len(req.Header))
	for k := range req.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.Header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(req.Body))
	b.Write(req.Body)
	return b.Bytes()
}

// decodeObject decodes a JSON object, failing the test when it is not one.
func decodeObject(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("body is not a JSON object: %v\n%s", err, b)
	}
	return m
}

// header returns the single value stored under the exact key k.
func header(tb testing.TB, h http.Header, k string) string {
	tb.Helper()
	if len(h[k]) != 1 {
		tb.Fatalf("header %q = %q, want exactly one value (keys: %v)", k, h[k], h)
	}
	return h[k][0]
}
