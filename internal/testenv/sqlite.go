package testenv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aviso-dev/aviso/sqlite"
)

// SQLite opens a real SQLite store in a fresh file of the test's temporary directory, closed
// when tb ends. Tests use it wherever a store is needed: no mocked database where the real one
// can run.
func SQLite(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "aviso.db"), sqlite.Options{})
	if err != nil {
		tb.Fatalf("open SQLite store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
