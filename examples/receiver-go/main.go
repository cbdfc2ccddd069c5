// Command receiver-go is a minimal Aviso webhook receiver built on webhook.Middleware: it
// verifies the Standard Webhooks signature (and, when set, the TusFacturas token and the
// FacturaScripts HMAC), drops retried duplicates, and logs each event.
//
//	AVISO_SECRET=whsec_… [AVISO_OLD_SECRET=whsec_…] [TF_WEBHOOK_TOKEN=…] [ADDR=127.0.0.1:8080] go run ./examples/receiver-go
//
// It needs only the standard library and the webhook package, not the Aviso server.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/aviso-dev/aviso/webhook"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), logger); err != nil {
		logger.Error("receiver", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	var secrets []string
	for _, k := range []string{"AVISO_SECRET", "AVISO_OLD_SECRET"} {
		if s := os.Getenv(k); s != "" {
			secrets = append(secrets, s)
		}
	}
	opts := webhook.MiddlewareOptions{
		Secrets:    secrets,
		Token:      os.Getenv("TF_WEBHOOK_TOKEN"),
		HMACSecret: os.Getenv("AVISO_HMAC_SECRET"), // facturascripts endpoints: the same whsec_… string
		Logger:     logger,
	}
	h, err := webhook.Middleware(opts, func(w http.ResponseWriter, r *http.Request, ev *webhook.ReceivedEvent) {
		logger.InfoContext(r.Context(), "event", "webhook_id", ev.ID, "type", ev.Type, "format", ev.Format,
			"external_reference", ev.ExternalReference, "data_bytes", len(ev.Data))
		// Answer 2xx quickly; do slow work elsewhere. A non-2xx answer makes Aviso retry, and the
		// middleware will then hand the same event to this handler again.
		fmt.Fprintln(w, "OK")
	})
	if err != nil {
		return fmt.Errorf("configure receiver (set AVISO_SECRET): %w", err)
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhook", h)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("listening", "url", "http://"+addr+"/webhook")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
