package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// FuzzVerify feeds arbitrary Standard Webhooks headers and bodies to the verifier: it must never
// panic, must accept what Sign produced for the same input, and must reject any other body.
func FuzzVerify(f *testing.F) {
	f.Add("evt_1", "1772618405", "v1,AAAA", []byte(`{}`))
	f.Add("", "", "", []byte(nil))
	f.Add("evt_1", "-1", "v1,a v1,b v2,c", []byte(`{"type":"x"}`))
	f.Add("evt_1", "99999999999999999999", "v1,", []byte(`x`))
	v := Verifier{Secrets: []string{testSecret}, Now: func() time.Time { return testNow }}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		if err := v.Verify(h, body); err == nil {
			// Only a forgery would pass; with random signatures that is a bug.
			t.Fatalf("Verify accepted id=%q ts=%q sig=%q", id, ts, sig)
		}
		good, err := Sign([]string{testSecret}, id, testNow.Unix(), body)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(HeaderTimestamp, "1772618405")
		h.Set(HeaderSignature, good+" "+sig) // a sender puts at most a few signatures first
		if err := v.Verify(h, body); err != nil && id != "" && !errors.Is(err, ErrNoSignature) {
			t.Fatalf("Verify rejected its own signature: %v", err)
		}
		if id != "" && len(body) > 0 {
			if err := v.Verify(h, append([]byte{' '}, body...)); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify of a changed body = %v, want ErrBadSignature", err)
			}
		}
	})
}

func FuzzVerifyHMACHex(f *testing.F) {
	f.Add(testSecret, []byte(`{"id":"evt_1"}`), "00")
	f.Add("k", []byte(nil), "")
	f.Fuzz(func(t *testing.T, secret string, body []byte, sig string) {
		err := VerifyHMACHex(secret, body, sig)
		if secret == "" {
			if !errors.Is(err, ErrBadSecret) {
				t.Fatalf("empty secret: %v", err)
			}
			return
		}
		good := SignHMACHex(secret, body)
		if (err == nil) != (sig == good || sig == upper(good)) {
			t.Fatalf("VerifyHMACHex(%q) = %v (good %q)", sig, err, good)
		}
		if err := VerifyHMACHex(secret, body, good); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	f.Add(testToken, testToken)
	f.Add(testToken, "")
	f.Add("", "x")
	f.Fuzz(func(t *testing.T, want, got string) {
		err := VerifyToken(want, got)
		if (err == nil) != (want != "" && want == got) {
			t.Fatalf("VerifyToken(%q, %q) = %v", want, got, err)
		}
	})
}

// FuzzBody renders any JSON data in every format: the body is always a JSON object, and it
// parses back to the same event type and the same data.
func FuzzBody(f *testing.F) {
	f.Add("invoice.created", []byte(`{"id":123,"total":1190}`), "REF-1")
	f.Add("ping", []byte(`[]`), "")
	f.Add("a.b.c", []byte(`"<&>"`), "x\u2028")
	f.Add("receipt.paid", []byte(`{"external_reference":"R","id":-1.5e3}`), "")
	f.Fuzz(func(t *testing.T, typ string, data []byte, ref string) {
		if !json.Valid(data) {
			return
		}
		ev := &aviso.Event{ID: testEventID, Type: typ, Data: data, ExternalReference: ref, CreatedAt: testNow}
		if ev.Validate() != nil {
			return
		}
		for _, format := range aviso.Formats() {
			b, err := Body(format, ev)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: body is not a JSON object: %v\n%s", format, err, b)
			}
			got, err := ParseEvent(http.Header{HeaderID: {ev.ID}}, b)
			if err != nil {
				t.Fatalf("%s: ParseEvent: %v\n%s", format, err, b)
			}
			if format != aviso.FormatAlegra && got.Type != typ {
				t.Fatalf("%s: parsed type %q, want %q", format, got.Type, typ)
			}
			if format == aviso.FormatStandard && !sameJSON(t, got.Data, data) {
				t.Fatalf("%s: parsed data %s, want %s", format, got.Data, data)
			}
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"subject":"new-client","message":{"client":{"id":"1"}}}`), "evt_1", "1772618405")
	f.Add([]byte(`{"id":"evt_1","event":"invoice.created","created":1,"data":{"object":{}}}`), "", "")
	f.Add([]byte(`{"type":"x","data":null}`), "", "x")
	f.Fuzz(func(t *testing.T, body []byte, id, ts string) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		ev, err := ParseEvent(h, body)
		if err != nil {
			return
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("ParseEvent succeeded without an id or type: %+v", ev)
		}
		if id != "" && ev.ID != id {
			t.Fatalf("id %q, want the webhook-id header %q", ev.ID, id)
		}
	})
}

func sameJSON(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return mustJSON(tb, x) == mustJSON(tb, y)
}

// FuzzPlainBody checks that the direct rendering of a body is byte for byte json.Marshal's, in
// every format it covers, whenever it applies.
func FuzzPlainBody(f *testing.F) {
	f.Add("evt_1", "invoice.created", "F-1", []byte(`{"id":1,"total":"1.210,00 €"}`), int64(1772618405))
	f.Add("evt_1", "invoice.created", "", []byte(`{"a": [1, 2]}`), int64(0))
	f.Add("evt_<1>", "a&b", "x\"y", []byte(`{"html":"<b>&amp;</b>"}`), int64(-1))
	f.Add("evt_1", "x", "", []byte("\"\u2028\\\"\u2029 \""), int64(1))
	f.Add("evt_1", "x", "ref", []byte(`{"external_reference":"R-9","s":"\\\" {} "}`), int64(1))
	f.Fuzz(func(t *testing.T, id, typ, ref string, data []byte, created int64) {
		if !json.Valid(data) {
			return // every stored event's data is valid JSON
		}
		ev := &aviso.Event{ID: id, Type: typ, ExternalReference: ref, Data: data, CreatedAt: time.Unix(created, 0).UTC()}
		ts := ev.CreatedAt.Format(time.RFC3339Nano)
		for _, format := range []aviso.Format{aviso.FormatStandard, aviso.FormatTusFacturas, aviso.FormatFacturaScripts} {
			got, ok := plainBody(format, ev, ts)
			if !ok {
				continue
			}
			want, err := marshalBody(format, ev, ts)
			if err != nil {
				t.Fatalf("%s: plainBody rendered what json.Marshal rejects (%v): %s", format, err, got)
			}
			if string(got) != string(want) {
				t.Fatalf("%s:\nplain   %s\nmarshal %s", format, got, want)
			}
		}
	})
}
