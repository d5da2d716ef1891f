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
	hourly, daily := mergeDeltas(deltas, 1), mergeDeltas(deltas, 24)
	if db.pg {
		if err := upsertUnnest(ctx, tx, "hits_hourly", "hour", hourly); err != nil {
			return err
		}
		if err := upsertUnnest(ctx, tx, "hits_daily", "day", daily); err != nil {
			return err
		}
		return tx.Commit()
	}
	upsertHourly, upsertDaily := db.upserts()
	for _, u := range []struct {
		query string
		rows  []portalstore.HitDelta
	}{{upsertHourly, hourly}, {upsertDaily, daily}} {
		stmt, err := tx.PrepareContext(ctx, u.query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, d := range u.rows {
			if _, err := stmt.ExecContext(ctx, d.KeyHash, d.Hour, d.APIID, d.Code, d.Hits, d.Success, d.Errors,
				d.LastHit, d.LatencyUS, d.LatencyCount); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// mergeDeltas sums the deltas that fall on one row of a table whose time
// unit is per hours: 1 for hits_hourly, 24 for hits_daily. The Hour member
// of the result holds that table's time value.
func mergeDeltas(deltas []portalstore.HitDelta, per int64) []portalstore.HitDelta {
	type rowKey struct {
		key, api string
		t        int64
		code     int
	}
	index := make(map[rowKey]int, len(deltas))
	out := make([]portalstore.HitDelta, 0, len(deltas))
	for _, d := range deltas {
		k := rowKey{d.KeyHash, d.APIID, floorDiv(d.Hour, per), d.Code}
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			d.Hour = k.t
			out = append(out, d)
			continue
		}
		m := &out[i]
		m.Hits += d.Hits
		m.Success += d.Success
		m.Errors += d.Errors
		m.LastHit = max(m.LastHit, d.LastHit)
		m.LatencyUS += d.LatencyUS
		m.LatencyCount += d.LatencyCount
	}
	return out
}

// upsertUnnest adds rows to a PostgreSQL counter table in one statement:
// the rows travel as arrays, one round trip whatever their number.
func upsertUnnest(ctx context.Context, tx *Tx, table, col string, rows []portalstore.HitDelta) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	keys, apis := make([]string, n), make([]string, n)
	ts, codes, hits, success, errs, last, lat, latN := make([]int64, n), make([]int64, n), make([]int64, n),
		make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, d := range rows {
		keys[i], apis[i], ts[i], codes[i] = d.KeyHash, d.APIID, d.Hour, int64(d.Code)
		hits[i], success[i], errs[i], last[i], lat[i], latN[i] = d.Hits, d.Success, d.Errors, d.LastHit, d.LatencyUS, d.LatencyCount
	}
	_, err := tx.Tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %[1]s (key_hash, %[2]s, api_id, code, hits, success, errors, last_hit, latency_us, latency_count)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
ON CONFLICT (key_hash, %[2]s, api_id, code) DO UPDATE SET
	hits = %[1]s.hits + excluded.hits,
	success = %[1]s.success + excluded.success,
	errors = %[1]s.errors + excluded.errors,
	last_hit = GREATEST(%[1]s.last_hit, excluded.last_hit),
	latency_us = %[1]s.latency_us + excluded.latency_us,
	latency_count = %[1]s.latency_count + excluded.latency_count`, table, col),
		keys, ts, apis, codes, hits, success, errs, last, lat, latN)
	return err
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
	_, err := db.wdb.ExecContext(ctx, `DELETE FROM hit_batches WHERE applied_at < ?`, before.Unix())
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
	rows, err := db.rdb.QueryContext(ctx, sb.String(), args...)
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
