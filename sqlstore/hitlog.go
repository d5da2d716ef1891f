package sqlstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/backoff"
)

// The hit log. A hit commit appends its series to hit_log as one encoded
// row: one insert however many series, so that a commit costs an encode
// and the bytes written, not an upsert of two rows (hourly and daily) per
// series. The compactor (StartCompactor, until Close) folds the oldest
// rows into hits_hourly and hits_daily; queries add what the log
// holds to what the counters hold (QueryHits). A committed hit is counted
// once, whether still in the log or already folded. Folding many commits
// at once also folds their repeats: a fleet's gateways send the same
// series every second, and each is upserted once per compaction.
//
// How a compaction moves rows differs by database:
//   - SQLite: the log is a file of its own (HitLogPath), so that commits
//     never wait for the counters' writer (only for a compaction's short
//     deletes of the rows it folded, on the log's). A compaction reads
//     rows past hit_log_folded.through from the log, commits their counters
//     with the new `through` in the counters' file, then deletes them from
//     the log. A query reads the log's snapshot first, then the counters
//     with their `through`, and counts the log's rows past it: each row is
//     counted from exactly one side, whatever a compaction does meanwhile.
//     The log's seq is AUTOINCREMENT (never reused), and its one writer
//     commits rows in seq order.
//   - PostgreSQL: one database, where concurrent commits (of several
//     processes) may commit seqs out of order. A compaction takes rows
//     with FOR UPDATE SKIP LOCKED (others' compactions take others),
//     upserts their counters and deletes them in one transaction; a query
//     reads counters and log in one snapshot.
//
// A record, in a row's data after its version byte:
//
//	uvarint len(key) | key | uvarint len(rest) | rest
//	rest: uvarint len(api) | api | varint hour | varint code | varint hits,
//	      success, errors, last_hit, latency_us, latency_count
//
// The length of rest lets a query skip the records of other keys unread.
const hitLogVersion = 1

// appendHitLog appends the records of series to dst.
func appendHitLog(dst []byte, series []keylens.HitDelta) []byte {
	var rest []byte
	for i := range series {
		d := &series[i]
		rest = binary.AppendUvarint(rest[:0], uint64(len(d.APIID)))
		rest = append(rest, d.APIID...)
		for _, v := range [...]int64{d.Hour, int64(d.Code), d.Hits, d.Success, d.Errors, d.LastHit, d.LatencyUS, d.LatencyCount} {
			rest = binary.AppendVarint(rest, v)
		}
		dst = binary.AppendUvarint(dst, uint64(len(d.KeyHash)))
		dst = append(dst, d.KeyHash...)
		dst = binary.AppendUvarint(dst, uint64(len(rest)))
		dst = append(dst, rest...)
	}
	return dst
}

var errHitLog = errors.New("sqlstore: a hit_log row is corrupt")

// field reads a length-prefixed field at b[i:], returning it and the
// index after it.
func field(b []byte, i int) ([]byte, int, error) {
	n, w := binary.Uvarint(b[i:])
	if w <= 0 || n > uint64(len(b)-i-w) {
		return nil, 0, errHitLog
	}
	i += w
	return b[i : i+int(n)], i + int(n), nil
}

// scanHitLog calls fn for each record of a row's data whose key keep
// accepts (all when keep is nil), with its key and API as slices of data.
// A corrupt row is an error, never a panic.
func scanHitLog(data []byte, keep func(key []byte) bool, fn func(key, api []byte, d *keylens.HitDelta)) error {
	if len(data) == 0 || data[0] != hitLogVersion {
		return errHitLog
	}
	var d keylens.HitDelta
	var v [8]int64
	for i := 1; i < len(data); {
		key, j, err := field(data, i)
		if err != nil {
			return err
		}
		rest, next, err := field(data, j)
		if err != nil {
			return err
		}
		i = next
		if keep != nil && !keep(key) {
			continue
		}
		api, k, err := field(rest, 0)
		if err != nil {
			return err
		}
		for n := range v {
			x, w := binary.Varint(rest[k:])
			if w <= 0 {
				return errHitLog
			}
			v[n], k = x, k+w
		}
		if k != len(rest) {
			return errHitLog
		}
		d = keylens.HitDelta{Hour: v[0], Code: int(v[1]), Hits: v[2], Success: v[3], Errors: v[4], LastHit: v[5], LatencyUS: v[6], LatencyCount: v[7]}
		fn(key, api, &d)
	}
	return nil
}

