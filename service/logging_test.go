package service_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/service"
)

// TestLogsNoURLSecrets checks that an endpoint URL is logged without its query string, where
// receivers put tokens (issue 19): the refused handshake logs the URL at info level.
func TestLogsNoURLSecrets(t *testing.T) {
	ctx := context.Background()
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer rc.Close()
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := openStore(t)
	disp, err := dispatch.New(dispatch.Config{Store: store, AllowPrivateNetworks: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer disp.Close()
	svc, err := service.New(service.Config{Store: store, Sender: disp, AllowPrivateNetworks: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	root := aviso.Principal{KeyID: aviso.RootKeyID}
	if _, err := svc.CreateTenant(ctx, root, service.TenantInput{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreateEndpoint(ctx, root, "acme", service.EndpointInput{URL: rc.URL + "/hook?token=s3cr3t-value#frag-s3cr3t"})
	if aviso.ErrorField(err) != "url" {
		t.Fatalf("CreateEndpoint = %v, want the handshake refused", err)
	}
	out := logs.String()
	if !strings.Contains(out, "handshake refused") || !strings.Contains(out, rc.URL+"/hook") {
		t.Fatalf("the refusal was not logged with the URL's path:\n%s", out)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Fatalf("the log holds the URL's secret:\n%s", out)
	}
}
