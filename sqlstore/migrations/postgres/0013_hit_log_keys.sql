-- PostgreSQL twin of migrations/sqlite-hitlog/0002_hit_log_keys.sql: each
-- log row's key filter, uncompressed as the series are (random bits do not
-- compress). A filter over 2 kB is stored out of line, as the series are,
-- so that a query reading the filters does not read the series' pages.
ALTER TABLE hit_log ADD COLUMN keys BYTEA;
ALTER TABLE hit_log ALTER COLUMN keys SET STORAGE EXTERNAL;
