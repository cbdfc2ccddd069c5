package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/encryption"
	"github.com/aviso-dev/aviso/postgres"
	"github.com/aviso-dev/aviso/server"
	"github.com/aviso-dev/aviso/sqlite"
)

// parseRotateKey reads the flags of `aviso rotate-encryption-key`, which seals every endpoint's
// secrets with a new key. The keys come from where serve finds them:
//
//   - a key file (--encryption-key-file, or <data-dir>/encryption.key on SQLite): the command
//     generates the new key, writes the file with the new key first and the old ones after it,
//     reseals every endpoint, then leaves only the new key in the file. Interrupted, it can be
//     run again: the file still opens everything;
//   - AVISO_ENCRYPTION_KEY: put the new key first yourself (AVISO_ENCRYPTION_KEY=new,old, also on
//     the running nodes), run the command, which reseals with the first key, then drop the old
//     key from the variable.
//
// On SQLite stop the node first (it holds the old key); on PostgreSQL give the running nodes
// both keys (new first) before, and restart them with the new key alone after.
func (m *Main) parseRotateKey(args []string) error {
	c := server.Config{}
	fs := m.flagSet("rotate-encryption-key")
	fs.StringVar(&c.DataDir, "data-dir", m.envString("AVISO_DATA_DIR", "./aviso-data"), "SQLite data directory (env AVISO_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database", m.getenv("AVISO_DATABASE_URL"), "PostgreSQL URL; empty uses the SQLite store of --data-dir (env AVISO_DATABASE_URL)")
	fs.StringVar(&c.EncryptionKeyFile, "encryption-key-file", m.getenv("AVISO_ENCRYPTION_KEY_FILE"), "the key file to rotate; default <data-dir>/encryption.key on SQLite (env AVISO_ENCRYPTION_KEY_FILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("rotate-encryption-key: unexpected argument %q", fs.Arg(0))
	}
	c.EncryptionKey = m.getenv("AVISO_ENCRYPTION_KEY")
	if c.EncryptionKey != "" && c.EncryptionKeyFile != "" {
		return errors.New("rotate-encryption-key: AVISO_ENCRYPTION_KEY and --encryption-key-file are both set; rotate one")
	}
	if c.EncryptionKeyFile == "" && c.EncryptionKey == "" && c.DatabaseURL == "" {
		c.EncryptionKeyFile = filepath.Join(c.DataDir, server.KeyFileName)
		if _, err := os.Stat(c.EncryptionKeyFile); err != nil {
			return fmt.Errorf("rotate-encryption-key: no key file at %s (start the node once to create it, or set --encryption-key-file)", c.EncryptionKeyFile)
		}
	}
	m.run = func(ctx context.Context) error {
		if err := m.rotateKey(ctx, c); err != nil {
			return fmt.Errorf("rotate-encryption-key: %w", err)
		}
		return nil
	}
	return nil
}

func (m *Main) rotateKey(ctx context.Context, c server.Config) error {
	src, err := server.LoadKeys(c)
	if err != nil {
		return err
	}
	var old []string
	if src.File != "" {
		b, err := os.ReadFile(src.File)
		if err != nil {
			return err
		}
		old = strings.Fields(strings.ReplaceAll(string(b), ",", " "))
		newKey := encryption.NewKey()
		if err := server.WriteKeyFile(src.File, append([]string{newKey}, old...)...); err != nil {
			return err
		}
		if src.Keys, err = encryption.ParseKeys(strings.Join(append([]string{newKey}, old...), ",")); err != nil {
			return err
		}
	} else if src.Keys.Len() < 2 {
		return errors.New("AVISO_ENCRYPTION_KEY holds one key: put the new key first, e.g. " +
			"AVISO_ENCRYPTION_KEY=$(openssl rand -base64 32),$AVISO_ENCRYPTION_KEY (on the running nodes too), and run this again")
	}
	st, err := openStore(ctx, c, m)
	if err != nil {
		return err
	}
	n, err := encryption.Reseal(ctx, st, src.Keys)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if src.File != "" {
		b, err := os.ReadFile(src.File)
		if err != nil {
			return err
		}
		if err := server.WriteKeyFile(src.File, strings.Fields(string(b))[0]); err != nil {
			return err
		}
		fmt.Fprintf(m.stdout, "resealed %d endpoints with a new key; %s now holds only the new key (back it up; the old one no longer opens anything)\n", n, src.File)
		return nil
	}
	fmt.Fprintf(m.stdout, "resealed %d endpoints with the first key of AVISO_ENCRYPTION_KEY; set it to that key alone on every node\n", n)
	return nil
}

// openStore opens the store serve would (migrating it, as serve does).
func openStore(ctx context.Context, c server.Config, m *Main) (aviso.Store, error) {
	if c.DatabaseURL != "" {
		return postgres.Open(ctx, c.DatabaseURL, postgres.Options{Logger: m.logger(), Migrate: true})
	}
	return sqlite.Open(ctx, filepath.Join(c.DataDir, "aviso.db"), sqlite.Options{Logger: m.logger()})
}
