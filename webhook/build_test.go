package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var goldenTypes = []string{"invoice.created", "invoice.paid", "customer.created", "product.updated", "receipt.paid"}

// TestGolden pins the exact bytes and headers of every format for a few catalog examples.
// Run `go test ./webhook -run TestGolden -update` after an intended change, and review the diff.
func TestGolden(t *testing.T) {
	for _, f := range aviso.Formats() {
		for _, typ := range goldenTypes {
			t.Run(string(f)+"/"+typ, func(t *testing.T) {
				req, err := Build(testEndpoint(t, f, false), testEvent(t, typ), testNow)
				if err != nil {
					t.Fatal(err)
				}
				got := render(req)
				path := filepath.Join("testdata", "golden", string(f), typ+".http")
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("request differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", path, got, want)
				}
			})
		}
	}
}

func TestBuildFormats(t *testing.T) {
	ev := testEvent(t, "invoice.created")
	tests := []struct {
		format aviso.Format
		check  func(t *testing.T, req *Request, body map[string]any)
	}{
		{aviso.FormatStandard, func(t *testing.T, req *Request, body map[string]any) {
			if body["type"] != "invoice.created" || body["id"] != testEventID || body["external_reference"] != testExtRef ||
				body["timestamp"] != "2026-03-04T10:00:00Z" || body["data"] == nil {
				t.Errorf("standard body = %v", body)
			}
		}},
		{aviso.FormatAlegra, func(t *testing.T, req *Request, body map[string]any) {
			msg, _ := body["message"].(map[string]any)
			inv, _ := msg["invoice"].(map[string]any)
			if body["subject"] != "new-invoice" || inv["id"] != "123" || len(body) != 2 || len(msg) != 1 {
				t.Errorf("alegra body = %v", body)
			}
		}},
		{aviso.FormatFacturaScripts, func(t *testing.T, req *Request, body map[string]any) {
			data, _ := body["data"].(map[string]any)
			obj, _ := data["object"].(map[string]any)
			if body["id"] != testEventID || body["event"] != "invoice.created" ||
				body["created"] != float64(ev.CreatedAt.Unix()) || obj["id"] != "123" {
				t.Errorf("facturascripts body = %v", body)
			}
			if err := VerifyHMACHex(testSecret, req.Body, header(t, req.Header, HMACHeader)); err != nil {
				t.Errorf("X-Webhook-Signature: %v", err)
			}
		}},
		{aviso.FormatTusFacturas, func(t *testing.T, req *Request, body map[string]any) {
			if body["external_reference"] != testExtRef || body["type"] != "invoice.created" {
				t.Errorf("tusfacturas body = %v", body)
			}
			if got := header(t, req.Header, "TF-WebhookToken"); got != testToken {
				t.Errorf("TF-WebhookToken = %q, want %q", got, testToken)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			req, err := Build(testEndpoint(t, tt.format, true), ev, testNow)
			if err != nil {
				t.Fatal(err)
			}
			// The Standard Webhooks headers are in every format, signed with both live secrets.
			if got := header(t, req.Header, HeaderID); got != testEventID {
				t.Errorf("webhook-id = %q", got)
			}
			if got := header(t, req.Header, HeaderTimestamp); got != "1772618405" {
				t.Errorf("webhook-timestamp = %q", got)
			}
			if sigs := strings.Fields(header(t, req.Header, HeaderSignature)); len(sigs) != 2 {
				t.Errorf("webhook-signature has %d signatures, want 2 (rotation)", len(sigs))
			}
			if header(t, req.Header, "Content-Type") != "application/json" || header(t, req.Header, "User-Agent") != aviso.UserAgent {
				t.Errorf("headers = %v", req.Header)
			}
			for _, s := range []string{testSecret, testOldSecret} {
				v := Verifier{Secrets: []string{s}, Now: func() time.Time { return testNow }}
				if err := v.Verify(req.Header, req.Body); err != nil {
					t.Errorf("verify with one secret of the rotation: %v", err)
				}
			}
			tt.check(t, req, decodeObject(t, req.Body))
			got, err := ParseEvent(req.Header, req.Body)
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if got.ID != ev.ID || got.Type != ev.Type || got.Format != tt.format || !got.Timestamp.Equal(testNow.Truncate(time.Second)) {
				t.Errorf("ParseEvent = %+v", got)
			}
			var a, b any
			_ = json.Unmarshal(ev.Data, &a)
			_ = json.Unmarshal(got.Data, &b)
			if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
				t.Errorf("parsed data = %s, want %s", jb, ja)
			}
		})
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestBuildCustomHeadersAndErrors(t *testing.T) {
	ep := testEndpoint(t, aviso.FormatStandard, false)
	ep.Headers = map[string]string{"X-Tenant": "acme"}
	req, err := Build(ep, testEvent(t, "receipt.paid"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("X-Tenant") != "acme" {
		t.Errorf("custom header missing: %v", req.Header)
	}
	t.Run("no live secret", func(t *testing.T) {
		ep := testEndpoint(t, aviso.FormatStandard, false)
		past := testNow.Add(-time.Hour)
		ep.Secrets[0].ExpiresAt = &past
		if _, err := Build(ep, testEvent(t, "receipt.paid"), testNow); err == nil {
			t.Fatal("Build signed with an expired secret")
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		ep := testEndpoint(t, "xml", false)
		if _, err := Build(ep, testEvent(t, "receipt.paid"), testNow); err == nil {
			t.Fatal("Build accepted an unknown format")
		}
	})
	t.Run("alegra data not JSON", func(t *testing.T) {
		ev := testEvent(t, "receipt.paid")
		ev.Data = json.RawMessage(`{"id":`)
		if _, err := Body(aviso.FormatAlegra, ev); err == nil {
			t.Fatal("Body rendered invalid data")
		}
	})
}

func TestAlegraSubject(t *testing.T) {
	tests := []struct{ typ, subject, noun, back string }{
		{"invoice.created", "new-invoice", "invoice", "invoice.created"},
		{"invoice.updated", "edit-invoice", "invoice", "invoice.updated"},
		{"invoice.deleted", "delete-invoice", "invoice", "invoice.deleted"},
		{"customer.created", "new-client", "client", "customer.created"},
		{"customer.updated", "edit-client", "client", "customer.updated"},
		{"product.deleted", "delete-item", "item", "product.deleted"},
		{"invoice.paid", "paid-invoice", "invoice", "invoice.paid"},
		{"receipt.paid", "paid-receipt", "receipt", "receipt.paid"},
		{"invoice.payment.failed", "payment.failed-invoice", "invoice", "invoice.payment.failed"},
		{"ping", "ping", "ping", "ping"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			s, n := AlegraSubject(tt.typ)
			if s != tt.subject || n != tt.noun {
				t.Errorf("AlegraSubject = (%q, %q), want (%q, %q)", s, n, tt.subject, tt.noun)
			}
			if back := EventTypeFromAlegra(s); back != tt.back {
				t.Errorf("EventTypeFromAlegra(%q) = %q, want %q", s, back, tt.back)
			}
		})
	}
}

func TestStringifyID(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"number", `{"id": 774, "name": "x"}`, `{"id":"774","name":"x"}`},
		{"negative last", `{"a":{"id":1},"id":-5}`, `{"a":{"id":1},"id":"-5"}`},
		{"string kept", `{"id":"774"}`, `{"id":"774"}`},
		{"nested only", `{"a":{"id":1}}`, `{"a":{"id":1}}`},
		{"not an object", `[1,2]`, `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stringifyID(json.RawMessage(tt.in))
			if err != nil || string(got) != tt.want {
				t.Errorf("stringifyID(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestTusFacturasExternalReference(t *testing.T) {
	ev := testEvent(t, "receipt.paid")
	tests := []struct{ name, ref, data, want string }{
		{"from event", "REF-1", `{"external_reference":"DATA-1"}`, "REF-1"},
		{"from data", "", `{"external_reference":"DATA-1"}`, "DATA-1"},
		{"absent", "", `{"x":1}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev.ExternalReference, ev.Data = tt.ref, json.RawMessage(tt.data)
			b, err := Body(aviso.FormatTusFacturas, ev)
			if err != nil {
				t.Fatal(err)
			}
			m := decodeObject(t, b)
			if got, ok := m["external_reference"]; !ok || got != tt.want {
				t.Errorf("external_reference = %v (present %v), want %q", got, ok, tt.want)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	for _, f := range aviso.Formats() {
		t.Run(string(f), func(t *testing.T) {
			req, err := HandshakeRequest(testEndpoint(t, f, false), testNow)
			if err != nil {
				t.Fatal(err)
			}
			v := Verifier{Secrets: []string{testSecret}, Now: func() time.Time { return testNow }}
			if err := v.Verify(req.Header, req.Body); err != nil {
				t.Errorf("handshake is not signed: %v", err)
			}
			if f == aviso.FormatAlegra {
				if len(req.Body) != 0 || req.Header.Get("Content-Type") != "" {
					t.Errorf("alegra handshake: body %q, content-type %q; want an empty POST", req.Body, req.Header.Get("Content-Type"))
				}
				return
			}
			ev, err := ParseEvent(req.Header, req.Body)
			if err != nil || ev.Type != PingType || !strings.HasPrefix(ev.ID, aviso.PrefixEvent) {
				t.Errorf("handshake event = %+v, %v; want a ping", ev, err)
			}
		})
	}
}

func TestParseEventErrors(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not json", `nope`},
		{"array", `[]`},
		{"no type", `{"id":"evt_1","data":{}}`},
		{"no id", `{"type":"invoice.created","data":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ev, err := ParseEvent(nil, []byte(tt.body)); err == nil {
				t.Errorf("ParseEvent(%s) = %+v, want an error", tt.body, ev)
			}
		})
	}
	if _, err := ParseEvent(nil, nil); errors.Is(err, nil) {
		t.Error("ParseEvent of an empty body succeeded")
	}
}

// TestPlainBodyApplies checks which bodies are written directly (the usual ones) and which are
// left to json.Marshal, and that both give the same bytes.
func TestPlainBodyApplies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ref   string
		data  string
		plain bool
	}{
		{"compact data with spaces and accents in strings", "F-0001", `{"cliente":"José Pérez","total":"1.210,00 €"}`, true},
		{"no external reference", "", `[1,{"a":null}]`, true},
		{"escaped quote in data", "", `{"s":"a \" b"}`, true},
		{"whitespace between tokens", "", `{"a": 1}`, false},
		{"html in data", "", `{"nota":"<b>"}`, false},
		{"ampersand in reference", "A&B", `{}`, false},
		{"non-ASCII reference", "Nº1", `{}`, false},
		{"line separator in data", "", "\"\u2028\"", false},
		{"no data", "", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &aviso.Event{ID: "evt_1", Type: "invoice.created", ExternalReference: tc.ref,
				Data: []byte(tc.data), CreatedAt: testNow}
			ts := testNow.UTC().Format(time.RFC3339Nano)
			got, ok := plainBody(aviso.FormatStandard, ev, ts)
			if ok != tc.plain {
				t.Fatalf("plainBody ok = %v, want %v", ok, tc.plain)
			}
			want, err := marshalBody(aviso.FormatStandard, ev, ts)
			if ok && (err != nil || string(got) != string(want)) {
				t.Fatalf("plain %s, marshal %s (%v)", got, want, err)
			}
			body, err := Body(aviso.FormatStandard, ev)
			if string(body) != string(want) || (err == nil) != (want != nil) {
				t.Fatalf("Body = %s, %v; want %s", body, err, want)
			}
		})
	}
}

func TestCompactData(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{"{\n  \"nombre\": \"José  Pérez\",\t\"items\": [ 1, 2 ]\r\n}", `{"nombre":"José  Pérez","items":[1,2]}`},
		{`{"s":"a \" b"}`, `{"s":"a \" b"}`},
		{` "x" `, `"x"`},
		{`{"html":"<b>"}`, `{"html":"<b>"}`}, // not escaped: stored as sent
	} {
		if got := string(CompactData([]byte(tc.in))); got != tc.want {
			t.Errorf("CompactData(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