// appendHits appends the series of the batches applied to the hit log, in
// the commit's transaction; it reports how many series it appended.
func appendHits(ctx context.Context, tx *Tx, batches []keylens.HitBatch, applied []bool) (int, error) {
	n := 0
	for i := range batches {
		if applied[i] {
			n += len(batches[i].Series)
		}
	}
	if n == 0 {
		return 0, nil
	}
	data, keys := []byte{hitLogVersion}, newKeyFilter(n)
	for i := range batches {
		if applied[i] {
			data = appendHitLog(data, batches[i].Series)
			for j := range batches[i].Series {
				addKey(keys, batches[i].Series[j].KeyHash)
			}
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO hit_log (series, keys, data) VALUES (?, ?, ?)`, n, keys, data)
	return n, err
}

// What one compaction folds: rows of the log in seq order (at least one),
// until their series number logSeries or fold to distinct rows. A
// compaction covering more of the log folds more repeats: a fleet's
// gateways send each of their series every second, so that its ~200,000
// series a second fold to the same ~200,000 rows however many seconds one
// compaction covers. Its cost is mostly the rows it upserts, so that a
// compactor that falls behind a fleet catches up: the next compaction
// covers more seconds for about the same cost. The distinct limit is
// above a fleet's rows, so that such a compaction covers up to
// logSeries, half the committer's backlog limit
// (analytics.DefaultMaxBacklog), so that commits have room while it runs.
// What it holds follows the distinct series, not logSeries: each logged
// series is summed into its row as it is read (found by a hash of
// integers: its key and API numbered, copied once each), and a row takes
// about 190 bytes with its index entry, up to 330 with a key of its own
// (a flood's): 50-80 MB at the distinct limit, and some 50 MB more while
// the upsert holds the rows sorted, hourly and daily.
type compactLimits struct{ logSeries, distinct int }

var compactLimit = compactLimits{logSeries: 5000000, distinct: 250000}

// logFold accumulates the log rows a compaction takes, summing each series
// into its hourly row as it is read, so that memory follows the distinct
// series, not the series logged.
type logFold struct {
	limits  compactLimits
	rows    []keylens.HitDelta // one per series, in the order first met
	index   map[seriesRef]int32
	names   map[string]int32 // keys and APIs met, numbered
	strs    []string         // by number
	scratch []logRecord      // the row being read
	series  int              // logged series taken
	last    int64
	seqs    []int64 // taken, damaged ones included
	damaged []int64 // rows that could not be read
}

// seriesRef names a series by the numbers of its key and API (names), so
// that finding its row hashes a few integers, not two strings.
type seriesRef struct {
	key, api   int32
	hour, code int64
}

// logRecord is a record of the row being read, its names numbered.
type logRecord struct {
	ref seriesRef
	d   keylens.HitDelta
}

// full reports whether the fold has taken enough.
func (f *logFold) full() bool {
	return f.series >= f.limits.logSeries || len(f.rows) >= f.limits.distinct
}

// intern returns the number of a key or API, copying it the first time.
func (f *logFold) intern(b []byte) int32 {
	if n, ok := f.names[string(b)]; ok {
		return n
	}
	if f.names == nil {
		f.names = make(map[string]int32)
	}
	n := int32(len(f.strs))
	s := string(b)
	f.names[s] = n
	f.strs = append(f.strs, s)
	return n
}

// add takes one log row. A row that cannot be read (damaged on disk) adds
// nothing and is noted, for the compaction to set it aside rather than
// stop at it for good.
func (f *logFold) add(seq int64, data []byte) {
	f.seqs, f.last = append(f.seqs, seq), seq
	f.scratch = f.scratch[:0]
	if err := scanHitLog(data, nil, func(key, api []byte, d *keylens.HitDelta) {
		f.scratch = append(f.scratch, logRecord{ref: seriesRef{key: f.intern(key), api: f.intern(api), hour: d.Hour, code: int64(d.Code)}, d: *d})
	}); err != nil {
		f.damaged = append(f.damaged, seq)
		return
	}
	if f.index == nil {
		f.index = make(map[seriesRef]int32)
	}
	for i := range f.scratch {
		r := &f.scratch[i]
		if at, ok := f.index[r.ref]; ok {
			f.rows[at].Merge(&r.d)
			continue
		}
		f.index[r.ref] = int32(len(f.rows))
		r.d.KeyHash, r.d.APIID = f.strs[r.ref.key], f.strs[r.ref.api]
		f.rows = append(f.rows, r.d)
	}
	f.series += len(f.scratch)
}

// hourly is what the fold took, as hourly rows sorted by primary key.
func (f *logFold) hourly() []keylens.HitDelta { return foldHourly(f.rows) }

// compactHits folds the oldest rows of the hit log into the counters and
// removes them from the log; it reports the logged series folded (0: the
// log is empty, or, on PostgreSQL, every row is another process's
// compaction's).
func (db *DB) compactHits(ctx context.Context) (int, error) {
	if db.pg {
		return db.compactHitsPostgreSQL(ctx)
	}
	return db.compactHitsSQLite(ctx)
}

// compactHitsSQLite folds rows of the log's file into the counters' file
// (see the comment at the top): the reading and decoding hold no writer,
// the counters' writer commits them with the new hit_log_folded.through,
// and the log's writer deletes them after, or at the next compaction
// should keylens stop between the two.
func (db *DB) compactHitsSQLite(ctx context.Context) (int, error) {
	var through int64
	if err := db.hr.QueryRowContext(ctx, `SELECT through FROM hit_log_folded`).Scan(&through); err != nil {
		return 0, err
	}
	if err := db.clearFolded(ctx, through); err != nil {
		return 0, err
	}
	f := &logFold{limits: compactLimit}
	if err := f.read(ctx, db.lr, `SELECT seq, data FROM hit_log WHERE seq > ? ORDER BY seq`, through); err != nil || len(f.seqs) == 0 {
		return 0, err
	}
	if len(f.damaged) > 0 {
		if err := db.writeOn(ctx, db.lw, func(tx *Tx) error { return setAside(ctx, tx, f.damaged) }); err != nil {
			return 0, err
		}
	}
	err := db.writeOn(ctx, db.hw, func(tx *Tx) error {
		// This process's compactor is the file's only one: through is
		// as read, unless a test or an operator ran another.
		res, err := tx.ExecContext(ctx, `UPDATE hit_log_folded SET through = ? WHERE through = ?`, f.last, through)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(err, errors.New("sqlstore: the hit log was folded meanwhile by another compactor"))
		}
		return upsertCounters(ctx, tx, f.hourly())
	})
	if err != nil {
		return 0, err
	}
	return f.series, db.clearFolded(ctx, f.last)
}

// clearFolded deletes the log's rows up to through, folded into the
// counters, unless this process deleted them already: after each of its
// compactions, so that what is left to do here is what a stop between a
// compaction's commit and its delete left, once.
func (db *DB) clearFolded(ctx context.Context, through int64) error {
	if through <= db.hits.cleared.Load() {
		return nil
	}
	if _, err := db.lw.ExecContext(ctx, `DELETE FROM hit_log WHERE seq <= ?`, through); err != nil {
		return err
	}
	db.hits.cleared.Store(through)
	return nil
}

// setAside copies log rows that could not be read into hit_log_damaged,
// in tx on the log's writer, before the compaction that met them removes
// them from the log: kept for whoever looks into the damage, instead of
// stopping every compaction and query at them.
func setAside(ctx context.Context, tx *Tx, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO hit_log_damaged (seq, series, data) SELECT seq, series, data FROM hit_log WHERE seq IN (`+
		placeholders(len(seqs))+`) ON CONFLICT (seq) DO NOTHING`, anys(seqs)...); err != nil {
		return err
	}
	tx.db.logger().Error("hit log rows could not be read (damaged on disk?); their hits are not counted, and the rows are kept in hit_log_damaged", "rows", seqs)
	return nil
}

// read takes rows of query (seq, data, in seq order) until the fold is
// full.
func (f *logFold) read(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for !f.full() && rows.Next() {
		var seq int64
		var data sql.RawBytes
		if err := rows.Scan(&seq, &data); err != nil {
			return err
		}
		f.add(seq, data)
	}
	return rows.Err()
}

// compactHitsPostgreSQL folds rows of the log in one transaction: taken
// with FOR UPDATE SKIP LOCKED (a few at a time, until the fold is full),
// upserted in key order, deleted.
func (db *DB) compactHitsPostgreSQL(ctx context.Context) (int, error) {
	f := &logFold{limits: compactLimit}
	err := db.writeOn(ctx, db.hw, func(tx *Tx) error {
		// Rows appended from now on are the next compaction's: this one
		// does not chase the log's end.
		var end int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM hit_log`).Scan(&end); err != nil {
			return err
		}
		for !f.full() {
			n := len(f.seqs)
			if err := f.read(ctx, tx, `SELECT seq, data FROM hit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 8 FOR UPDATE SKIP LOCKED`, f.last, end); err != nil {
				return err
			}
			if len(f.seqs) == n {
				break // nothing more to take
			}
		}
		if len(f.seqs) == 0 {
			return nil
		}
		if err := setAside(ctx, tx, f.damaged); err != nil {
			return err
		}
		if err := upsertCounters(ctx, tx, f.hourly()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM hit_log WHERE seq = ANY(?)`, f.seqs)
		return err
	})
	if err != nil {
		return 0, err
	}
	return f.series, nil
}

