-- An OAuth client's previous secret while its grace runs, after the secret
-- was rotated: it authenticates the client until expires_at (Unix
-- seconds). Sealed like the client's secret. client_id has no foreign key,
-- as a developer update rewrites the oauth_clients rows (see
-- 0007_oauth_tokens.sql); it counts only through a JOIN with its client,
-- and the store removes it once its client is gone or its grace ended.
CREATE TABLE oauth_previous_secrets (
	client_id    TEXT PRIMARY KEY,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	secret       TEXT NOT NULL,
	expires_at   INTEGER NOT NULL
);
