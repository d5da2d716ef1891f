-- Portal settings: small named values (the admin key's hash, the org id).
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- Developers. Times are RFC 3339 text as the client sent them ('' for none),
-- so that Tyk's offsets survive a round trip. Maps are JSON text.
CREATE TABLE developers (
	id                TEXT PRIMARY KEY,
	org_id            TEXT NOT NULL,
	email             TEXT NOT NULL,
	email_lower       TEXT NOT NULL UNIQUE,
	date_created      TEXT NOT NULL,
	inactive          BOOLEAN NOT NULL DEFAULT FALSE,
	fields            TEXT NOT NULL DEFAULT '{}',
	nonce             TEXT NOT NULL DEFAULT '',
	sso_key           TEXT NOT NULL DEFAULT '',
	password_hash     TEXT NOT NULL DEFAULT '',
	password_history  TEXT NOT NULL DEFAULT '[]',
	password_max_days INTEGER NOT NULL DEFAULT 0,
	password_updated  TEXT NOT NULL DEFAULT '',
	last_login_date   TEXT NOT NULL DEFAULT ''
);

-- A developer's keys, by key hash. A hash belongs to one developer only:
-- this table is what resolves a key to its developer.
CREATE TABLE developer_keys (
	key_hash     TEXT PRIMARY KEY,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	policies     TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX developer_keys_developer_id ON developer_keys (developer_id);

-- subscriptions: policy id -> key hash, per developer.
CREATE TABLE developer_subscriptions (
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	policy_id    TEXT NOT NULL,
	key_hash     TEXT NOT NULL,
	PRIMARY KEY (developer_id, policy_id)
);

-- OAuth clients, under the policy they were issued for.
CREATE TABLE oauth_clients (
	client_id       TEXT PRIMARY KEY,
	developer_id    TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	policy_id       TEXT NOT NULL,
	position        INTEGER NOT NULL,
	secret          TEXT NOT NULL DEFAULT '',
	redirect_uri    TEXT NOT NULL DEFAULT '',
	app_description TEXT NOT NULL DEFAULT '',
	use_case        TEXT NOT NULL DEFAULT '',
	date_created    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX oauth_clients_developer_id ON oauth_clients (developer_id);
