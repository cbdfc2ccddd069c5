package service_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/testenv"
)

// openStore opens a real SQLite store in a fresh file of the test's temporary directory.
func openStore(tb testing.TB) aviso.Store { return testenv.SQLite(tb) }
