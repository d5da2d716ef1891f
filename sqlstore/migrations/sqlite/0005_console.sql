-- The admin console: admin accounts, their sessions, and the audit trail of
-- every change made through the console, the REST API or the command line.
CREATE TABLE admins (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL,
	email_lower   TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	disabled      BOOLEAN NOT NULL DEFAULT FALSE,
	date_created  TEXT NOT NULL,
	last_login    TEXT NOT NULL DEFAULT ''
);

-- Sessions by the SHA-256 of their id (the id is only in the cookie).
-- admin_id is NULL for a session of the admin key, which admin_key then
-- fingerprints. Times are Unix seconds.
CREATE TABLE admin_sessions (
	id_hash    TEXT PRIMARY KEY,
	admin_id   TEXT REFERENCES admins (id) ON DELETE CASCADE,
	admin_key  TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
);
CREATE INDEX admin_sessions_admin_id ON admin_sessions (admin_id);

-- The audit trail, newest last. Never pruned with the objects it names.
CREATE TABLE audit_log (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	at           TEXT NOT NULL,
	actor        TEXT NOT NULL DEFAULT '',
	actor_id     TEXT NOT NULL DEFAULT '',
	via          TEXT NOT NULL DEFAULT '',
	action       TEXT NOT NULL,
	object_type  TEXT NOT NULL DEFAULT '',
	object_id    TEXT NOT NULL DEFAULT '',
	developer_id TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_developer_id ON audit_log (developer_id, seq);
