package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aviso-dev/aviso/internal/encryption"
)

// KeyFileName is the encryption key file an SQLite node generates in its data directory.
const KeyFileName = "encryption.key"

// KeySource says where a node's encryption keys come from.
type KeySource struct {
	Keys *encryption.Keyring
	// File is the key file read (Config.EncryptionKeyFile, or the data directory's); "" when
	// the keys came from Config.EncryptionKey (AVISO_ENCRYPTION_KEY).
	File string
	// Generated is true when this call created File.
	Generated bool
}

// LoadKeys returns the keys that seal endpoint secrets at rest: Config.EncryptionKey, else the
// file Config.EncryptionKeyFile, else (SQLite only) DataDir/encryption.key, generated with a
// fresh key on the first start. A PostgreSQL node needs one of the first two: every node of a
// database must use the same key, and one generated beside each node would differ.
func LoadKeys(cfg Config) (KeySource, error) {
	cfg.setDefaults()
	switch {
	case cfg.EncryptionKey != "":
		k, err := encryption.ParseKeys(cfg.EncryptionKey)
		return KeySource{Keys: k}, err
	case cfg.EncryptionKeyFile != "":
		k, err := readKeyFile(cfg.EncryptionKeyFile)
		return KeySource{Keys: k, File: cfg.EncryptionKeyFile}, err
	case cfg.DatabaseURL != "":
		return KeySource{}, errors.New("PostgreSQL needs the key that encrypts endpoint secrets: set AVISO_ENCRYPTION_KEY " +
			"(e.g. $(openssl rand -base64 32)) or --encryption-key-file, the same on every node")
	}
	path := filepath.Join(cfg.DataDir, KeyFileName)
	k, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return KeySource{Keys: k, File: path}, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return KeySource{}, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // created meanwhile
		k, err := readKeyFile(path)
		return KeySource{Keys: k, File: path}, err
	}
	if err != nil {
		return KeySource{}, fmt.Errorf("create encryption key file: %w", err)
	}
	_, werr := io.WriteString(f, encryption.NewKey()+"\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return KeySource{}, fmt.Errorf("write encryption key file: %w", err)
	}
	k, err = readKeyFile(path)
	return KeySource{Keys: k, File: path, Generated: true}, err
}

func readKeyFile(path string) (*encryption.Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read encryption key file: %w", err)
	}
	k, err := encryption.ParseKeys(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile replaces the key file at path with keys (one per line, the current first),
// atomically: a crash leaves the old file or the new one.
func WriteKeyFile(path string, keys ...string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write encryption key file: %w", err)
	}
	_, werr := io.WriteString(f, strings.Join(keys, "\n")+"\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write encryption key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write encryption key file: %w", err)
	}
	return nil
}
