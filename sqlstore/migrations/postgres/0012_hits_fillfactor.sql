-- Counter rows are updated in place again and again (every compaction
-- that folds their series): room left on each page lets PostgreSQL update
-- a row on its page without a new index entry (a HOT update).
ALTER TABLE hits_hourly SET (fillfactor = 50);
ALTER TABLE hits_daily SET (fillfactor = 50);
