package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/keylens/keylens/portalstore"
)

// Sink is where counts go: the portal store, or a portal's admin API.
type Sink interface {
	AddHits(ctx context.Context, batchID string, deltas []portalstore.HitDelta) error
}

// FlusherOptions configure NewFlusher; zero values take the defaults.
type FlusherOptions struct {
	Interval time.Duration // between flushes; default 1 s
	Logger   *slog.Logger
	Metrics  *Metrics
}

// Flusher drains a Recorder into a Sink every interval. A batch that fails
// is kept, with its id, and sent again before anything newer, so a retry
// after an unknown outcome is recognised by the sink and never counted
// twice. Meanwhile new hits accumulate in the recorder, whose series limit
// bounds the memory held; what it cannot hold it drops and counts.
type Flusher struct {
	rec  *Recorder
	sink Sink
	opts FlusherOptions
	m    *Metrics

	mu      sync.Mutex // one flush at a time
	writer  string     // random per process: batch ids never repeat across restarts
	seq     uint64
	pending []portalstore.HitDelta
	batchID string
}

// NewFlusher returns a flusher of rec into sink.
func NewFlusher(rec *Recorder, sink Sink, o FlusherOptions) *Flusher {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil, 0)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	f := &Flusher{rec: rec, sink: sink, opts: o, m: o.Metrics, writer: hex.EncodeToString(b[:])}
	o.Metrics.watch(rec)
	return f
}

// Run flushes every interval until ctx ends. It does not flush at the end:
// call Close for that, once nothing records any more.
func (f *Flusher) Run(ctx context.Context) {
	t := time.NewTicker(f.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := f.Flush(fctx); err != nil && ctx.Err() == nil {
				f.opts.Logger.Warn("flushing hit counters failed; kept for the next attempt", "err", err)
			}
			cancel()
		}
	}
}

// Flush sends the batch that failed last time, if any, then everything
// recorded since. Counts that could not be sent stay for the next call.
func (f *Flusher) Flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending != nil {
		if err := f.send(ctx); err != nil {
			return err
		}
	}
	f.pending = f.rec.drain(f.pending[:0])
	if len(f.pending) == 0 {
		f.pending = nil
		return nil
	}
	f.seq++
	f.batchID = f.writer + "-" + strconv.FormatUint(f.seq, 10)
	return f.send(ctx)
}

// send writes the pending batch; on success it is forgotten.
func (f *Flusher) send(ctx context.Context) error {
	start := time.Now()
	err := f.sink.AddHits(ctx, f.batchID, f.pending)
	f.m.flushSeconds.Observe(time.Since(start).Seconds())
	var hits int64
	for i := range f.pending {
		hits += f.pending[i].Hits
	}
	switch {
	case err == nil:
		f.m.flushedHits.Add(float64(hits))
		f.m.keys.add(f.pending)
	case portalstore.ErrorCode(err) == portalstore.EINVALID:
		// The sink will never take this batch: retrying would block
		// every later one.
		f.opts.Logger.Error("hit counters refused by the store; dropped", "hits", hits, "err", err)
		f.m.droppedHits.Add(float64(hits))
	default:
		f.m.flushErrors.Inc()
		return err
	}
	f.pending, f.batchID = nil, ""
	return nil
}

// Close flushes until everything recorded is stored or ctx ends; call it
// after the last Record (on shutdown, once listeners have drained). What
// it could not store is reported in the error.
func (f *Flusher) Close(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := f.Flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			f.mu.Lock()
			var lost int64
			for i := range f.pending {
				lost += f.pending[i].Hits
			}
			f.mu.Unlock()
			lost += f.rec.unflushed()
			return fmt.Errorf("%d hits not stored: %w", lost, err)
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}
