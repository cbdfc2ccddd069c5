package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// open opens a store on path and closes it when tb ends.
func open(tb testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), path, opts)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) aviso.Store {
		return open(t, filepath.Join(t.TempDir(), "aviso.db"), sqlite.Options{})
	})
}

func BenchmarkStore(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run(sync, func(b *testing.B) {
			storetest.Benchmark(b, func(b *testing.B) aviso.Store {
				return open(b, filepath.Join(b.TempDir(), "aviso.db"), sqlite.Options{Synchronous: sync})
			})
		})
	}
}
