//go:build !linux

package testenv

import (
	"testing"

	"github.com/go-sql-driver/mysql"
)

// DBServer is a database server of a test's own; see dbserver_linux.go. Elsewhere than on Linux
// the tests that need one are skipped (failed under CI).
type DBServer struct {
	Kind string
	Addr string
}

// PostgresServer skips (fails under CI): a private server needs Linux.
func PostgresServer(tb testing.TB) *DBServer {
	tb.Helper()
	missing(tb, "a PostgreSQL server of the test's own needs Linux")
	return nil
}

// MariaDBServer skips (fails under CI): a private server needs Linux.
func MariaDBServer(tb testing.TB) *DBServer {
	tb.Helper()
	missing(tb, "a MariaDB server of the test's own needs Linux")
	return nil
}

func (s *DBServer) URL() string                { return "" }
func (s *DBServer) DSN() string                { return "" }
func (s *DBServer) MySQLConfig() *mysql.Config { return mysql.NewConfig() }
func (s *DBServer) Start(tb testing.TB)        {}
func (s *DBServer) Kill(tb testing.TB)         {}
