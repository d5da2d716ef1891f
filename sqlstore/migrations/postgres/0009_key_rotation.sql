-- PostgreSQL twin of migrations/sqlite/0009_key_rotation.sql.
ALTER TABLE developer_keys ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE developer_keys ADD COLUMN replaced_by TEXT NOT NULL DEFAULT '';
CREATE INDEX developer_keys_expires_at ON developer_keys (expires_at) WHERE expires_at <> 0;
