package webhook

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

// The Ed25519 vector: the key of RFC 8032's first test (seed 9d61b19d…, public key d75a9801…)
// signing the Standard Webhooks reference message; the signature was computed with Python's
// cryptography package, independently of this code.
const (
	edSigningKey = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg=="
	edSeedKey    = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=" // the same key as its 32-byte seed
	edPublicKey  = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	edID         = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	edTimestamp  = int64(1614265330)
	edBody       = `{"test": 2432232314}`
	edSignature  = "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw=="
)

func TestEd25519Vector(t *testing.T) {
	for _, key := range []string{edSigningKey, edSeedKey} {
		pub, err := PublicKey(key)
		if err != nil || pub != edPublicKey {
			t.Fatalf("PublicKey(%s) = %q, %v; want %q", key, pub, err, edPublicKey)
		}
		got, err := Sign([]string{key}, edID, edTimestamp, []byte(edBody))
		if err != nil || got != edSignature {
			t.Fatalf("Sign = %q, %v; want %q", got, err, edSignature)
		}
	}
	h := http.Header{}
	h.Set(HeaderID, edID)
	h.Set(HeaderTimestamp, "1614265330")
	v := Verifier{Secrets: []string{edPublicKey}, Now: func() time.Time { return time.Unix(edTimestamp, 0) }}
	tests := []struct {
		name, sig, body string
		want            error
	}{
		{"vector", edSignature, edBody, nil},
		{"beside an unknown v1", "v1,bm9ldHUjKzFob2VudXRob2VodWUzMjRvdWVvdW9ldQo= " + edSignature, edBody, nil},
		{"changed body", edSignature, `{"test": 2432232315}`, ErrBadSignature},
		{"signature as v1", "v1," + strings.TrimPrefix(edSignature, "v1a,"), edBody, ErrBadSignature},
		{"truncated", edSignature[:40], edBody, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.Set(HeaderSignature, tc.sig)
			if err := v.Verify(h, []byte(tc.body)); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// An HMAC secret does not verify a v1a signature, nor a public key a v1 one.
	h.Set(HeaderSignature, edSignature)
	hv := Verifier{Secrets: []string{testSecret}, Now: v.Now}
	if err := hv.Verify(h, []byte(edBody)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("an HMAC verifier on a v1a signature: %v, want ErrBadSignature", err)
	}
	// The signing key is refused as a verifier's key: it must not be handed to receivers.
	sv := Verifier{Secrets: []string{edSigningKey}, Now: v.Now}
	if err := sv.Verify(h, []byte(edBody)); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("a verifier given the whsk_ key: %v, want ErrBadSecret", err)
	}
}

// TestEd25519Build renders a delivery of an ed25519 endpoint mid-change from HMAC: the header
// carries a v1a and a v1 signature, and a verifier holding either the public key or the old
// secret accepts it.
func TestEd25519Build(t *testing.T) {
	key := NewSigningKey()
	pub, err := VerificationKey(key)
	if err != nil || !strings.HasPrefix(pub, PublicKeyPrefix) {
		t.Fatalf("VerificationKey = %q, %v", pub, err)
	}
	if same, _ := VerificationKey(testSecret); same != testSecret {
		t.Fatalf("VerificationKey of an HMAC secret = %q, want the secret", same)
	}
	exp := testNow.Add(time.Hour)
	ep := testEndpoint(t, aviso.FormatStandard, false)
	ep.Signing = aviso.SigningEd25519
	ep.Secrets = []aviso.Secret{{Value: key}, {Value: testSecret, ExpiresAt: &exp}}
	req, err := Build(ep, testEvent(t, "invoice.created"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	sig := req.Header.Get(HeaderSignature)
	if parts := strings.Fields(sig); len(parts) != 2 || !strings.HasPrefix(parts[0], "v1a,") || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("webhook-signature = %q, want a v1a then a v1 signature", sig)
	}
	for _, secrets := range [][]string{{pub}, {testSecret}} {
		v := Verifier{Secrets: secrets, Now: func() time.Time { return testNow }}
		if err := v.Verify(req.Header, req.Body); err != nil {
			t.Errorf("Verify with %v: %v", secrets, err)
		}
	}
	other, _ := PublicKey(NewSigningKey())
	v := Verifier{Secrets: []string{other}, Now: func() time.Time { return testNow }}
	if err := v.Verify(req.Header, req.Body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with another public key: %v, want ErrBadSignature", err)
	}
	// The middleware takes public keys as it takes secrets, and refuses a signing key.
	if _, err := Middleware(MiddlewareOptions{Secrets: []string{pub}}, func(http.ResponseWriter, *http.Request, *ReceivedEvent) {}); err != nil {
		t.Errorf("Middleware with a public key: %v", err)
	}
	if _, err := Middleware(MiddlewareOptions{Secrets: []string{key}}, func(http.ResponseWriter, *http.Request, *ReceivedEvent) {}); err == nil {
		t.Error("Middleware accepts a whsk_ signing key")
	}
}
