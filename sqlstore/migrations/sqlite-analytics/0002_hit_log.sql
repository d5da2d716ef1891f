-- Committed hit batches not yet folded into hits_hourly and hits_daily:
-- a commit appends one row (its series encoded, see sqlstore/hitlog.go),
-- and the store's compactor folds rows into the counters and deletes them
-- in one transaction. Queries add what is here to what the counters hold.
CREATE TABLE hit_log (
    seq    INTEGER PRIMARY KEY,
    series INTEGER NOT NULL, -- how many series data holds
    data   BLOB    NOT NULL
);
