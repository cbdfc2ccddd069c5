package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/postgres"
)

func openStore(tb testing.TB) aviso.Store {
	tb.Helper()
	url := testenv.PostgresURL(tb)
	s, err := postgres.Open(context.Background(), url, postgres.Options{Migrate: true, Schema: fmt.Sprintf("servicetest_%d", time.Now().UnixNano())})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
