package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// shipper counts hits per (key hash, API, hour, status) in memory and sends
// them to the sidecar's POST /hits every flush interval, in the background.
// Recording never blocks on the network; a batch that fails is sent again,
// under the same X-Keylens-Batch id, so the sidecar counts it once. The
// series held are bounded; hits beyond are dropped and counted.
type shipper struct {
	s      settings
	client *http.Client
	shards [hitShards]hitShard
	series atomic.Int64

	dropped atomic.Int64 // hits not counted: no room
	sent    atomic.Int64 // hits the sidecar acknowledged

	once    sync.Once
	mu      sync.Mutex // one flush at a time
	pending []hitOut
	batchID string
	writer  string
	seq     uint64
}

const hitShards = 32

// maxHitCount is the most hits one /hits element may stand for.
const maxHitCount = 1_000_000_000

type hitShard struct {
	mu sync.Mutex
	m  map[string][]hitCount // by key hash: a key has few series at a time, found in order
	_  [48]byte
}

type hitCount struct {
	api  string
	hour int64
	code int
	n    int64
	last int64 // Unix nanoseconds
	// The latencies measured, of latN of the n hits (nanoseconds).
	latSum, latN int64
}

// hitOut is one element of a POST /hits body.
type hitOut struct {
	Key   string    `json:"key"`
	APIID string    `json:"api_id"`
	Code  int       `json:"code"`
	Time  time.Time `json:"time"`
	Count int64     `json:"count"`
	// LatencyMS is the mean latency of the series' measured hits.
	LatencyMS *float64 `json:"latency_ms,omitempty"`
}

func newShipper(s settings) *shipper {
	var b [8]byte
	_, _ = rand.Read(b[:])
	sh := &shipper{s: s, client: &http.Client{Timeout: 10 * time.Second}, writer: hex.EncodeToString(b[:])}
	for i := range sh.shards {
		sh.shards[i].m = map[string][]hitCount{}
	}
	return sh
}

// record counts one hit, with its latency when measured (latency < 0: not
// measured). The shipper's goroutine starts with the first.
func (sh *shipper) record(keyHash, apiID string, code int, latency time.Duration) {
	sh.once.Do(func() { go sh.run() })
	now := nowNano()
	hour := now / int64(time.Hour)
	s := &sh.shards[shardOf(keyHash, code)]
	s.mu.Lock()
	series := s.m[keyHash]
	for i := range series {
		if c := &series[i]; c.hour == hour && c.code == code && c.api == apiID {
			c.n++
			c.last = now
			c.addLatency(latency)
			s.mu.Unlock()
			return
		}
	}
	if sh.series.Load() >= int64(sh.s.MaxSeries) {
		s.mu.Unlock()
		sh.dropped.Add(1)
		return
	}
	s.m[keyHash] = append(series, hitCount{api: apiID, hour: hour, code: code, n: 1, last: now})
	series = s.m[keyHash]
	series[len(series)-1].addLatency(latency)
	sh.series.Add(1)
	s.mu.Unlock()
}

func shardOf(key string, code int) int {
	h := uint(code)
	if n := len(key); n >= 2 {
		h += uint(key[n-1])*31 + uint(key[n-2])*7
	}
	return int(h % hitShards)
}

// run flushes every interval for the life of the gateway: a Go plugin is
// never unloaded, and the gateway offers it no shutdown hook, so at most
// one interval of hits is lost when the gateway stops.
func (sh *shipper) run() {
	t := time.NewTicker(sh.s.FlushInterval)
	defer t.Stop()
	for range t.C {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := sh.flush(ctx); err != nil {
			logger.Printf("sending hits to the keylens sidecar failed, keeping them: %v", err)
		}
		cancel()
	}
}

// drain moves the counts into hitOut elements and empties the maps.
func (sh *shipper) drain(out []hitOut) []hitOut {
	for i := range sh.shards {
		s := &sh.shards[i]
		s.mu.Lock()
		var n int
		for key, series := range s.m {
			for _, c := range series {
				for left := c.n; left > 0; left -= min(left, maxHitCount) { // the sidecar's limit per element
					out = append(out, hitOut{Key: key, APIID: c.api, Code: c.code, Time: time.Unix(0, c.last).UTC(), Count: min(left, maxHitCount), LatencyMS: c.latencyMS()})
				}
			}
			n += len(series)
		}
		sh.series.Add(-int64(n))
		clear(s.m)
		s.mu.Unlock()
	}
	return out
}

// flush sends the batch that failed last time, if any, then what was
// counted since.
func (sh *shipper) flush(ctx context.Context) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.pending != nil {
		if err := sh.send(ctx); err != nil {
			return err
		}
	}
	sh.pending = sh.drain(nil)
	if len(sh.pending) == 0 {
		sh.pending = nil
		return nil
	}
	sh.seq++
	sh.batchID = sh.writer + "-" + strconv.FormatUint(sh.seq, 10)
	return sh.send(ctx)
}

// hitsChunk keeps each POST /hits well inside the sidecar's body limit.
const hitsChunk = 4000

// send posts the pending batch in chunks, each under an id derived from the
// batch's, so that a retry re-sends them all and the sidecar counts each
// once. On success the batch is forgotten.
func (sh *shipper) send(ctx context.Context) error {
	var n int64
	for i := range sh.pending {
		n += sh.pending[i].Count
	}
	for i := 0; i < len(sh.pending); i += hitsChunk {
		status, msg, err := sh.post(ctx, sh.batchID+"/"+strconv.Itoa(i/hitsChunk), sh.pending[i:min(i+hitsChunk, len(sh.pending))])
		switch {
		case err != nil:
			return err
		case status == http.StatusOK:
		case status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			// Refused for good (a wrong secret, a body the sidecar
			// will never take): sending it again would block every
			// later batch.
			logger.Printf("the keylens sidecar refused a batch of hits (%d): %s", status, msg)
			sh.dropped.Add(n)
			sh.pending, sh.batchID = nil, ""
			return nil
		default:
			return fmt.Errorf("sidecar answered %d: %s", status, msg)
		}
	}
	sh.sent.Add(n)
	sh.pending, sh.batchID = nil, ""
	return nil
}

func (sh *shipper) post(ctx context.Context, id string, hits []hitOut) (int, []byte, error) {
	body, err := json.Marshal(hits)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sh.s.SidecarURL+"/hits", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Keylens-Batch", id)
	if sh.s.HitsSecret != "" {
		req.Header.Set("Authorization", "Bearer "+sh.s.HitsSecret)
	}
	res, err := sh.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return res.StatusCode, msg, nil
}

func (c *hitCount) addLatency(d time.Duration) {
	if d >= 0 {
		c.latSum += int64(d)
		c.latN++
	}
}

// latencyMS is the mean of the measured latencies, in ms; the sidecar
// takes it as each hit's, which keeps the series' mean.
func (c *hitCount) latencyMS() *float64 {
	if c.latN == 0 {
		return nil
	}
	ms := float64(c.latSum) / float64(c.latN) / float64(time.Millisecond)
	return &ms
}
