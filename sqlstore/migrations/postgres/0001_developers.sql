-- PostgreSQL twin of migrations/sqlite/0001_developers.sql.
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

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
	password_max_days BIGINT NOT NULL DEFAULT 0,
	password_updated  TEXT NOT NULL DEFAULT '',
	last_login_date   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE developer_keys (
	key_hash     TEXT PRIMARY KEY,
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	policies     TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX developer_keys_developer_id ON developer_keys (developer_id);

CREATE TABLE developer_subscriptions (
	developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	policy_id    TEXT NOT NULL,
	key_hash     TEXT NOT NULL,
	PRIMARY KEY (developer_id, policy_id)
);

CREATE TABLE oauth_clients (
	client_id       TEXT PRIMARY KEY,
	developer_id    TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	policy_id       TEXT NOT NULL,
	position        BIGINT NOT NULL,
	secret          TEXT NOT NULL DEFAULT '',
	redirect_uri    TEXT NOT NULL DEFAULT '',
	app_description TEXT NOT NULL DEFAULT '',
	use_case        TEXT NOT NULL DEFAULT '',
	date_created    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX oauth_clients_developer_id ON oauth_clients (developer_id);
