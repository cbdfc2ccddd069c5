package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testnode"
	"github.com/aviso-dev/aviso/server"
)

const cliKey = "avk_cli_test_root"

// cliNode runs a real node for the CLI tests and returns its URL.
func cliNode(t *testing.T, dir string) *server.Server {
	t.Helper()
	return testnode.Run(t, server.Config{DataDir: dir, RootKey: cliKey, AllowPrivateNetworks: true,
		RetrySchedule: []time.Duration{time.Hour}}).Server
}

// aviso runs the command line args with env and returns stdout, or the error.
func run(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := NewMain(&stdout, &stderr, func(k string) string { return env[k] })
	if err := m.ParseFlags(args); err != nil {
		return stdout.String() + stderr.String(), err
	}
	err := m.Run(context.Background())
	return stdout.String(), err
}

func mustAviso(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, err := run(t, env, args...)
	if err != nil {
		t.Fatalf("aviso %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestCLIVerbs drives the API verbs against a real node: a tenant, an endpoint, a publish, its
// delivery, a retry and a replay, in table and JSON output; errors carry the API's message.
func TestCLIVerbs(t *testing.T) {
	srv := cliNode(t, t.TempDir())
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer recv.Close()
	env := map[string]string{"AVISO_URL": srv.URL(), "AVISO_KEY": cliKey, "AVISO_TENANT": "acme"}

	if out := mustAviso(t, env, "tenants", "create", "--id", "acme", "--name", "ACME S.A.", "--metadata", "plan=pyme"); !strings.Contains(out, "acme") || !strings.HasPrefix(out, "ID") {
		t.Errorf("tenants create, table:\n%s", out)
	}
	var ten aviso.Tenant
	if err := json.Unmarshal([]byte(mustAviso(t, env, "tenants", "get", "acme", "--output", "json")), &ten); err != nil || ten.Name != "ACME S.A." || ten.Metadata["plan"] != "pyme" {
		t.Errorf("tenants get --output json: %+v, %v", ten, err)
	}
	if out := mustAviso(t, env, "tenants", "list"); !strings.Contains(out, "ACME S.A.") {
		t.Errorf("tenants list:\n%s", out)
	}
	if out := mustAviso(t, env, "event-types", "list"); !strings.Contains(out, "invoice.created") {
		t.Errorf("event-types list:\n%s", out)
	}

	var ep aviso.Endpoint
	out := mustAviso(t, env, "endpoints", "create", "--url", recv.URL, "--event-types", "invoice.created", "--no-verify", "--output", "json")
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.URL != recv.URL {
		t.Fatalf("endpoints create: %v\n%s", err, out)
	}
	out = mustAviso(t, env, "endpoints", "update", ep.ID, "--ordering", "external_reference", "--output", "json")
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.Ordering != aviso.OrderingExternalReference {
		t.Fatalf("endpoints update --ordering external_reference: %v\n%s", err, out)
	}
	out = mustAviso(t, env, "endpoints", "update", ep.ID, "--ordering", "none", "--output", "json")
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.Ordering != aviso.OrderingNone {
		t.Fatalf("endpoints update --ordering none: %v\n%s", err, out)
	}
	if out := mustAviso(t, env, "endpoints", "list"); !strings.Contains(out, ep.ID) || !strings.Contains(out, "enabled") {
		t.Errorf("endpoints list:\n%s", out)
	}
	if out := mustAviso(t, env, "endpoints", "disable", ep.ID); !strings.Contains(out, "disabled (manual)") {
		t.Errorf("endpoints disable:\n%s", out)
	}
	mustAviso(t, env, "endpoints", "enable", ep.ID)
	for _, flag := range []string{"--send-traceparent", "--send-traceparent=false"} {
		var up aviso.Endpoint
		out := mustAviso(t, env, "endpoints", "update", ep.ID, flag, "--output", "json")
		if err := json.Unmarshal([]byte(out), &up); err != nil || up.SendTraceparent != (flag == "--send-traceparent") {
			t.Errorf("endpoints update %s: %v\n%s", flag, err, out)
		}
	}

	var ev aviso.Event
	out = mustAviso(t, env, "events", "publish", "--type", "invoice.created", "--id", "FAC-1",
		"--data", `{"id":"FAC-1","total":1190}`, "--output", "json")
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.ID != "FAC-1" {
		t.Fatalf("events publish: %v\n%s", err, out)
	}
	var ds []aviso.Delivery
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds = nil
		if err := json.Unmarshal([]byte(mustAviso(t, env, "deliveries", "list", "--event", ev.ID, "--output", "json")), &ds); err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == aviso.StatusSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery of FAC-1 did not succeed: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	if out := mustAviso(t, env, "deliveries", "get", ds[0].ID); !strings.Contains(out, "succeeded") || !strings.Contains(out, "204") {
		t.Errorf("deliveries get:\n%s", out)
	}
	if out := mustAviso(t, env, "deliveries", "retry", ds[0].ID); !strings.Contains(out, "pending") {
		t.Errorf("deliveries retry:\n%s", out)
	}
	if out := mustAviso(t, env, "endpoints", "replay", ep.ID, "--since", "1h", "--status", "all"); !strings.HasPrefix(out, "QUEUED") {
		t.Errorf("endpoints replay:\n%s", out)
	}

	// Errors: the API's message, and what is missing.
	if _, err := run(t, env, "tenants", "get", "nope"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("tenants get nope: %v", err)
	}
	if _, err := run(t, map[string]string{"AVISO_URL": srv.URL()}, "tenants", "list"); err == nil || !strings.Contains(err.Error(), "AVISO_KEY") {
		t.Errorf("no key: %v", err)
	}
	if _, err := run(t, map[string]string{"AVISO_URL": srv.URL(), "AVISO_KEY": cliKey}, "endpoints", "list"); err == nil || !strings.Contains(err.Error(), "--tenant") {
		t.Errorf("no tenant: %v", err)
	}
}

// TestCLIHelp: every verb's --help shows its usage and an example.
func TestCLIHelp(t *testing.T) {
	for noun, verbs := range nouns {
		for _, v := range verbs {
			out, err := run(t, nil, noun, v.name, "--help")
			if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "Example:\n  aviso "+noun+" "+v.name) {
				t.Errorf("aviso %s %s --help: %v\n%s", noun, v.name, err, out)
			}
		}
		if out, _ := run(t, nil, noun, "--help"); !strings.Contains(out, "Verbs:") {
			t.Errorf("aviso %s --help:\n%s", noun, out)
		}
	}
}

// TestDoctor: a fresh data directory passes; an endpoint on loopback is refused by the SSRF
// guard, and reached when private networks are allowed; a node's store is read and its clock
// compared.
func TestDoctor(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer recv.Close()
	dir := t.TempDir()
	env := map[string]string{"AVISO_DATA_DIR": dir, "AVISO_ROOT_KEY": "avk_x"}
	out := mustAviso(t, env, "doctor")
	for _, check := range []string{"config", "store", "disk"} {
		if !line(out, "ok", check) {
			t.Errorf("doctor on a fresh directory: %s not ok in\n%s", check, out)
		}
	}
	out, err := run(t, env, "doctor", "--endpoint", recv.URL+"/hooks")
	if err == nil || !line(out, "fail", "endpoint") || !strings.Contains(out, "--allow-private-networks") {
		t.Errorf("doctor --endpoint on loopback: %v\n%s", err, out)
	}
	env["AVISO_ALLOW_PRIVATE_NETWORKS"] = "1"
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(recv.URL, "http://"))
	if out := mustAviso(t, env, "doctor", "--endpoint", recv.URL+"/hooks"); !line(out, "ok", "endpoint") || !strings.Contains(out, "127.0.0.1:"+port) {
		t.Errorf("doctor --endpoint, private networks allowed:\n%s", out)
	}
	if _, err := run(t, map[string]string{"AVISO_DATA_DIR": dir, "AVISO_RETRY_SCHEDULE": "5s,soon"}, "doctor"); err == nil {
		t.Error("doctor passed a retry schedule that does not parse")
	}

	ndir := t.TempDir()
	srv := cliNode(t, ndir) // its store: a data directory with aviso.db
	out = mustAviso(t, map[string]string{"AVISO_DATA_DIR": ndir, "AVISO_URL": srv.URL()}, "doctor")
	if !strings.Contains(out, "migrations applied, integrity ok") || !line(out, "ok", "clock") {
		t.Errorf("doctor on a node's data directory:\n%s", out)
	}
}

// line reports whether doctor's output has a line for check with status.
func line(out, status, check string) bool {
	return regexp.MustCompile(`(?m)^` + status + `\s+` + check + `\s`).MatchString(out)
}
