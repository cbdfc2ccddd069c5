package api_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
	"github.com/aviso-dev/aviso/postgres"
)

// openStore opens a real SQLite store in a fresh file of the test's temporary directory.
func openStore(tb testing.TB) aviso.Store { return testenv.SQLite(tb) }

// stores are the backends the input contract and the isolation walk run on: the answers must
// be the same on both.
var stores = []struct {
	name string
	open func(testing.TB) aviso.Store
}{
	{"sqlite", openStore},
	{"postgres", func(tb testing.TB) aviso.Store {
		tb.Helper()
		url, schema := testenv.PostgresSchema(tb, "aviso_api_")
		s, err := postgres.Open(tb.Context(), url, postgres.Options{Migrate: true, Schema: schema})
		if err != nil {
			tb.Fatalf("open PostgreSQL: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}},
}
