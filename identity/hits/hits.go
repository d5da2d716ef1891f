// Package hits is keylens's one hit pipeline, shared by the keylens binary
// and the Tyk plugin: the counters of a series (a key's requests to one API
// in one UTC hour that answered one status code), the POST /hits wire
// element with its one validator, an in-process Counter that records hits
// without waiting, and a Batcher that ships what a Counter holds under
// batch ids, retrying until it is acknowledged. It depends on the standard
// library only, so that a Tyk Go plugin can carry it.
package hits

import (
	"errors"
	"fmt"
	"time"
)

// Limits of the pipeline, the same for every writer and reader.
const (
	// MaxPerRequest bounds the elements of one POST /hits body.
	MaxPerRequest = 10000
	// MaxBody bounds one POST /hits body, in bytes.
	MaxBody = 1 << 20
	// MaxCount bounds the hits one element stands for; sums of many stay
	// far from overflowing the counters.
	MaxCount = 1_000_000_000
	// MaxKey bounds a key or key hash; real keys and JWTs are far shorter.
	MaxKey = 8192
	// MaxAPIID bounds an API id.
	MaxAPIID = 256
	// MaxBatchID bounds a batch id (X-Keylens-Batch).
	MaxBatchID = 256
	// MinCode and MaxCode bound a status code.
	MinCode, MaxCode = 100, 599
	// Skew is how far in the future a hit's time may be: clocks differ a
	// little, not by days.
	Skew = time.Hour
	// MaxLatency bounds one hit's latency.
	MaxLatency = 24 * time.Hour
	// MaxSeriesHits and MaxSeriesLatencyUS bound what one series of a
	// batch adds, so that stored sums stay far from overflowing.
	MaxSeriesHits      = MaxCount * MaxPerRequest
	MaxSeriesLatencyUS = 1 << 60
)

// Series are the counters of one series: what one batch adds to it, or
// what a store holds. Success counts 2xx answers, Errors those >= 400.
type Series struct {
	KeyHash string `json:"key_id"`
	APIID   string `json:"api_id"`
	Hour    int64  `json:"hour"` // Unix seconds / 3600
	Code    int    `json:"code"`
	Hits    int64  `json:"hits"`
	Success int64  `json:"success"`
	Errors  int64  `json:"error"`
	// LastHit is the latest hit, Unix nanoseconds.
	LastHit int64 `json:"last_hit"`
	// LatencyUS sums the latencies measured of the hits, in microseconds;
	// LatencyCount says how many hits had one.
	LatencyUS    int64 `json:"latency_us"`
	LatencyCount int64 `json:"latency_count"`
}

// Batch is what a writer sends at once: series under an id. A store applies
// a batch whole or not at all, and applies an id once, so that a writer
// retrying after an unknown outcome never counts twice. An empty ID is
// never remembered.
type Batch struct {
	ID     string   `json:"batch_id"`
	Series []Series `json:"deltas"`
}

// ErrInvalid wraps every validation failure.
var ErrInvalid = errors.New("invalid hits")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ValidCode reports whether code is an HTTP status the pipeline counts.
func ValidCode(code int) bool { return code >= MinCode && code <= MaxCode }

// Validate reports series no store should take.
func (s *Series) Validate() error {
	switch {
	case s.KeyHash == "" || len(s.KeyHash) > MaxKey:
		return invalid("a series needs a key of at most %d bytes", MaxKey)
	case len(s.APIID) > MaxAPIID:
		return invalid("api_id is longer than %d bytes", MaxAPIID)
	case !ValidCode(s.Code):
		return invalid("status code %d is not an HTTP status (%d-%d)", s.Code, MinCode, MaxCode)
	case s.Hour < 0:
		return invalid("hour %d is before 1970", s.Hour)
	case s.Hits < 1 || s.Hits > MaxSeriesHits || s.Success < 0 || s.Errors < 0 || s.Success > s.Hits || s.Errors > s.Hits-s.Success ||
		s.LatencyUS < 0 || s.LatencyUS > MaxSeriesLatencyUS || s.LatencyCount < 0 || s.LatencyCount > s.Hits:
		return invalid("inconsistent counts in a series")
	}
	return nil
}

// Validate reports a batch no store should take.
func (b *Batch) Validate() error {
	if len(b.ID) > MaxBatchID {
		return invalid("batch id is longer than %d bytes", MaxBatchID)
	}
	if len(b.Series) == 0 {
		return invalid("a batch needs at least one series")
	}
	for i := range b.Series {
		if err := b.Series[i].Validate(); err != nil {
			return fmt.Errorf("series %d: %w", i, err)
		}
	}
	return nil
}

// Hits counts the hits of a batch.
func (b *Batch) Hits() int64 {
	var n int64
	for i := range b.Series {
		n += b.Series[i].Hits
	}
	return n
}

// add counts n hits answered with code at unixNano, each of latency when
// latency >= 0.
func (s *Series) add(n int64, code int, unixNano int64, latency time.Duration) {
	s.Hits += n
	switch {
	case code >= 200 && code < 300:
		s.Success += n
	case code >= 400:
		s.Errors += n
	}
	s.LastHit = max(s.LastHit, unixNano)
	if latency >= 0 {
		us := latency.Microseconds()
		if us > 0 && n > (MaxSeriesLatencyUS-s.LatencyUS)/us {
			s.LatencyUS = MaxSeriesLatencyUS // saturate rather than wrap (Parse refuses such elements)
		} else {
			s.LatencyUS += n * us
		}
		s.LatencyCount += n
	}
}

// Merge adds o's counters to s; they must be of the same series.
func (s *Series) Merge(o *Series) {
	s.Hits += o.Hits
	s.Success += o.Success
	s.Errors += o.Errors
	s.LastHit = max(s.LastHit, o.LastHit)
	s.LatencyUS += o.LatencyUS
	s.LatencyCount += o.LatencyCount
}

// seriesKey identifies a series; per is the hours of a row (1 hourly, 24 daily).
type seriesKey struct {
	key, api string
	t        int64
	code     int
}

// Fold sums the series that fall on one row of a table whose time unit is
// per hours (1 for hourly rows, 24 for daily ones), in the order they
// first appear; the Hour member of the result holds that table's time
// value. Callers may append to dst, or pass series[:0] to fold in place
// (each series is read before the place it held can be written).
func Fold(dst, series []Series, per int64) []Series {
	index := make(map[seriesKey]int, len(series))
	for _, s := range series {
		k := seriesKey{s.KeyHash, s.APIID, floorDiv(s.Hour, per), s.Code}
		if i, ok := index[k]; ok {
			dst[i].Merge(&s)
			continue
		}
		index[k] = len(dst)
		s.Hour = k.t
		dst = append(dst, s)
	}
	return dst
}

// HourOf is the Unix hour holding unixNano.
func HourOf(unixNano int64) int64 { return floorDiv(unixNano, int64(time.Hour)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Of returns the counters of n hits (n >= 1) of keyHash on apiID at
// unixNano answered with code, each of latency when latency >= 0: what a
// writer that aggregates itself (a Tyk analytics consumer) adds per hit
// before folding (Fold).
func Of(keyHash, apiID string, unixNano int64, code int, n int64, latency time.Duration) Series {
	s := Series{KeyHash: keyHash, APIID: apiID, Hour: HourOf(unixNano), Code: code}
	s.add(n, code, unixNano, latency)
	return s
}
