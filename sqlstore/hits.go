package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

var _ keylens.HitService = (*DB)(nil)

// AddHits applies the batches that were not applied before, in one
// transaction with their ids, on the hit log's writer: it appends their
// series to the hit log, which the compactor folds into the
// hourly counters and the daily rollup later (hitlog.go). The batches were
// validated where they entered (keylens.ValidateHits).
func (db *DB) AddHits(ctx context.Context, batches []keylens.HitBatch) ([]bool, error) {
	db.StartCompactor()
	var applied []bool
	var n int
	err := db.writeOn(ctx, db.lw, func(tx *Tx) error {
		var err error
		if applied, err = claimBatches(ctx, tx, batches); err != nil {
			return err
		}
		n, err = appendHits(ctx, tx, batches, applied)
		return err
	})
	if err != nil {
		return nil, err
	}
	db.appended(n)
	return applied, nil
}

// upsertCounters adds hourly rows (as foldHourly returns them) to the
// hourly counters and the daily rollup.
func upsertCounters(ctx context.Context, tx *Tx, hourly []keylens.HitDelta) error {
	daily := rollupDaily(hourly)
	for _, t := range []struct {
		table, col string
		rows       []keylens.HitDelta
	}{{"hits_hourly", "hour", hourly}, {"hits_daily", "day", daily}} {
		var err error
		if tx.db.pg {
			err = upsertUnnest(ctx, tx, t.table, t.col, t.rows)
		} else {
			err = upsertValues(ctx, tx, t.table, t.col, t.rows)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// foldHourly sums deltas into hourly rows sorted by primary key, in a new
// slice: consecutive rows land on the same pages, so far fewer pages are
// visited, split and journaled than in arrival order, and a row appears
// once per statement, as PostgreSQL's ON CONFLICT requires.
func foldHourly(deltas []keylens.HitDelta) []keylens.HitDelta {
	order := make([]int32, len(deltas))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &deltas[i], &deltas[j]
		if c := strings.Compare(a.KeyHash, b.KeyHash); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Hour, b.Hour), strings.Compare(a.APIID, b.APIID), cmp.Compare(a.Code, b.Code))
	})
	hourly := make([]keylens.HitDelta, 0, len(deltas))
	for _, i := range order {
		d := &deltas[i]
		if n := len(hourly); n > 0 && sameSeries(&hourly[n-1], d) {
			hourly[n-1].Merge(d)
			continue
		}
		hourly = append(hourly, *d)
	}
	return hourly
}

func sameSeries(a, b *keylens.HitDelta) bool {
	return a.Hour == b.Hour && a.Code == b.Code && a.KeyHash == b.KeyHash && a.APIID == b.APIID
}

// rollupDaily sums hourly rows (as foldHourly returns them) into the rows
// of the daily rollup, sorted by primary key.
func rollupDaily(hourly []keylens.HitDelta) []keylens.HitDelta {
	// The hours of one key and day are adjacent: fold each such run by
	// API and code.
	daily := make([]keylens.HitDelta, 0, len(hourly))
	for start := 0; start < len(hourly); {
		key, day := hourly[start].KeyHash, floorDiv(hourly[start].Hour, 24)
		end := start + 1
		for end < len(hourly) && hourly[end].KeyHash == key && floorDiv(hourly[end].Hour, 24) == day {
			end++
		}
		run := daily[len(daily):]
		for _, h := range hourly[start:end] {
			h.Hour = day
			run = append(run, h)
		}
		slices.SortFunc(run, func(a, b keylens.HitDelta) int {
			return cmp.Or(strings.Compare(a.APIID, b.APIID), cmp.Compare(a.Code, b.Code))
		})
		for i := range run {
			if n := len(daily); n > 0 && sameSeries(&daily[n-1], &run[i]) {
				daily[n-1].Merge(&run[i])
				continue
			}
			daily = append(daily, run[i])
		}
		start = end
	}
	return daily
}

