-- The analytics file's counters: the tables of migrations/sqlite/0003_hits.sql,
-- in a file of their own beside the portal's, so that hit commits and
-- portal writes each have a writer (SQLite allows one per file).
CREATE TABLE hits_hourly (
    key_hash      TEXT    NOT NULL,
    hour          INTEGER NOT NULL, -- Unix seconds / 3600
    api_id        TEXT    NOT NULL,
    code          INTEGER NOT NULL,
    hits          INTEGER NOT NULL,
    success       INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    last_hit      INTEGER NOT NULL, -- Unix nanoseconds
    latency_us    INTEGER NOT NULL,
    latency_count INTEGER NOT NULL,
    PRIMARY KEY (key_hash, hour, api_id, code)
) WITHOUT ROWID;

CREATE TABLE hits_daily (
    key_hash      TEXT    NOT NULL,
    day           INTEGER NOT NULL, -- Unix seconds / 86400
    api_id        TEXT    NOT NULL,
    code          INTEGER NOT NULL,
    hits          INTEGER NOT NULL,
    success       INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    last_hit      INTEGER NOT NULL,
    latency_us    INTEGER NOT NULL,
    latency_count INTEGER NOT NULL,
    PRIMARY KEY (key_hash, day, api_id, code)
) WITHOUT ROWID;

CREATE TABLE hit_batches (
    id         TEXT    PRIMARY KEY,
    applied_at INTEGER NOT NULL -- Unix seconds
);
CREATE INDEX hit_batches_applied_at ON hit_batches (applied_at);
