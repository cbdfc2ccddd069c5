package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDBDSN returns AVISO_TEST_MARIADB_DSN, a go-sql-driver/mysql DSN such as
// root@tcp(127.0.0.1:3306)/test, or skips (fails under CI) when it is unset.
func MariaDBDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("AVISO_TEST_MARIADB_DSN")
	if dsn == "" {
		missing(tb, "AVISO_TEST_MARIADB_DSN is not set: set it to a MariaDB DSN, e.g. "+
			"root@tcp(127.0.0.1:3306)/test, to run the MariaDB tests")
	}
	return dsn
}

// MariaDBDatabase creates a fresh database named prefix + random hex on the MariaDB of
// AVISO_TEST_MARIADB_DSN, dropped with everything in it when tb ends, so tests can run in
// parallel on one server. It returns the parsed configuration selecting that database (FormatDSN
// gives its DSN). Skips (fails under CI) without AVISO_TEST_MARIADB_DSN.
func MariaDBDatabase(tb testing.TB, prefix string) *mysql.Config {
	tb.Helper()
	cfg, err := mysql.ParseDSN(MariaDBDSN(tb))
	if err != nil {
		tb.Fatalf("AVISO_TEST_MARIADB_DSN: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	exec := func(stmt string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, stmt)
		return err
	}
	if err := exec("CREATE DATABASE `" + name + "`"); err != nil {
		tb.Fatalf("create MariaDB database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			tb.Errorf("drop MariaDB database %s: %v", name, err)
		}
	})
	out := cfg.Clone()
	out.DBName = name
	return out
}

// MariaDBURL returns a mysql:// URL for cfg (user, password, address and database), the form
// `aviso serve --outbox` takes.
func MariaDBURL(cfg *mysql.Config) string {
	auth := cfg.User
	if cfg.Passwd != "" {
		auth += ":" + cfg.Passwd
	}
	return fmt.Sprintf("mysql://%s@%s/%s", auth, cfg.Addr, cfg.DBName)
}
