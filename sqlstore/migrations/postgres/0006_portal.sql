-- PostgreSQL twin of migrations/sqlite/0006_portal.sql.
ALTER TABLE admin_sessions RENAME TO sessions;
ALTER TABLE sessions ADD COLUMN developer_id TEXT REFERENCES developers (id) ON DELETE CASCADE;
CREATE INDEX sessions_developer_id ON sessions (developer_id);

CREATE TABLE password_resets (
	token_hash   TEXT PRIMARY KEY,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	expires_at   BIGINT NOT NULL
);
CREATE INDEX password_resets_developer_id ON password_resets (developer_id);

CREATE TABLE reveals (
	request_id   TEXT PRIMARY KEY REFERENCES key_requests (id) ON DELETE CASCADE,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	secret       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reveals_developer_id ON reveals (developer_id);