// raiseLogSeq makes the log's next seq greater than hit_log_folded.through,
// in case the log's file is older than the counters' (restored from a
// backup taken before theirs, as the README has it, or lost): a row
// committed with a seq at or below through would be taken for one already
// folded, never counted and deleted.
func (db *DB) raiseLogSeq(ctx context.Context) error {
	var through int64
	if err := db.hr.QueryRowContext(ctx, `SELECT through FROM hit_log_folded`).Scan(&through); err != nil {
		return err
	}
	return db.writeOn(ctx, db.lw, func(tx *Tx) error {
		// sqlite_sequence has a row for hit_log once a row was inserted.
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT 'hit_log', ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'hit_log')`, through); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'hit_log' AND seq < ?`, through, through)
		return err
	})
}

// HitBacklog is the series committed to the hit log and not yet folded
// into the counters, as last counted: by the compactor after each of its
// compactions (a count that sees every process's commits) plus this
// process's commits since. A hit writer refuses batches while it is high
// (analytics.Committer): every query reads the log's key filters, and the
// rows they allow (all of them for a key in every commit, as a fleet's
// busy keys are).
func (db *DB) HitBacklog() int64 { return db.hits.backlog.Load() }

// hitLog is the compactor's state.
type hitLog struct {
	backlog atomic.Int64
	cleared atomic.Int64 // SQLite: the log's rows up to it are deleted
	start   sync.Once
	wake    chan struct{} // a commit appended to the log
	stop    context.CancelFunc
	done    chan struct{}
}