// claimBatches records the batches' ids and reports which batches are new:
// those without an id, and the first of each id not recorded before. The
// ids are inserted in order, as the counters are: two commits claiming the
// same ids (a batch retried to another process while its first commit
// runs) wait for each other in one order, never in a cycle.
func claimBatches(ctx context.Context, tx *Tx, batches []keylens.HitBatch) ([]bool, error) {
	applied := make([]bool, len(batches))
	var ids []string
	for i := range batches {
		if batches[i].ID == "" {
			applied[i] = true
			continue
		}
		ids = append(ids, batches[i].ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var sb strings.Builder
	var args []any
	for _, id := range ids {
		if len(args) > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?)")
		args = append(args, id, tx.now.Unix())
	}
	if len(args) == 0 {
		return applied, nil
	}
	rows, err := tx.QueryContext(ctx, `INSERT INTO hit_batches (id, applied_at) VALUES `+sb.String()+
		` ON CONFLICT (id) DO NOTHING RETURNING id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	fresh := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		fresh[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range batches {
		if id := batches[i].ID; id != "" && fresh[id] {
			applied[i] = true
			delete(fresh, id) // a second batch of the same id is a duplicate
		}
	}
	return applied, nil
}

// upsertCountersSQL adds rows to a counter table (%[1]s, time column
// %[2]s) from %[3]s, with %[4]s the database's larger-of function.
const upsertCountersSQL = `INSERT INTO %[1]s (key_hash, %[2]s, api_id, code, hits, success, errors, last_hit, latency_us, latency_count)
%[3]s
ON CONFLICT (key_hash, %[2]s, api_id, code) DO UPDATE SET
	hits = %[1]s.hits + excluded.hits,
	success = %[1]s.success + excluded.success,
	errors = %[1]s.errors + excluded.errors,
	last_hit = %[4]s(%[1]s.last_hit, excluded.last_hit),
	latency_us = %[1]s.latency_us + excluded.latency_us,
	latency_count = %[1]s.latency_count + excluded.latency_count`

// upsertRowsPerStatement is how many rows one SQLite statement adds: ten
// parameters a row, well inside SQLite's limit of 32,766.
const upsertRowsPerStatement = 500

// upsertValues adds rows to a SQLite counter table with multi-row upserts:
// one statement, prepared once, per upsertRowsPerStatement rows.
func upsertValues(ctx context.Context, tx *Tx, table, col string, rows []keylens.HitDelta) error {
	var stmt *sql.Stmt
	args := make([]any, 0, 10*upsertRowsPerStatement)
	for len(rows) > 0 {
		n := min(len(rows), upsertRowsPerStatement)
		args = args[:0]
		for i := range rows[:n] {
			d := &rows[i]
			args = append(args, d.KeyHash, d.Hour, d.APIID, int64(d.Code), d.Hits, d.Success, d.Errors, d.LastHit, d.LatencyUS, d.LatencyCount)
		}
		var err error
		switch {
		case n == upsertRowsPerStatement && stmt != nil:
			_, err = stmt.ExecContext(ctx, args...)
		case n == upsertRowsPerStatement:
			if stmt, err = tx.PrepareContext(ctx, upsertStatement(table, col, n, "MAX")); err != nil {
				return err
			}
			defer stmt.Close()
			_, err = stmt.ExecContext(ctx, args...)
		default:
			_, err = tx.ExecContext(ctx, upsertStatement(table, col, n, "MAX"), args...)
		}
		if err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// upsertStatement is the upsert of n rows given as VALUES.
func upsertStatement(table, col string, n int, greatest string) string {
	var sb strings.Builder
	sb.WriteString("VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return fmt.Sprintf(upsertCountersSQL, table, col, sb.String(), greatest)
}

// upsertUnnestRows is how many rows one PostgreSQL statement adds: a
// compaction's hundreds of thousands as one statement's arrays are slower
// than in statements of this size (BenchmarkCompaction).
const upsertUnnestRows = 10000

// upsertUnnest adds rows to a PostgreSQL counter table, upsertUnnestRows
// a statement: the rows travel as arrays, a round trip a statement.
func upsertUnnest(ctx context.Context, tx *Tx, table, col string, rows []keylens.HitDelta) error {
	for len(rows) > upsertUnnestRows {
		if err := upsertUnnest(ctx, tx, table, col, rows[:upsertUnnestRows]); err != nil {
			return err
		}
		rows = rows[upsertUnnestRows:]
	}
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
	_, err := tx.Tx.ExecContext(ctx, fmt.Sprintf(upsertCountersSQL, table, col,
		`SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])`,
		"GREATEST"),
		keys, ts, apis, codes, hits, success, errs, last, lat, latN)
	return err
}

// PruneHitBatches forgets batch ids applied before t: a writer retries for
// seconds, not days.
func (db *DB) PruneHitBatches(ctx context.Context, before time.Time) error {
	_, err := db.lw.ExecContext(ctx, `DELETE FROM hit_batches WHERE applied_at < ?`, before.Unix())
	return err
}

// QueryHits aggregates counters: hourly rows for ResHour, the daily rollup
// for ResDay and ResMonth (whose range is widened to whole UTC days).
func (db *DB) QueryHits(ctx context.Context, q keylens.HitQuery) ([]keylens.HitRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if len(q.Keys) == 0 {
		return []keylens.HitRow{}, nil
	}
	table, col, unit := "hits_hourly", "hour", int64(3600)
	if q.Res != keylens.ResHour {
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
	// The counters and the hit log as of one moment, so that each row of
	// the log is counted once, from the log or from the counters, whatever
	// a compaction does meanwhile: on PostgreSQL one snapshot; on SQLite
	// the log's snapshot first, then the counters' with how far they
	// folded the log (see hitlog.go).
	var opts *sql.TxOptions
	if db.pg {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	var ltx *sql.Tx
	if !db.pg {
		var err error
		if ltx, err = db.lr.beginTx(ctx, nil); err != nil {
			return nil, err
		}
		defer ltx.Rollback()
		var seq int64 // a read starts the snapshot
		if err := ltx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM hit_log`).Scan(&seq); err != nil {
			return nil, err
		}
	}
	tx, err := db.hr.beginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var through int64
	if db.pg {
		ltx = tx
	} else if err := tx.QueryRowContext(ctx, `SELECT through FROM hit_log_folded`).Scan(&through); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, db.q(sb.String()), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var buckets []keylens.HitBucket
	for rows.Next() {
		var b keylens.HitBucket
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
	rows.Close()
	if buckets, err = db.readHitLog(ctx, ltx, through, q, unit, from, to, buckets); err != nil {
		return nil, err
	}
	return keylens.FoldHits(buckets, q.Res, q.ByCode), nil
}

