package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func TestVerifier(t *testing.T) {
	body := []byte(`{"type":"invoice.created","data":{}}`)
	signed := func(secrets []string, id string, ts int64) http.Header {
		sig, err := Sign(secrets, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", sig)
		return h
	}
	now := testNow.Unix()
	tests := []struct {
		name    string
		secrets []string // the receiver's
		header  http.Header
		body    []byte
		want    error // nil: accepted
	}{
		{"valid", []string{testSecret}, signed([]string{testSecret}, "evt_1", now), body, nil},
		{"rotation new", []string{testSecret}, signed([]string{testSecret, testOldSecret}, "evt_1", now), body, nil},
		{"rotation old", []string{testOldSecret}, signed([]string{testSecret, testOldSecret}, "evt_1", now), body, nil},
		{"receiver holds both", []string{testOldSecret, testSecret}, signed([]string{testSecret}, "evt_1", now), body, nil},
		{"secret without prefix", []string{testSecret[len(SecretPrefix):]}, signed([]string{testSecret}, "evt_1", now), body, nil},
		{"within tolerance", []string{testSecret}, signed([]string{testSecret}, "evt_1", now-299), body, nil},
		{"wrong secret", []string{testOldSecret}, signed([]string{testSecret}, "evt_1", now), body, ErrBadSignature},
		{"tampered body", []string{testSecret}, signed([]string{testSecret}, "evt_1", now), []byte(`{"type":"invoice.paid","data":{}}`), ErrBadSignature},
		{"too old", []string{testSecret}, signed([]string{testSecret}, "evt_1", now-301), body, ErrTimestampTooOld},
		{"future", []string{testSecret}, signed([]string{testSecret}, "evt_1", now+301), body, ErrTimestampTooNew},
		{"no headers", []string{testSecret}, http.Header{}, body, ErrNoSignature},
		{"bad timestamp", []string{testSecret}, func() http.Header {
			h := signed([]string{testSecret}, "evt_1", now)
			h.Set("webhook-timestamp", "yesterday")
			return h
		}(), body, ErrBadTimestamp},
		{"id swapped", []string{testSecret}, func() http.Header {
			h := signed([]string{testSecret}, "evt_1", now)
			h.Set("webhook-id", "evt_2")
			return h
		}(), body, ErrBadSignature},
		{"v2 only", []string{testSecret}, func() http.Header {
			h := signed([]string{testSecret}, "evt_1", now)
			h.Set("webhook-signature", "v2"+h.Get("webhook-signature")[2:])
			return h
		}(), body, ErrBadSignature},
		{"no secrets", nil, signed([]string{testSecret}, "evt_1", now), body, ErrBadSecret},
		{"bad secret", []string{"whsec_%%%"}, signed([]string{testSecret}, "evt_1", now), body, ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Verifier{Secrets: tt.secrets, Now: func() time.Time { return testNow }}
			err := v.Verify(tt.header, tt.body)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyHMACHex(t *testing.T) {
	body := []byte(`{"id":"evt_1","event":"invoice.created"}`)
	good := SignHMACHex(testSecret, body)
	tests := []struct {
		name, secret, sig string
		body              []byte
		want              error
	}{
		{"valid", testSecret, good, body, nil},
		{"upper-case hex", testSecret, upper(good), body, nil},
		{"key is the whole whsec string", testSecret[len(SecretPrefix):], good, body, ErrBadSignature},
		{"tampered", testSecret, good, append([]byte(" "), body...), ErrBadSignature},
		{"not hex", testSecret, "zz" + good[2:], body, ErrBadSignature},
		{"truncated", testSecret, good[:32], body, ErrBadSignature},
		{"missing", testSecret, "", body, ErrNoSignature},
		{"no secret", "", good, body, ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyHMACHex(tt.secret, tt.body, tt.sig)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("VerifyHMACHex = %v, want %v", err, tt.want)
			}
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestVerifyToken(t *testing.T) {
	tests := []struct {
		name, want, got string
		err             error
	}{
		{"match", testToken, testToken, nil},
		{"wrong", testToken, "TOKEN_TF", ErrBadToken},
		{"prefix", testToken, testToken[:5], ErrBadToken},
		{"missing", testToken, "", ErrNoToken},
		{"unconfigured", "", testToken, ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyToken(tt.want, tt.got)
			if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("VerifyToken = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	key, err := SecretKey(a)
	if err != nil || len(key) < 24 {
		t.Fatalf("SecretKey(%q) = %d bytes, %v; want at least 24", a, len(key), err)
	}
	// A new secret signs a request its own verifier accepts.
	ep := testEndpoint(t, aviso.FormatStandard, false)
	ep.Secrets = []aviso.Secret{{Value: a}}
	req, err := Build(ep, testEvent(t, "invoice.created"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	v := Verifier{Secrets: []string{a}, Now: func() time.Time { return testNow }}
	if err := v.Verify(req.Header, req.Body); err != nil {
		t.Fatal(err)
	}
}
