// Package analytics counts every key's hits and errors on the request path,
// flushes the counts to the portal store in batches, and exports them to
// Prometheus.
package analytics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/keylens/keylens/portalstore"
)

// Recorder counts hits per (key hash, API id, UTC hour, status code) in
// memory. Recording an existing series takes one uncontended shard lock and
// allocates nothing; it never waits on the store. A Flusher drains it.
type Recorder struct {
	shards    [recorderShards]recorderShard
	maxSeries int64

	series  atomic.Int64 // series held, all shards
	dropped atomic.Int64 // hits refused: a new series beyond maxSeries
}

const recorderShards = 64 // a power of two

type recorderShard struct {
	mu       sync.Mutex
	m        map[string]*keySeries // by key hash
	recorded int64                 // hits counted since the start
	_        [104]byte             // shards never share a cache line, however aligned
}

// keySeries are one key's series. A key has few at a time (its APIs and
// the status codes it met this hour), so a short slice searched in order
// beats hashing a composite map key on every hit.
type keySeries struct {
	series []series
}

type series struct {
	api  string
	hour int64
	code int
	counts
}

// counts are a series' hits since the last drain.
type counts struct {
	hits, success, errors   int64
	lastHit                 int64
	latencyUS, latencyCount int64
	idle                    int // drains since the last hit
}

// DefaultMaxSeries bounds the series a Recorder holds between flushes.
const DefaultMaxSeries = 1 << 20

// NewRecorder returns a recorder that holds up to maxSeries series (0 for
// DefaultMaxSeries); hits of a new series beyond that are dropped and
// counted, never blocking.
func NewRecorder(maxSeries int) *Recorder {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	r := &Recorder{maxSeries: int64(maxSeries)}
	for i := range r.shards {
		r.shards[i].m = map[string]*keySeries{}
	}
	return r
}

// shardOf spreads series over shards by the key hash's last bytes (hex
// digests: already uniform) and the code, without hashing the whole key.
func shardOf(key string, code int) int {
	h := uint(code)
	if n := len(key); n >= 2 {
		h += uint(key[n-1])*31 + uint(key[n-2])*7
	}
	return int(h & (recorderShards - 1))
}

// Record counts one hit of keyHash on apiID at t answered with code;
// latency < 0 means none was measured. It reports false when the hit was
// dropped because the recorder is full.
func (r *Recorder) Record(keyHash, apiID string, t time.Time, code int, latency time.Duration) bool {
	return r.RecordN(keyHash, apiID, t, code, 1, latency)
}

// RecordN counts n hits at once (n >= 1), as Record does; latency, when not
// negative, is the latency of each.
func (r *Recorder) RecordN(keyHash, apiID string, t time.Time, code int, n int64, latency time.Duration) bool {
	ns := t.UnixNano()
	hour := floorDiv(ns, int64(time.Hour))
	s := &r.shards[shardOf(keyHash, code)]
	s.mu.Lock()
	ks := s.m[keyHash]
	var c *counts
	if ks != nil {
		for i := range ks.series {
			if e := &ks.series[i]; e.hour == hour && e.code == code && e.api == apiID {
				c = &e.counts
				break
			}
		}
	}
	if c == nil {
		if r.series.Load() >= r.maxSeries {
			s.mu.Unlock()
			r.dropped.Add(n)
			return false
		}
		if ks == nil {
			ks = &keySeries{}
			s.m[keyHash] = ks
		}
		ks.series = append(ks.series, series{api: apiID, hour: hour, code: code})
		c = &ks.series[len(ks.series)-1].counts
		r.series.Add(1)
	}
	c.hits += n
	switch {
	case code >= 200 && code < 300:
		c.success += n
	case code >= 400:
		c.errors += n
	}
	if ns > c.lastHit {
		c.lastHit = ns
	}
	if latency >= 0 {
		c.latencyUS += n * latency.Microseconds()
		c.latencyCount += n
	}
	c.idle = 0
	s.recorded += n
	s.mu.Unlock()
	return true
}

// drain moves every series' counts since the last drain into deltas and
// zeroes them. Series idle for several drains are forgotten, so that the
// maps hold what is in use while hot series keep their counters (a record
// of an existing series allocates nothing).
func (r *Recorder) drain(deltas []portalstore.HitDelta) []portalstore.HitDelta {
	const forgetAfter = 3 // drains without a hit
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for key, ks := range s.m {
			kept := ks.series[:0]
			for _, e := range ks.series {
				if e.hits == 0 {
					if e.idle++; e.idle >= forgetAfter {
						r.series.Add(-1)
						continue
					}
					kept = append(kept, e)
					continue
				}
				deltas = append(deltas, portalstore.HitDelta{KeyHash: key, APIID: e.api, Hour: e.hour, Code: e.code,
					Hits: e.hits, Success: e.success, Errors: e.errors, LastHit: e.lastHit,
					LatencyUS: e.latencyUS, LatencyCount: e.latencyCount})
				e.counts = counts{}
				kept = append(kept, e)
			}
			clear(ks.series[len(kept):]) // drop the forgotten ones' strings
			ks.series = kept
			if len(kept) == 0 {
				delete(s.m, key)
			}
		}
		s.mu.Unlock()
	}
	return deltas
}

// Series reports how many series the recorder holds.
func (r *Recorder) Series() int { return int(r.series.Load()) }

// Dropped reports how many hits were refused for lack of room.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Recorded reports how many hits were counted since the start.
func (r *Recorder) Recorded() int64 {
	var n int64
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n += s.recorded
		s.mu.Unlock()
	}
	return n
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// unflushed counts the hits recorded since the last drain.
func (r *Recorder) unflushed() int64 {
	var n int64
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, ks := range s.m {
			for i := range ks.series {
				n += ks.series[i].hits
			}
		}
		s.mu.Unlock()
	}
	return n
}
