package tykanalytics

import (
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/hits"
)

// NoSessionKey is the APIKey of a record whose request had no session (a
// keyless API, a missing or unknown key) when the gateway hashes keys: the
// murmur32 of the empty string. Without hashing such records carry "".
const NoSessionKey = "00000000"

// Reasons a record is rejected (set aside in the dead-letter list).
const (
	// RejectMalformed: not a record (truncated, wrong types, oversized
	// strings).
	RejectMalformed = "malformed"
	// RejectUncountable: a record, but not one the pipeline can count: a
	// status outside 100-599, a time before 1970 or more than an hour
	// ahead.
	RejectUncountable = "uncountable"
)

// Tally is what a chunk of records adds up to.
type Tally struct {
	// Series are the chunk's counts per key, API, UTC hour and status,
	// folded: what the chunk's batch commits.
	Series []hits.Series
	// Counted is the records counted for a key.
	Counted int
	// NoSession counts the records without a session, by API and status:
	// never counted for a key.
	NoSession map[APICode]int64
	// Rejected lists the records not counted, by index, with why.
	Rejected []Rejection
	// Oldest and Newest are the earliest and latest TimeStamp counted,
	// Unix nanoseconds; 0 when nothing was.
	Oldest, Newest int64

	each []hits.Series // one per record, before folding
}

// APICode is an API and a status.
type APICode struct {
	APIID string
	Code  int
}

// Rejection is a record not counted.
type Rejection struct {
	Index  int
	Reason string // RejectMalformed or RejectUncountable
	Err    error
}

// Count decodes records (the elements of a chunk, in order) received at
// now and adds them up into t, which is reset first; t's buffers are kept
// for the next chunk.
func (d *Decoder) Count(records []string, now time.Time, t *Tally) {
	t.Series, t.each, t.Rejected = t.Series[:0], t.each[:0], t.Rejected[:0]
	t.Counted, t.Oldest, t.Newest = 0, 0, 0
	if t.NoSession == nil {
		t.NoSession = make(map[APICode]int64)
	}
	clear(t.NoSession)
	latest := now.Add(hits.Skew)
	var rec Record
	for i, b := range records {
		if err := d.Decode(b, &rec); err != nil {
			t.Rejected = append(t.Rejected, Rejection{i, RejectMalformed, err})
			continue
		}
		if err := countable(&rec, latest); err != nil {
			t.Rejected = append(t.Rejected, Rejection{i, RejectUncountable, err})
			continue
		}
		if rec.APIKey == "" || rec.APIKey == NoSessionKey {
			t.NoSession[APICode{rec.APIID, rec.ResponseCode}]++
			continue
		}
		at := rec.TimeStamp.UnixNano()
		latency := time.Duration(-1)
		if rec.RequestTime >= 0 && rec.RequestTime <= int64(hits.MaxLatency/time.Millisecond) {
			latency = time.Duration(rec.RequestTime) * time.Millisecond
		}
		t.each = append(t.each, hits.Of(keylens.KeyHashOf(rec.APIKey), rec.APIID, at, rec.ResponseCode, 1, latency))
		t.Counted++
		if t.Oldest == 0 || at < t.Oldest {
			t.Oldest = at
		}
		t.Newest = max(t.Newest, at)
	}
	t.Series = hits.Fold(t.Series, t.each, 1)
}

// countable reports why a well-formed record cannot be counted, if it
// cannot: the checks hits.Series.Validate makes, so that one record never
// makes a chunk's whole batch invalid.
func countable(rec *Record, latest time.Time) error {
	switch {
	case !hits.ValidCode(rec.ResponseCode):
		return uncountable("status %d is not an HTTP status", rec.ResponseCode)
	case rec.TimeStamp.Unix() < 0:
		return uncountable("time %d is before 1970", rec.TimeStamp.Unix())
	case rec.TimeStamp.After(latest):
		return uncountable("time %s is in the future", rec.TimeStamp.UTC().Format(time.RFC3339))
	}
	return nil
}
