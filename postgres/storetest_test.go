package postgres_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/storetest"
)

// TestConformance runs the shared suite; every subtest gets a schema of its own, so they run in
// parallel on one database.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, func(t *testing.T) aviso.Store { return openStore(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) aviso.Store { return openStore(b) })
}