// compactPoll is how often an idle compactor looks at the log when it may
// hold rows no commit of this process will wake it for: on PostgreSQL,
// other processes' commits; on SQLite, rows left by a failed count.
const compactPoll = time.Second

// StartCompactor starts folding the hit log into the counters, until
// Close: whatever the log holds, then each time a commit appends to it.
// The process that serves hits calls it (AddHits does too), so that
// commands that open the store for something else leave the log alone.
func (db *DB) StartCompactor() {
	db.hits.start.Do(func() {
		ctx, stop := context.WithCancel(context.Background())
		db.hits.wake, db.hits.stop, db.hits.done = make(chan struct{}, 1), stop, make(chan struct{})
		go db.compactor(ctx)
	})
}

func (db *DB) compactor(ctx context.Context) {
	defer close(db.hits.done)
	retry := backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		n, err := db.compactHits(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait <-chan time.Time
		switch {
		case err != nil:
			if keylens.ErrorCode(err) != keylens.EFULL { // the store logs that itself
				db.logger().Error("folding the hit log into the counters failed; queries still count it", "err", err)
			}
			wait = time.After(retry.Next())
		case n > 0:
			retry.Reset()
			db.countBacklog(ctx)
			continue
		default:
			if !db.countBacklog(ctx) || db.pg || db.hits.backlog.Load() > 0 {
				wait = time.After(compactPoll)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-db.hits.wake:
		case <-wait:
		}
	}
}

// countBacklog counts the series in the hit log (HitBacklog), reporting
// whether it could.
func (db *DB) countBacklog(ctx context.Context) bool {
	var n int64
	if err := db.lr.QueryRowContext(ctx, `SELECT COALESCE(SUM(series), 0) FROM hit_log`).Scan(&n); err != nil {
		if ctx.Err() == nil {
			db.logger().Warn("counting the hit log's series failed", "err", err)
		}
		return false
	}
	db.hits.backlog.Store(n)
	return true
}

// appended notes n series a commit appended to the log.
func (db *DB) appended(n int) {
	db.hits.backlog.Add(int64(n))
	select {
	case db.hits.wake <- struct{}{}:
	default:
	}
}

// stopCompactor ends the compactor's loop, and keeps it from starting
// later; a compaction under way rolls back.
func (db *DB) stopCompactor() {
	db.hits.start.Do(func() {})
	if db.hits.stop != nil {
		db.hits.stop()
		<-db.hits.done
	}
}

// readHitLog adds to buckets what the hit log's rows past through hold of
// q's keys and APIs in [from, to) (units of unit seconds: hours or days),
// in tx (see QueryHits for the snapshots).
func (db *DB) readHitLog(ctx context.Context, tx *sql.Tx, through int64, q keylens.HitQuery, unit, from, to int64, buckets []keylens.HitBucket) ([]keylens.HitBucket, error) {
	keys := make(map[string]bool, len(q.Keys))
	for _, k := range q.Keys {
		keys[k] = true
	}
	var apis map[string]bool
	if len(q.APIIDs) > 0 {
		apis = make(map[string]bool, len(q.APIIDs))
		for _, a := range q.APIIDs {
			apis[a] = true
		}
	}
	seqs, err := db.logRowsOf(ctx, tx, through, q.Keys)
	if err != nil {
		return nil, err
	}
	per := unit / 3600
	err = db.readLogRows(ctx, tx, seqs, func(data []byte) {
		n := len(buckets)
		err := scanHitLog(data, func(key []byte) bool { return keys[string(key)] }, func(_, api []byte, d *keylens.HitDelta) {
			t := floorDiv(d.Hour, per)
			if t < from || t >= to || (apis != nil && !apis[string(api)]) {
				return
			}
			buckets = append(buckets, keylens.HitBucket{Start: time.Unix(t*unit, 0).UTC(), Code: d.Code, Hits: d.Hits, Success: d.Success,
				Errors: d.Errors, LastHit: d.LastHit, LatencyUS: d.LatencyUS, LatencyCount: d.LatencyCount})
		})
		if err != nil { // the compactor sets it aside and logs it
			buckets = buckets[:n]
		}
	})
	return buckets, err
}

// logRowsOf returns the seqs of the log's rows past through that may hold
// series of keys, as their key filters have it, in tx: the filters are
// read, the series are not.
func (db *DB) logRowsOf(ctx context.Context, tx *sql.Tx, through int64, keys []string) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, db.q(`SELECT seq, keys FROM hit_log WHERE seq > ? ORDER BY seq`), through)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	probes := make([]keyProbes, len(keys))
	for i, k := range keys {
		probes[i] = probesOf(k)
	}
	var seqs []int64
	for rows.Next() {
		var seq int64
		var filter sql.RawBytes
		if err := rows.Scan(&seq, &filter); err != nil {
			return nil, err
		}
		for _, p := range probes {
			if p.in(filter) {
				seqs = append(seqs, seq)
				break
			}
		}
	}
	return seqs, rows.Err()
}

// readLogRows calls fn with the data of the log's rows seqs, in tx, a
// statement per logRowsRead of them.
func (db *DB) readLogRows(ctx context.Context, tx *sql.Tx, seqs []int64, fn func(data []byte)) error {
	const logRowsRead = 500
	for len(seqs) > 0 {
		n := min(len(seqs), logRowsRead)
		rows, err := tx.QueryContext(ctx, db.q(`SELECT data FROM hit_log WHERE seq IN (`+placeholders(n)+`)`), anys(seqs[:n])...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var data sql.RawBytes
			if err := rows.Scan(&data); err != nil {
				rows.Close()
				return err
			}
			fn(data)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}
