-- PostgreSQL twin of migrations/sqlite-hitlog/0002_hit_log_keys.sql: each
-- log row's key filter. Stored out of line, as the series are, a query
-- reading the filters reads neither's pages of the other.
ALTER TABLE hit_log ADD COLUMN keys BYTEA;
ALTER TABLE hit_log ALTER COLUMN keys SET STORAGE EXTERNAL;
