-- PostgreSQL twin of migrations/sqlite-analytics/0002_hit_log.sql.
CREATE TABLE hit_log (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series BIGINT NOT NULL,
    data   BYTEA  NOT NULL
);
-- Written once and read once or twice: not worth compressing.
ALTER TABLE hit_log ALTER COLUMN data SET STORAGE EXTERNAL;
