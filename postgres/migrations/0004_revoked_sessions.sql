-- 0004_revoked_sessions: dashboard sessions and portal links ended before their expiry (signed
-- out), by id; a row is deleted once its expiry has passed (see RevokeSession).
CREATE TABLE revoked_sessions (
	id      text PRIMARY KEY,
	expires timestamptz NOT NULL
);
