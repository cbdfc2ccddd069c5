// Package outboxsql holds the outbox's SQL files of this directory — the aviso_outbox DDL for
// PostgreSQL and MariaDB and the facturascli trigger examples — embedded, so that tools (aviso
// bench) apply exactly the files users read. It is no part of the server.
package outboxsql

import (
	"embed"
	"fmt"
)

//go:embed *.sql
var files embed.FS

// File returns the SQL of one file of this directory, e.g. "postgres.sql" or "mariadb.sql".
func File(name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("outbox SQL %s: %w", name, err)
	}
	return string(b), nil
}
