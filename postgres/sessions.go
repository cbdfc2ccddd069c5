package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// RevokeSession records id as revoked until expires and deletes the records expired at now.
func (s *Store) RevokeSession(ctx context.Context, id string, expires, now time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM revoked_sessions WHERE expires <= $1`, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO revoked_sessions (id, expires) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET expires = greatest(revoked_sessions.expires, excluded.expires)`,
			id, expires)
		return err
	})
	return dbError("revoke session", "session", err)
}

// SessionRevoked reports whether any of ids is recorded as revoked past now.
func (s *Store) SessionRevoked(ctx context.Context, now time.Time, ids ...string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	var found bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_sessions
		WHERE expires > $1 AND id = ANY($2))`, now, ids).Scan(&found)
	return found, dbError("session revoked", "session", err)
}
