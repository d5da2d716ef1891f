-- PostgreSQL twin of migrations/sqlite/0002_keys.sql.
ALTER TABLE developer_keys ADD COLUMN auth_type TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_keys ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_keys ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE developer_keys ADD COLUMN date_created TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_keys ADD COLUMN quota_reset_at TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_keys ADD COLUMN basic_username TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_keys ADD COLUMN basic_password_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_keys ADD COLUMN jwt_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_keys ADD COLUMN jwt_public_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX developer_keys_basic_username ON developer_keys (basic_username) WHERE basic_username <> '';

CREATE TABLE key_requests (
	id              TEXT PRIMARY KEY,
	org_id          TEXT NOT NULL,
	by_user         TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
	for_api         TEXT NOT NULL DEFAULT '',
	for_plan        TEXT NOT NULL DEFAULT '',
	apply_policies  TEXT NOT NULL DEFAULT '[]',
	remove_policies TEXT NOT NULL DEFAULT '[]',
	fields          TEXT NOT NULL DEFAULT '{}',
	approved        BOOLEAN NOT NULL DEFAULT FALSE,
	key_hash        TEXT NOT NULL DEFAULT '',
	date_created    TEXT NOT NULL,
	version         TEXT NOT NULL DEFAULT '',
	jwt_secret      TEXT NOT NULL DEFAULT '',
	certificate     TEXT NOT NULL DEFAULT '',
	redirect_uri    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX key_requests_by_user ON key_requests (by_user);

-- The catalogue: one document.
CREATE TABLE catalogue (
	id     TEXT PRIMARY KEY,
	org_id TEXT NOT NULL,
	apis   TEXT NOT NULL
);

-- The change feed: everything that can alter how a key resolves, in order.
CREATE TABLE changes (
	seq          BIGSERIAL PRIMARY KEY,
	at           TEXT NOT NULL,
	kind         TEXT NOT NULL,
	developer_id TEXT NOT NULL DEFAULT '',
	key_hash     TEXT NOT NULL DEFAULT '',
	client_id    TEXT NOT NULL DEFAULT ''
);
