-- Dashboard sessions and portal links ended before their expiry (signed out), by id, with the
-- expiry in unix microseconds; a row is deleted once the expiry has passed (see RevokeSession).
CREATE TABLE revoked_sessions (
	id      TEXT PRIMARY KEY,
	expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
