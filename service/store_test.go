package service_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
)

// openStore opens a real SQLite store in a fresh file of the test's temporary directory.
func openStore(tb testing.TB) aviso.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "aviso.db"), sqlite.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
