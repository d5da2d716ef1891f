package keylens

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/keylens/keylens/identity/hits"
)

// HitDelta is what one batch adds to one series of counters: a key's
// requests to one API in one UTC hour that answered one status code. The
// type is the hit pipeline's (identity/hits), shared with the plugin, so
// that what a gateway counts is what the store adds, with one validator.
type HitDelta = hits.Series

// HitBatch is deltas under a batch id: a store applies it whole or not at
// all, and an id once.
type HitBatch = hits.Batch

// Resolutions of a hit query.
const (
	ResHour  = "hour"
	ResDay   = "day"
	ResMonth = "month"
)

// HitQuery selects counters: the keys (hashes), the UTC time range
// [From, To), the bucket size, and optionally the APIs.
type HitQuery struct {
	Keys     []string
	From, To time.Time
	Res      string // ResHour, ResDay or ResMonth
	// APIIDs, when not empty, keeps only hits to these APIs.
	APIIDs []string
	// ByCode splits every period into one row per status code.
	ByCode bool
}

// HitRow is one period's counters, in Tyk's aggregate analytics shape.
type HitRow struct {
	Period time.Time // start of the period, UTC
	// Code is the row's status code when the query is ByCode; otherwise
	// the period's most frequent status code (the lowest on a tie).
	Code    int
	Hits    int64
	Success int64
	Errors  int64
	LastHit time.Time
	// LatencyMS is the period's mean reported latency; 0 when none was.
	LatencyMS float64
}

// HitWriter takes hit batches: a store, a committer grouping them into
// fewer transactions (analytics.Committer), or a portal's admin API (a
// --portal sidecar's rest.Client).
type HitWriter interface {
	// AddHits applies batches in one transaction, with their ids, and
	// returns once they are stored: acknowledged means stored. A batch
	// whose id was applied before (or earlier in batches) is skipped, so
	// a writer that retries after an unknown outcome never counts twice.
	// An empty id is never remembered. applied[i] reports whether
	// batches[i] was applied now. Batches must have passed ValidateHits,
	// where they entered: AddHits does not check them again (a portal's
	// admin API, which is such an entry, answers EINVALID, with nothing
	// applied). EUNAVAILABLE when the writer cannot take them now (try
	// again later).
	AddHits(ctx context.Context, batches []HitBatch) (applied []bool, err error)
}

// HitReserver is a HitWriter that can take room for a batch before the
// batch is parsed, so that an entry refuses what it cannot take before
// doing the work (analytics.Committer).
type HitReserver interface {
	HitWriter
	// Reserve takes room for up to series series, or answers
	// EUNAVAILABLE at once when there is none.
	Reserve(series int) (HitReservation, error)
}

// HitReservation is room a HitReserver took: AddHits commits a batch in
// it (its series no more than were reserved), or Release gives it back.
// Either is called once; Release after AddHits does nothing.
type HitReservation interface {
	HitWriter
	Release()
}

// ValidateHits checks batches where hits enter keylens (POST /hits, the
// admin API's POST /api/keylens/hits, the Tyk analytics consumer): EINVALID
// naming the first batch that fails hits.Batch.Validate. What passes is
// handed on as it is; the committer and the store do not check it again.
func ValidateHits(batches []HitBatch) error {
	for i := range batches {
		if err := batches[i].Validate(); err != nil {
			return Errorf(EINVALID, "%s", err.Error())
		}
	}
	return nil
}

// HitKeyHash is the hash of the key a hit names (the key member of POST
// /hits, which the gateway's analytics call APIKey): a key hash
// (IsKeyHash) as it is, and a raw key hashed as the gateway hashes it. A
// Basic key is stored, and named in the gateway's own analytics, under the
// key of (org, username), which is such a raw key; a writer that only has
// a request's Basic credentials names it by its username instead, and the
// hit counts for that Basic key. A key that is neither a hash nor shaped
// like a gateway key (KeyOrg) is therefore looked up as a Basic username
// in basic (no lookup when basic is nil); a username no key has is hashed
// as a raw key, like any key keylens does not hold.
func HitKeyHash(ctx context.Context, key string, basic CredentialService) (string, error) {
	if basic == nil || IsKeyHash(key) || KeyOrg(key) != "" {
		return KeyHashOf(key), nil
	}
	c, err := basic.ResolveBasicUser(ctx, key)
	switch ErrorCode(err) {
	case "":
		return c.Key.Hash, nil
	case ENOTFOUND:
		return HashKey(key), nil
	}
	return "", err
}

// HitBacklogger is a HitWriter that stores committed hits first and folds
// them into its counters later: HitBacklog is the series committed and not
// yet folded, which every query of its counters reads besides.
type HitBacklogger interface {
	HitBacklog() int64
}

// HitService stores and aggregates per-key hit counters.
type HitService interface {
	HitWriter
	// QueryHits aggregates the counters q selects, oldest period first.
	// EINVALID for an unknown resolution or From after To.
	QueryHits(ctx context.Context, q HitQuery) ([]HitRow, error)
}

// Validate reports a query a store cannot answer.
func (q *HitQuery) Validate() error {
	switch {
	case q.Res != ResHour && q.Res != ResDay && q.Res != ResMonth:
		return Errorf(EINVALID, "res must be hour, day or month")
	case q.From.After(q.To):
		return Errorf(EINVALID, "from is after to")
	}
	return nil
}

// HitBucket is a store's raw aggregate: the counters of one hour or day and
// one status code, summed over the queried keys and APIs.
type HitBucket struct {
	Start                   time.Time
	Code                    int
	Hits, Success, Errors   int64
	LastHit                 int64 // Unix nanoseconds
	LatencyUS, LatencyCount int64
}

// FoldHits folds a store's buckets into the rows of a query at res: by
// period, or by period and code. Rows come oldest first, then by code.
func FoldHits(buckets []HitBucket, res string, byCode bool) []HitRow {
	type acc struct {
		row          HitRow
		lastHit      int64
		latency, lat int64
		codeHits     map[int]int64
	}
	type key struct {
		period time.Time
		code   int
	}
	index := map[key]*acc{}
	var order []*acc
	for _, b := range buckets {
		k := key{period: periodStart(b.Start, res)}
		if byCode {
			k.code = b.Code
		}
		a := index[k]
		if a == nil {
			a = &acc{row: HitRow{Period: k.period, Code: k.code}, codeHits: map[int]int64{}}
			index[k] = a
			order = append(order, a)
		}
		a.row.Hits += b.Hits
		a.row.Success += b.Success
		a.row.Errors += b.Errors
		a.lastHit = max(a.lastHit, b.LastHit)
		a.latency += b.LatencyUS
		a.lat += b.LatencyCount
		a.codeHits[b.Code] += b.Hits
	}
	rows := make([]HitRow, len(order))
	for i, a := range order {
		r := a.row
		if !byCode {
			best := int64(-1)
			for code, n := range a.codeHits {
				if n > best || (n == best && code < r.Code) {
					r.Code, best = code, n
				}
			}
		}
		if a.lastHit > 0 {
			r.LastHit = time.Unix(0, a.lastHit).UTC()
		}
		if a.lat > 0 {
			r.LatencyMS = float64(a.latency) / float64(a.lat) / 1000
		}
		rows[i] = r
	}
	slices.SortFunc(rows, func(a, b HitRow) int {
		if c := a.Period.Compare(b.Period); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	return rows
}

// periodStart is the start of the UTC hour, day or month holding t.
func periodStart(t time.Time, res string) time.Time {
	t = t.UTC()
	switch res {
	case ResHour:
		return t.Truncate(time.Hour)
	case ResMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
