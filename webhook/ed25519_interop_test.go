package webhook

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
)

// verifyV1a is a receiver outside Go: Python's cryptography checks the v1a signatures of a
// request against a whpk_ key, as the Standard Webhooks specification defines them. It prints
// "ok" when one verifies.
const verifyV1a = `
import base64, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.exceptions import InvalidSignature
m = json.load(sys.stdin)
key = Ed25519PublicKey.from_public_bytes(base64.b64decode(m["key"][len("whpk_"):]))
msg = (m["id"] + "." + m["timestamp"] + ".").encode() + m["body"].encode()
for sig in m["signature"].split():
    version, _, b64 = sig.partition(",")
    if version != "v1a":
        continue
    try:
        key.verify(base64.b64decode(b64), msg)
        print("ok")
        break
    except InvalidSignature:
        pass
else:
    print("no")
`

// TestEd25519Interop renders a delivery of an Ed25519 endpoint and has Python verify it with the
// public key the secret route would show; a tampered body and another key are refused.
func TestEd25519Interop(t *testing.T) {
	python := testenv.PythonWith(t, "cryptography")
	key := NewSigningKey()
	pub, _ := PublicKey(key)
	other, _ := PublicKey(NewSigningKey())
	ep := testEndpoint(t, aviso.FormatStandard, false)
	ep.Signing, ep.Secrets = aviso.SigningEd25519, []aviso.Secret{{Value: key}}
	req, err := Build(ep, testEvent(t, "invoice.created"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, body, want string
	}{
		{"public key", pub, string(req.Body), "ok"},
		{"tampered body", pub, strings.Replace(string(req.Body), "invoice", "invoicE", 1), "no"},
		{"another key", other, string(req.Body), "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, _ := json.Marshal(map[string]string{"key": tc.key, "id": req.Header.Get(HeaderID),
				"timestamp": req.Header.Get(HeaderTimestamp), "signature": req.Header.Get(HeaderSignature), "body": tc.body})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "-c", verifyV1a)
			cmd.Stdin = strings.NewReader(string(in))
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != tc.want {
				t.Fatalf("python: %v %q, want %q", err, out, tc.want)
			}
		})
	}
}