// movedMarker, recorded in the analytics file's schema_migrations, says
// the hit counters of the portal's file were moved into it.
const movedMarker = "moved-from-portal-file"

// moveHitsOut moves the hit counters a SQLite portal file held before they
// had a file of their own (keylens.db's tables hits_hourly, hits_daily and
// hit_batches) into the analytics file, once. The two files cannot commit
// together, so the copy and a marker commit in the analytics file first;
// the portal's tables are dropped after. A crash between the two leaves
// the marker and the old tables: the next start drops them without
// copying again, so no counter is lost or counted twice.
func (db *DB) moveHitsOut(ctx context.Context, portalPath string) error {
	if old, err := hasTable(ctx, db.wdb, "hits_hourly", "hits_daily", "hit_batches"); err != nil || !old {
		return err
	}
	if err := attached(ctx, db.hw, portalPath, "portal", func(conn *sql.Conn) error {
		return copyHitsOut(ctx, conn)
	}); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		for _, table := range []string{"hits_hourly", "hits_daily", "hit_batches"} {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
				return err
			}
		}
		return nil
	})
}

// copyHitsOut is moveHitsOut's copy, on conn, to which the portal file is
// attached.
func copyHitsOut(ctx context.Context, conn *sql.Conn) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var moved int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM main.schema_migrations WHERE name = ?`, movedMarker).Scan(&moved); err != nil {
		return err
	}
	if moved == 0 {
		// The analytics file is new (it is created beside the portal's
		// on the first start that has it); the sums are there for
		// safety should it hold counters anyway.
		for _, t := range []struct{ table, col string }{{"hits_hourly", "hour"}, {"hits_daily", "day"}} {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(upsertCountersSQL, "main."+t.table, t.col,
				`SELECT key_hash, `+t.col+`, api_id, code, hits, success, errors, last_hit, latency_us, latency_count FROM portal.`+t.table+` WHERE true`,
				"MAX")); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO main.hit_batches (id, applied_at) SELECT id, applied_at FROM portal.hit_batches WHERE true ON CONFLICT (id) DO NOTHING`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO main.schema_migrations (name) VALUES (?)`, movedMarker); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// hasTable reports whether the SQLite file of p has any of tables.
func hasTable(ctx context.Context, p *pool, tables ...string) (bool, error) {
	var n int
	err := p.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (`+placeholders(len(tables))+`)`, anys(tables)...).Scan(&n)
	return n > 0, err
}

// attached runs fn on a connection of the SQLite writer w with the file
// at path attached as alias (ATTACH holds for one connection).
func attached(ctx context.Context, w *pool, path, alias string, fn func(conn *sql.Conn) error) error {
	conn, err := w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+alias, path); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE `+alias)
	return fn(conn)
}

// moveBatchIDs moves the applied batch ids of the counters' file (where
// they were kept before the hit log had a file of its own) into the log's
// file, to commit with the series they name, and drops them from the
// counters' file. The copy commits first and ignores ids already copied,
// so that a crash between the two copies again, harmlessly.
func (db *DB) moveBatchIDs(ctx context.Context, countersPath string) error {
	if old, err := hasTable(ctx, db.hw, "hit_batches"); err != nil || !old {
		return err
	}
	if err := attached(ctx, db.lw, countersPath, "counters", func(conn *sql.Conn) error {
		_, err := conn.ExecContext(ctx, `INSERT INTO main.hit_batches (id, applied_at) SELECT id, applied_at FROM counters.hit_batches WHERE true ON CONFLICT (id) DO NOTHING`)
		return err
	}); err != nil {
		return err
	}
	_, err := db.hw.ExecContext(ctx, `DROP TABLE hit_batches`)
	return err
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
