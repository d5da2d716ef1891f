-- How far the hit log (the file of migrations/sqlite-hitlog) is folded
-- into these counters: the log's rows up to seq `through` are counted
-- here, committed with the counters they added, and are deleted from the
-- log after (see sqlstore/hitlog.go).
CREATE TABLE hit_log_folded (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
INSERT INTO hit_log_folded (id, through) VALUES (1, 0);
