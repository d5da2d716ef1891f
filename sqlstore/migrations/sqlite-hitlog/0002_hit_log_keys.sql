-- Each log row's key filter (sqlstore/keyfilter.go), so that a query
-- reads only the rows that may hold its keys. The table is rebuilt so
-- that the filter comes before the series: SQLite reads a row's columns
-- in order, and a column after the series would be read through them.
-- Rows logged before have no filter and are always read.
CREATE TABLE hit_log_new (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: rows up to a seq are known folded
    series INTEGER NOT NULL, -- how many series data holds
    keys   BLOB,             -- the key filter
    data   BLOB    NOT NULL
);
INSERT INTO hit_log_new (seq, series, data) SELECT seq, series, data FROM hit_log;
-- The new table takes over the old one's sequence: DROP TABLE deletes it,
-- and the copy's is only the largest seq it copied (0 when the log is empty).
DELETE FROM sqlite_sequence WHERE name = 'hit_log_new';
UPDATE sqlite_sequence SET name = 'hit_log_new' WHERE name = 'hit_log';
DROP TABLE hit_log;
ALTER TABLE hit_log_new RENAME TO hit_log;
