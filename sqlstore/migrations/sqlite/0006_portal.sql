-- The developer portal. Its sessions are the console's kind of record: a
-- session belongs to an admin (or the admin key) or to a developer.
ALTER TABLE admin_sessions RENAME TO sessions;
ALTER TABLE sessions ADD COLUMN developer_id TEXT REFERENCES developers (id) ON DELETE CASCADE;
CREATE INDEX sessions_developer_id ON sessions (developer_id);

-- Password reset tokens by their SHA-256 (the token is only in the email).
-- Times are Unix seconds.
CREATE TABLE password_resets (
	token_hash   TEXT PRIMARY KEY,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX password_resets_developer_id ON password_resets (developer_id);

-- What an admin's approval issued for a request filed in the portal, kept
-- (sealed under the secrets key, when set) until the developer has seen it
-- once. secret is '' until the request is approved.
CREATE TABLE reveals (
	request_id   TEXT PRIMARY KEY REFERENCES key_requests (id) ON DELETE CASCADE,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	secret       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reveals_developer_id ON reveals (developer_id);
