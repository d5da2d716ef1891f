package hits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keylens/keylens/identity/backoff"
)

// Sender delivers one POST /hits body of a batch. chunkID names the body:
// a receiver that has applied that id does not apply it again, so a body
// sent again after an unknown outcome is counted once. To steer the
// Batcher a Sender returns nil (acknowledged: stored), Refused (the
// receiver will never take this body), RetryAfter (the receiver is busy)
// or any other error (try again later).
type Sender func(ctx context.Context, chunkID string, body []byte) error

type refused struct{ err error }

func (e refused) Error() string { return "refused for good: " + e.err.Error() }
func (e refused) Unwrap() error { return e.err }

// Refused marks err as final: the body is dropped, counted, and never sent
// again, since it would block every later batch.
func Refused(err error) error { return refused{err} }

type retryAfter struct {
	d   time.Duration
	err error
}

func (e retryAfter) Error() string { return e.err.Error() }
func (e retryAfter) Unwrap() error { return e.err }

// RetryAfter marks err as a receiver's request to wait d before the next
// attempt (HTTP 503 or 429 with Retry-After).
func RetryAfter(d time.Duration, err error) error { return retryAfter{d, err} }

// Batcher ships what a Counter holds through a Sender. Each drain becomes a
// batch under an id unique to this process and sequence; its bodies are
// sent in order under "<id>/<n>", and one that fails is sent again, with
// the same id and bytes, before anything newer is drained, so that a
// receiver counts every hit once. Meanwhile the Counter goes on counting;
// its series limit bounds the memory held.
type Batcher struct {
	counter *Counter
	send    Sender

	mu     sync.Mutex // one flush at a time
	writer string     // random per process: ids never repeat across restarts
	seq    uint64
	id     string
	chunks []chunk // of the batch in flight; chunks[next:] are unsent
	next   int

	sent    atomic.Int64 // hits acknowledged
	refused atomic.Int64 // hits in bodies refused for good
}

type chunk struct {
	body []byte
	hits int64
}

// NewBatcher returns a batcher of c through send.
func NewBatcher(c *Counter, send Sender) *Batcher {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Batcher{counter: c, send: send, writer: hex.EncodeToString(b[:])}
}

// Flush sends the rest of the batch in flight, if any, then what was
// counted since. What could not be sent stays for the next call.
func (b *Batcher) Flush(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next < len(b.chunks) {
		if err := b.sendChunks(ctx); err != nil {
			return err
		}
	}
	series := b.counter.Drain(nil)
	if len(series) == 0 {
		return nil
	}
	b.seq++
	b.id = b.writer + "-" + strconv.FormatUint(b.seq, 10)
	b.chunks, b.next = b.chunks[:0], 0
	_ = Encode(series, func(body []byte, hits int64) error {
		b.chunks = append(b.chunks, chunk{append([]byte(nil), body...), hits})
		return nil
	})
	return b.sendChunks(ctx)
}

func (b *Batcher) sendChunks(ctx context.Context) error {
	for ; b.next < len(b.chunks); b.next++ {
		c := &b.chunks[b.next]
		err := b.send(ctx, b.id+"/"+strconv.Itoa(b.next), c.body)
		var r refused
		switch {
		case err == nil:
			b.sent.Add(c.hits)
		case errors.As(err, &r):
			b.refused.Add(c.hits)
		default:
			return err
		}
		c.body = nil
	}
	b.chunks, b.next = b.chunks[:0], 0
	return nil
}

// Run flushes every interval until ctx ends. After a failure it waits
// longer, doubling up to a minute, or as long as the receiver asked;
// onError, when not nil, hears of every failure and of the recovery (nil).
func (b *Batcher) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	wait := interval
	retry := backoff.Backoff{Min: 2 * interval, Max: time.Minute}
	failing := false
	for {
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
		err := b.Flush(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if failing && onError != nil {
				onError(nil)
			}
			failing, wait = false, interval
			retry.Reset()
			continue
		}
		failing = true
		if onError != nil {
			onError(err)
		}
		wait = retry.Next()
		var ra retryAfter
		if errors.As(err, &ra) {
			wait = retry.Raise(ra.d)
		}
	}
}

// Close flushes until everything counted is acknowledged or ctx ends, and
// reports the hits not sent then.
func (b *Batcher) Close(ctx context.Context) (unsent int64, err error) {
	retry := backoff.Backoff{Min: 10 * time.Millisecond, Max: time.Second}
	for {
		if err = b.Flush(ctx); err == nil {
			return 0, nil
		}
		if retry.Wait(ctx) != nil {
			b.mu.Lock()
			for _, c := range b.chunks[b.next:] {
				unsent += c.hits
			}
			b.mu.Unlock()
			return unsent + b.counter.Pending(), err
		}
	}
}

// Pending reports the hits counted or in flight and not yet acknowledged.
func (b *Batcher) Pending() int64 {
	b.mu.Lock()
	var n int64
	for _, c := range b.chunks[b.next:] {
		n += c.hits
	}
	b.mu.Unlock()
	return n + b.counter.Pending()
}

// Sent reports the hits acknowledged.
func (b *Batcher) Sent() int64 { return b.sent.Load() }

// Refused reports the hits in bodies refused for good.
func (b *Batcher) Refused() int64 { return b.refused.Load() }
