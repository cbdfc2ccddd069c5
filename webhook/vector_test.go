package webhook

import (
	"net/http"
	"testing"
	"time"
)

// TestStandardWebhooksVector checks Sign and Verifier against the test vector published with the
// Standard Webhooks reference libraries.
func TestStandardWebhooksVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = int64(1614265330)
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	got, err := Sign([]string{secret}, id, ts, []byte(body))
	if err != nil || got != want {
		t.Fatalf("Sign = %q, %v; want %q", got, err, want)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bm9ldHUjKzFob2VudXRob2VodWUzMjRvdWVvdW9ldQo= "+want)
	v := Verifier{Secrets: []string{secret}, Now: func() time.Time { return time.Unix(ts, 0) }}
	if err := v.Verify(h, []byte(body)); err != nil {
		t.Fatalf("Verify rejects the reference vector: %v", err)
	}
	if err := v.Verify(h, []byte(`{"test": 2432232315}`)); err == nil {
		t.Fatal("Verify accepts a changed body")
	}
}
