-- PostgreSQL twin of migrations/sqlite/0007_oauth_tokens.sql.
CREATE TABLE oauth_tokens (
	token_hash   TEXT PRIMARY KEY,
	client_id    TEXT NOT NULL,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	issued_at    BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL
);
CREATE INDEX oauth_tokens_client_id ON oauth_tokens (client_id);
CREATE INDEX oauth_tokens_developer_id ON oauth_tokens (developer_id);
CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at);
