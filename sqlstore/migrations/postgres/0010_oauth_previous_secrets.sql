-- PostgreSQL twin of migrations/sqlite/0010_oauth_previous_secrets.sql.
CREATE TABLE oauth_previous_secrets (
	client_id    TEXT PRIMARY KEY,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	secret       TEXT NOT NULL,
	expires_at   BIGINT NOT NULL
);
