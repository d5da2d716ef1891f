-- OAuth 2.0 client-credentials access tokens, by the SHA-256 of the token
-- (the token itself is never stored). client_id has no foreign key: a
-- developer update rewrites the developer's oauth_clients rows, and tokens
-- of a client that survives the update must survive it too. A token
-- resolves only through a JOIN with its client, and the store deletes the
-- tokens of a client that is gone. developer_id cascades a developer's
-- deletion. Times are Unix seconds.
CREATE TABLE oauth_tokens (
	token_hash   TEXT PRIMARY KEY,
	client_id    TEXT NOT NULL,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	issued_at    INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX oauth_tokens_client_id ON oauth_tokens (client_id);
CREATE INDEX oauth_tokens_developer_id ON oauth_tokens (developer_id);
CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at);
