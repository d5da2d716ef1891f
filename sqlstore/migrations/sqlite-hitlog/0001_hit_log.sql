-- The hit log's file, beside the counters' (keylens-hitlog.db for
-- keylens.db): hit commits append here, on a writer of their own, so that
-- they never queue behind the compactor folding the log into the counters
-- (sqlstore/hitlog.go). The batch ids commit with the series they name.
CREATE TABLE hit_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: rows up to a seq are known folded
    series INTEGER NOT NULL, -- how many series data holds
    data   BLOB    NOT NULL
);

CREATE TABLE hit_batches (
    id         TEXT    PRIMARY KEY,
    applied_at INTEGER NOT NULL -- Unix seconds
);
CREATE INDEX hit_batches_applied_at ON hit_batches (applied_at);

-- Log rows that could not be read (damaged on disk), set aside by the
-- compaction that met them: their hits are not counted.
CREATE TABLE hit_log_damaged (
    seq    INTEGER PRIMARY KEY,
    series INTEGER NOT NULL,
    data   BLOB    NOT NULL
);
