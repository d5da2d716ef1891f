package hits

import (
	"sync"
	"sync/atomic"
	"time"
)

// Counter counts hits per series in memory. Recording a hit of an existing
// series takes one uncontended shard lock and allocates nothing; it never
// waits on a network or a store. Drain takes what was counted.
type Counter struct {
	shards    [counterShards]counterShard
	maxSeries int64

	series  atomic.Int64 // series held, all shards
	dropped atomic.Int64 // hits refused: a new series beyond maxSeries
}

const counterShards = 64 // a power of two

type counterShard struct {
	mu       sync.Mutex
	m        map[string]*keySeries // by key hash
	recorded int64                 // hits counted since the start
	_        [104]byte             // shards never share a cache line, however aligned
}

// keySeries are one key's series. A key has few at a time (its APIs and
// the status codes it met this hour), so a short slice searched in order
// beats hashing a composite map key on every hit.
type keySeries struct {
	series []counted
}

type counted struct {
	Series
	idle int // drains since the last hit
}

// DefaultMaxSeries bounds the series a Counter holds between drains. A
// series held costs the memory docs/benchmarks.md reports.
const DefaultMaxSeries = 1 << 18

// NewCounter returns a counter that holds up to maxSeries series (0 for
// DefaultMaxSeries); hits of a new series beyond that are dropped and
// counted, never blocking.
func NewCounter(maxSeries int) *Counter {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	c := &Counter{maxSeries: int64(maxSeries)}
	for i := range c.shards {
		c.shards[i].m = map[string]*keySeries{}
	}
	return c
}

// shardOf spreads series over shards by the key hash's last bytes (hex
// digests: already uniform) and the code, without hashing the whole key.
func shardOf(key string, code int) int {
	h := uint(code)
	if n := len(key); n >= 2 {
		h += uint(key[n-1])*31 + uint(key[n-2])*7
	}
	return int(h & (counterShards - 1))
}

// Record counts n hits (n >= 1) of keyHash on apiID at unixNano answered
// with code; latency, when not negative, is each hit's latency. It reports
// false when the hits were dropped because the counter is full.
func (c *Counter) Record(keyHash, apiID string, unixNano int64, code int, n int64, latency time.Duration) bool {
	hour := HourOf(unixNano)
	s := &c.shards[shardOf(keyHash, code)]
	s.mu.Lock()
	ks := s.m[keyHash]
	var e *counted
	if ks != nil {
		for i := range ks.series {
			if x := &ks.series[i]; x.Hour == hour && x.Code == code && x.APIID == apiID {
				e = x
				break
			}
		}
	}
	if e == nil {
		if c.series.Load() >= c.maxSeries {
			s.mu.Unlock()
			c.dropped.Add(n)
			return false
		}
		if ks == nil {
			ks = &keySeries{}
			s.m[keyHash] = ks
		}
		ks.series = append(ks.series, counted{Series: Series{KeyHash: keyHash, APIID: apiID, Hour: hour, Code: code}})
		e = &ks.series[len(ks.series)-1]
		c.series.Add(1)
	}
	e.add(n, code, unixNano, latency)
	e.idle = 0
	s.recorded += n
	s.mu.Unlock()
	return true
}

// Drain appends to dst every series' counts since the last drain and
// zeroes them. Series idle for several drains are forgotten, so that the
// maps hold what is in use while hot series keep their place (recording
// one allocates nothing).
func (c *Counter) Drain(dst []Series) []Series {
	const forgetAfter = 3 // drains without a hit
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for key, ks := range s.m {
			kept := ks.series[:0]
			for _, e := range ks.series {
				if e.Hits == 0 {
					if e.idle++; e.idle >= forgetAfter {
						c.series.Add(-1)
						continue
					}
					kept = append(kept, e)
					continue
				}
				dst = append(dst, e.Series)
				e.Series = Series{KeyHash: e.KeyHash, APIID: e.APIID, Hour: e.Hour, Code: e.Code}
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
	return dst
}

// Series reports how many series the counter holds.
func (c *Counter) Series() int { return int(c.series.Load()) }

// Pending reports the hits counted and not yet drained. It visits every
// series: for metrics, not for a request path.
func (c *Counter) Pending() int64 {
	var n int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, ks := range s.m {
			for j := range ks.series {
				n += ks.series[j].Hits
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Dropped reports how many hits were refused for lack of room.
func (c *Counter) Dropped() int64 { return c.dropped.Load() }

// Recorded reports how many hits were counted since the start.
func (c *Counter) Recorded() int64 {
	var n int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.recorded
		s.mu.Unlock()
	}
	return n
}
