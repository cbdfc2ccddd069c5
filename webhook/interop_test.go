package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
)

// TestNodeStandardWebhooks verifies requests rendered by Build, in every format and signed with
// two live secrets, with the standardwebhooks npm package: either secret of the rotation is
// accepted, a tampered body and a wrong secret are rejected.
func TestNodeStandardWebhooks(t *testing.T) {
	node := testenv.Program(t, "node")
	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		npm := testenv.Program(t, "npm")
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	now := time.Now() // the package checks the timestamp against its own clock
	for _, f := range aviso.Formats() {
		req, err := Build(testEndpoint(t, f, true), testEvent(t, "invoice.created"), now)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, secret string
			body         []byte
			ok           bool
		}{
			{"new secret", testSecret, req.Body, true},
			{"old secret", testOldSecret, req.Body, true},
			{"tampered body", testSecret, bytes.Replace(req.Body, []byte("123"), []byte("124"), 1), false},
			{"wrong secret", NewSecret(), req.Body, false},
		}
		for _, tt := range tests {
			t.Run(string(f)+"/"+tt.name, func(t *testing.T) {
				headers := map[string]string{}
				for k, v := range req.Header {
					headers[strings.ToLower(k)] = v[0]
				}
				in, _ := json.Marshal(map[string]any{"secret": tt.secret, "headers": headers, "body": string(tt.body)})
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, node, "verify.js")
				cmd.Dir = dir
				cmd.Stdin = bytes.NewReader(in)
				out, err := cmd.Output()
				if tt.ok && (err != nil || !strings.HasPrefix(string(out), "ok")) {
					t.Fatalf("standardwebhooks rejected Aviso's request: %v: %s", err, out)
				}
				if !tt.ok && (err == nil || !strings.HasPrefix(string(out), "rejected")) {
					t.Fatalf("standardwebhooks accepted a bad request: %s", out)
				}
			})
		}
	}
}

// TestPythonHMAC checks the facturascripts X-Webhook-Signature against Python's hmac, which
// computes what PHP's hash_hmac('sha256', $payload, $secret) does.
func TestPythonHMAC(t *testing.T) {
	python := testenv.Program(t, "python3")
	req := testRequest(t, aviso.FormatFacturaScripts, "invoice.created")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c",
		"import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())",
		testSecret)
	cmd.Stdin = bytes.NewReader(req.Body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := header(t, req.Header, HMACHeader), strings.TrimSpace(string(out)); got != want {
		t.Fatalf("X-Webhook-Signature = %s, Python's hmac = %s", got, want)
	}
}

// TestTusFacturasReceivers runs the receivers of the TusFacturas document (Flask and Express,
// examples/tusfacturas-*) on 127.0.0.1 and posts them requests rendered by Build: 200 with the
// endpoint's token, reaching the document's lookup function with the external_reference, and 403
// with a wrong token.
func TestTusFacturasReceivers(t *testing.T) {
	for _, rc := range testenv.TusFacturasReceivers() {
		t.Run(rc.Name, func(t *testing.T) {
			url, consulted := rc.Start(t, testToken)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			t.Run("right token", func(t *testing.T) {
				req := testRequest(t, aviso.FormatTusFacturas, "invoice.created")
				status, body := post(t, url, req)
				if status != 200 || body != "OK" {
					t.Fatalf("got %d %q, want 200 OK", status, body)
				}
				select {
				case ref := <-consulted:
					if ref != testExtRef {
						t.Fatalf("looked up %q, want %q", ref, testExtRef)
					}
				case <-ctx.Done():
					t.Fatal("the receiver never looked the external_reference up")
				}
			})
			t.Run("wrong token", func(t *testing.T) {
				req := testRequest(t, aviso.FormatTusFacturas, "invoice.created")
				req.Header[TokenHeader] = []string{"TOKEN_TF"}
				status, body := post(t, url, req)
				if status != 403 || !strings.Contains(body, "El Token recibido no coincide") {
					t.Fatalf("got %d %q, want 403", status, body)
				}
			})
		})
	}
}
