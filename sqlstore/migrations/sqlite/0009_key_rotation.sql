-- A rotated key: the key that replaced it (replaced_by, a hash) and when
-- its grace ends (expires_at, Unix seconds; 0 for a key not replaced).
-- Resolving refuses it from expires_at on; the store then removes it.
ALTER TABLE developer_keys ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_keys ADD COLUMN replaced_by TEXT NOT NULL DEFAULT '';
CREATE INDEX developer_keys_expires_at ON developer_keys (expires_at) WHERE expires_at <> 0;
