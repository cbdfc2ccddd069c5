package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/aviso-dev/aviso/storecopy"
)

// parseMigrateStore reads the flags of `aviso migrate-store`, which copies an SQLite store into
// PostgreSQL (see package storecopy). Stop the node that uses the SQLite file first: what it
// accepts during the copy stays behind.
func (m *Main) parseMigrateStore(args []string) error {
	fs := m.flagSet("migrate-store")
	from := fs.String("from", filepath.Join(m.envString("AVISO_DATA_DIR", "./aviso-data"), "aviso.db"), "the SQLite file to copy (default: aviso.db in AVISO_DATA_DIR or ./aviso-data)")
	to := fs.String("to", m.getenv("AVISO_DATABASE_URL"), "PostgreSQL URL to copy into; migrated first, and must be empty (env AVISO_DATABASE_URL)")
	force := fs.Bool("force", false, "replace the data of a PostgreSQL store that is not empty (it is deleted first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("migrate-store: --to or AVISO_DATABASE_URL is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate-store: unexpected argument %q", fs.Arg(0))
	}
	m.run = func(ctx context.Context) error {
		counts, err := storecopy.Copy(ctx, *from, *to, storecopy.Options{Logger: m.logger(), Force: *force})
		if err != nil {
			return fmt.Errorf("migrate-store: %w", err)
		}
		fmt.Fprintf(m.stdout, "copied %s into PostgreSQL: %s\n", *from, counts)
		fmt.Fprintln(m.stdout, "start the nodes with --database (or AVISO_DATABASE_URL) set to the same URL")
		return nil
	}
	return nil
}
