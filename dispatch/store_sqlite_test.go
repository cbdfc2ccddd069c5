package dispatch_test

import (
	"path/filepath"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
)

// sqliteBackend runs the engine on SQLite, each test in a file of its own temporary directory.
var sqliteBackend = backend{
	name: "sqlite",
	newKey: func(tb testing.TB) string {
		return filepath.Join(tb.TempDir(), "aviso.db")
	},
	open: func(tb testing.TB, path string) aviso.Store {
		tb.Helper()
		s, err := sqlite.Open(tb.Context(), path, sqlite.Options{})
		if err != nil {
			tb.Fatalf("open sqlite: %v", err)
		}
		return closeAtEnd(tb, s)
	},
}
