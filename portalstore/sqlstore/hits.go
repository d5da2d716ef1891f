package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keylens/keylens/portalstore"
)

var _ portalstore.HitService = (*DB)(nil)

// upsertHits adds a delta to a counter row; %s is the table and its time
// column.
const upsertHits = `INSERT INTO %[1]s (key_hash, %[2]s, api_id, code, hits, success, errors, last_hit, latency_us, latency_count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key_hash, %[2]s, api_id, code) DO UPDATE SET
	hits = %[1]s.hits + excluded.hits,
	success = %[1]s.success + excluded.success,
	errors = %[1]s.errors + excluded.errors,
	last_hit = %[3]s(%[1]s.last_hit, excluded.last_hit),
	latency_us = %[1]s.latency_us + excluded.latency_us,
	latency_count = %[1]s.latency_count + excluded.latency_count`

// upserts returns the hourly and daily upserts; the larger of two values
// is MAX(a, b) in SQLite and GREATEST(a, b) in PostgreSQL.
func (db *DB) upserts() (hourly, daily string) {
	greatest := "MAX"
	if db.pg {
		greatest = "GREATEST"
	}
	return fmt.Sprintf(upsertHits, "hits_hourly", "hour", greatest), fmt.Sprintf(upsertHits, "hits_daily", "day", greatest)
}

// AddHits adds every delta, hourly and to the daily rollup, in one
// transaction; a batch id already applied makes it a no-op.
func (db *DB) AddHits(ctx context.Context, batchID string, deltas []portalstore.HitDelta) error {
	for i := range deltas {
		if err := validDelta(&deltas[i]); err != nil {
			return err
		}
	}
	tx, err := db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if batchID != "" {
		res, err := tx.ExecContext(ctx, `INSERT INTO hit_batches (id, applied_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
			batchID, tx.now.Unix())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nil // applied before
		}
	}
	upsertHourly, upsertDaily := db.upserts()
	hourly, err := tx.PrepareContext(ctx, upsertHourly)
	if err != nil {
		return err
	}
	defer hourly.Close()
	daily, err := tx.PrepareContext(ctx, upsertDaily)
	if err != nil {
		return err
	}
	defer daily.Close()
	for _, d := range deltas {
		if _, err := hourly.ExecContext(ctx, d.KeyHash, d.Hour, d.APIID, d.Code, d.Hits, d.Success, d.Errors,
			d.LastHit, d.LatencyUS, d.LatencyCount); err != nil {
			return err
		}
		if _, err := daily.ExecContext(ctx, d.KeyHash, d.Hour/24, d.APIID, d.Code, d.Hits, d.Success, d.Errors,
			d.LastHit, d.LatencyUS, d.LatencyCount); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func validDelta(d *portalstore.HitDelta) error {
	switch {
	case d.KeyHash == "":
		return portalstore.Errorf(portalstore.EINVALID, "a hit delta needs a key")
	case d.Code < 100 || d.Code > 999:
		return portalstore.Errorf(portalstore.EINVALID, "status code %d is not an HTTP status", d.Code)
	case d.Hits < 0 || d.Success < 0 || d.Errors < 0 || d.Success+d.Errors > d.Hits || d.LatencyUS < 0 || d.LatencyCount < 0 || d.LatencyCount > d.Hits:
		return portalstore.Errorf(portalstore.EINVALID, "inconsistent counts in a hit delta")
	}
	return nil
}

// PruneHitBatches forgets batch ids applied before t: a writer retries for
// seconds, not days.
func (db *DB) PruneHitBatches(ctx context.Context, before time.Time) error {
	_, err := db.wdb.ExecContext(ctx, db.q(`DELETE FROM hit_batches WHERE applied_at < ?`), before.Unix())
	return err
}

// QueryHits aggregates counters: hourly rows for ResHour, the daily rollup
// for ResDay and ResMonth (whose range is widened to whole UTC days).
func (db *DB) QueryHits(ctx context.Context, q portalstore.HitQuery) ([]portalstore.HitRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if len(q.Keys) == 0 {
		return []portalstore.HitRow{}, nil
	}
	table, col, unit := "hits_hourly", "hour", int64(3600)
	if q.Res != portalstore.ResHour {
		table, col, unit = "hits_daily", "day", 86400
	}
	from := floorDiv(q.From.Unix(), unit)
	to := -floorDiv(-q.To.Unix(), unit) // ceiling
	var sb strings.Builder
	args := make([]any, 0, len(q.Keys)+len(q.APIIDs)+2)
	fmt.Fprintf(&sb, `SELECT %[1]s, code, SUM(hits), SUM(success), SUM(errors), MAX(last_hit), SUM(latency_us), SUM(latency_count)
FROM %[2]s WHERE key_hash IN (%[3]s) AND %[1]s >= ? AND %[1]s < ?`, col, table, placeholders(len(q.Keys)))
	for _, k := range q.Keys {
		args = append(args, k)
	}
	args = append(args, from, to)
	if len(q.APIIDs) > 0 {
		fmt.Fprintf(&sb, ` AND api_id IN (%s)`, placeholders(len(q.APIIDs)))
		for _, a := range q.APIIDs {
			args = append(args, a)
		}
	}
	fmt.Fprintf(&sb, ` GROUP BY %s, code ORDER BY %[1]s, code`, col)
	rows, err := db.rdb.QueryContext(ctx, db.q(sb.String()), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var buckets []portalstore.HitBucket
	for rows.Next() {
		var b portalstore.HitBucket
		var t int64
		if err := rows.Scan(&t, &b.Code, &b.Hits, &b.Success, &b.Errors, &b.LastHit, &b.LatencyUS, &b.LatencyCount); err != nil {
			return nil, err
		}
		b.Start = time.Unix(t*unit, 0).UTC()
		buckets = append(buckets, b)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return portalstore.FoldHits(buckets, q.Res, q.ByCode), nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
