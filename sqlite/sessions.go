package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// RevokeSession records id as revoked until expires and deletes the records expired at now.
func (s *Store) RevokeSession(ctx context.Context, id string, expires, now time.Time) error {
	return s.write(ctx, "revoke session", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_sessions WHERE expires <= ?`, micros(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO revoked_sessions (id, expires) VALUES (?1, ?2)
			ON CONFLICT (id) DO UPDATE SET expires = max(expires, excluded.expires)`, id, micros(expires))
		return err
	})
}

// SessionRevoked reports whether any of ids is recorded as revoked past now.
func (s *Store) SessionRevoked(ctx context.Context, now time.Time, ids ...string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	var found bool
	err := s.read(ctx, "session revoked", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_sessions
			WHERE expires > ? AND id IN (SELECT value FROM json_each(?)))`, micros(now), idList(ids)).Scan(&found)
	})
	return found, err
}
