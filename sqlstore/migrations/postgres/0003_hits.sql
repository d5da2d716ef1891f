-- PostgreSQL twin of migrations/sqlite/0003_hits.sql.
CREATE TABLE hits_hourly (
    key_hash      TEXT    NOT NULL,
    hour          BIGINT  NOT NULL, -- Unix seconds / 3600
    api_id        TEXT    NOT NULL,
    code          BIGINT  NOT NULL,
    hits          BIGINT  NOT NULL,
    success       BIGINT  NOT NULL,
    errors        BIGINT  NOT NULL,
    last_hit      BIGINT  NOT NULL, -- Unix nanoseconds
    latency_us    BIGINT  NOT NULL,
    latency_count BIGINT  NOT NULL,
    PRIMARY KEY (key_hash, hour, api_id, code)
);

CREATE TABLE hits_daily (
    key_hash      TEXT    NOT NULL,
    day           BIGINT  NOT NULL, -- Unix seconds / 86400
    api_id        TEXT    NOT NULL,
    code          BIGINT  NOT NULL,
    hits          BIGINT  NOT NULL,
    success       BIGINT  NOT NULL,
    errors        BIGINT  NOT NULL,
    last_hit      BIGINT  NOT NULL,
    latency_us    BIGINT  NOT NULL,
    latency_count BIGINT  NOT NULL,
    PRIMARY KEY (key_hash, day, api_id, code)
);

-- Batches already applied, so that a writer retrying a flush whose outcome
-- it never learned does not count it twice.
CREATE TABLE hit_batches (
    id         TEXT    PRIMARY KEY,
    applied_at BIGINT  NOT NULL -- Unix seconds
);
CREATE INDEX hit_batches_applied_at ON hit_batches (applied_at);
