-- PostgreSQL twin of migrations/sqlite-hitlog/0001_hit_log.sql (the batch
-- ids, hit_batches, are in 0003_hits.sql here: one database).
CREATE TABLE hit_log (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series BIGINT NOT NULL,
    data   BYTEA  NOT NULL
);
-- Written once and read once or twice: not worth compressing.
ALTER TABLE hit_log ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE hit_log_damaged (
    seq    BIGINT PRIMARY KEY,
    series BIGINT NOT NULL,
    data   BYTEA  NOT NULL
);
