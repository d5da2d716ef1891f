-- Per-key hit counters: one row per key, UTC hour, API and status code,
-- and a daily rollup kept in the same transaction so that day and month
-- queries over long ranges read 24 times fewer rows.
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

-- Batches already applied, so that a writer retrying a flush whose outcome
-- it never learned does not count it twice.
CREATE TABLE hit_batches (
    id         TEXT    PRIMARY KEY,
    applied_at INTEGER NOT NULL -- Unix seconds
);
CREATE INDEX hit_batches_applied_at ON hit_batches (applied_at);
