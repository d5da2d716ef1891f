// Package analytics stores every key's hits and errors as they are
// reported, acknowledging a batch only once it is committed, and exports
// them to Prometheus.
package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/backoff"
)

var _ keylens.HitWriter = (*Committer)(nil)

// CommitterOptions configure NewCommitter; zero values take the defaults.
type CommitterOptions struct {
	// MaxRows bounds the series one transaction writes, so that a
	// batch waits for about one batch's commit, not for a long queue's.
	// (Portal writes do not wait for hit commits: the store gives these
	// a writer of their own.) A larger batch is committed alone.
	MaxRows int
	// MaxQueuedRows bounds the series waiting or being committed; a
	// batch beyond it is refused (EUNAVAILABLE: try again later).
	MaxQueuedRows int
	// MaxBacklog bounds the series a store has committed and not yet
	// folded (keylens.HitBacklogger); beyond it batches are refused as
	// beyond MaxQueuedRows, until the store catches up. It is what a
	// flood can run ahead of the store's folding, and what every query
	// reads the key filters of (and the rows that may hold its keys).
	MaxBacklog int64
	Logger     *slog.Logger
	Metrics    *Metrics
}

// Defaults of CommitterOptions.
const (
	DefaultMaxRows       = 50000
	DefaultMaxQueuedRows = 200000
	DefaultMaxBacklog    = 10000000
)

// Committer commits hit batches to a store (a keylens.HitWriter) with group commit: batches that
// arrive while a transaction runs wait, and are committed together by the
// next one, so that durability costs one commit per transaction, not per
// batch, with no timer in the way. AddHits returns once its batches are
// committed: acknowledged means stored. A failed commit is retried with
// backoff until it succeeds or Close gives up.
type Committer struct {
	store   keylens.HitWriter
	backlog keylens.HitBacklogger // store's, when it has one
	opts    CommitterOptions
	m       *Metrics

	mu         sync.Mutex
	queue      []*commitRequest
	queuedRows int
	// reservedRows is room Reserve took for batches not yet queued.
	reservedRows int
	busyRows     int   // of the group being committed
	busyHits     int64 // of the group being committed
	busySince    time.Time
	closed       bool
	abandoned    int64 // hits answered with an error at Close
	wake         chan struct{}
	stop         chan struct{} // closed when Close gives up on what is left
	stopOnce     sync.Once
	done         chan struct{} // closed when the loop has returned
	// base is every commit attempt's context: Close cancels it when it
	// gives up, so that a store that hangs cannot hold shutdown.
	base       context.Context
	cancelBase context.CancelFunc
}

type commitRequest struct {
	batches []keylens.HitBatch
	rows    int
	hits    int64
	at      time.Time
	applied []bool
	err     error
	done    chan struct{}
}

// Errors AddHits returns when it cannot take a batch now; both are
// EUNAVAILABLE, which callers answer with 503 and Retry-After.
var (
	ErrBusy    = keylens.Errorf(keylens.EUNAVAILABLE, "hit analytics are behind; retry later")
	ErrClosing = keylens.Errorf(keylens.EUNAVAILABLE, "keylens is shutting down; retry later")
)

// NewCommitter returns a committer to store; it runs until Close.
func NewCommitter(store keylens.HitWriter, o CommitterOptions) *Committer {
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxQueuedRows <= 0 {
		o.MaxQueuedRows = DefaultMaxQueuedRows
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil, 0)
	}
	backlog, _ := store.(keylens.HitBacklogger)
	c := &Committer{store: store, backlog: backlog, opts: o, m: o.Metrics, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	c.base, c.cancelBase = context.WithCancel(context.Background())
	o.Metrics.watch(c)
	go c.run()
	return c
}

// AddHits commits batches and reports which were applied now (a batch whose
// id was applied before is acknowledged but not counted again). It waits
// for the commit; when ctx ends first the batches are still committed, and
// a retry under the same ids is counted once. The batches must have
// passed keylens.ValidateHits where they entered. ErrBusy or ErrClosing
// when it cannot take them now; EINVALID, with nothing stored, when the
// store refuses a batch (a portal whose rules differ).
func (c *Committer) AddHits(ctx context.Context, batches []keylens.HitBatch) ([]bool, error) {
	return c.add(ctx, batches, nil)
}

// Reserve takes room for up to series series, before the batch that will
// fill it is parsed, so that an entry refuses what it cannot take before
// doing the work: ErrBusy or ErrClosing at once when there is no room.
// Checking and taking are one step, so that writers arriving together
// cannot all find room and then overfill the queue. The reservation's
// AddHits commits the batch in the room taken; Release gives it back
// unused.
func (c *Committer) Reserve(series int) (keylens.HitReservation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.roomFor(series); err != nil {
		c.m.refusedBatches.Inc()
		return nil, err
	}
	c.reservedRows += series
	return &reservation{c: c, rows: series}, nil
}

// roomFor reports whether rows more series fit, under c.mu: a batch larger
// than the limit is taken alone, when nothing else is pending.
func (c *Committer) roomFor(rows int) error {
	used := c.queuedRows + c.busyRows + c.reservedRows
	switch {
	case c.closed:
		return ErrClosing
	case used > 0 && used+rows > c.opts.MaxQueuedRows:
		return ErrBusy
	case c.backlog != nil && c.backlog.HitBacklog() >= c.opts.MaxBacklog:
		return ErrBusy
	}
	return nil
}

// reservation is room Reserve took; it is used or released once.
type reservation struct {
	c    *Committer
	rows int
	once sync.Once
}

// AddHits commits batches in the room reserved, which it gives back; their
// series should number no more than were reserved.
func (r *reservation) AddHits(ctx context.Context, batches []keylens.HitBatch) ([]bool, error) {
	used := false
	var applied []bool
	var err error
	r.once.Do(func() {
		used = true
		applied, err = r.c.add(ctx, batches, r)
	})
	if !used {
		return nil, errors.New("analytics: a reservation was used twice")
	}
	return applied, err
}

// Release gives the room back when the batch was not committed (it was
// refused as invalid, or was empty); after AddHits it does nothing.
func (r *reservation) Release() {
	r.once.Do(func() {
		r.c.mu.Lock()
		r.c.reservedRows -= r.rows
		r.c.mu.Unlock()
	})
}

// add queues batches, in the room res took when it is not nil, and waits
// for their commit.
func (c *Committer) add(ctx context.Context, batches []keylens.HitBatch, res *reservation) ([]bool, error) {
	r := &commitRequest{batches: batches, at: time.Now(), done: make(chan struct{})}
	for i := range batches {
		if batches[i].ID == "" {
			// A batch without an id gets one: a commit retried after
			// an answer was lost (a portal's, or the database's) is
			// then applied once, as a named batch is.
			batches[i].ID = anonymousBatchID()
		}
		r.rows += len(batches[i].Series)
		r.hits += batches[i].Hits()
	}
	c.mu.Lock()
	var err error
	if res != nil {
		c.reservedRows -= res.rows // the batch takes the room itself now
		if c.closed {
			err = ErrClosing
		}
	} else {
		err = c.roomFor(r.rows)
	}
	if err != nil {
		c.mu.Unlock()
		c.m.refusedHits.Add(float64(r.hits))
		c.m.refusedBatches.Inc()
		return nil, err
	}
	c.queue = append(c.queue, r)
	c.queuedRows += r.rows
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.applied, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run commits what is queued, a group at a time, until Close.
func (c *Committer) run() {
	defer close(c.done)
	since := 0 // series committed since memory was last handed back
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			var idle <-chan time.Time
			if since >= releaseAfterRows {
				idle = time.After(releaseIdle) // Go's timers are collected once unreferenced
			}
			select {
			case <-c.wake:
			case <-c.stop:
			case <-idle:
				// A flood is over: its batches are garbage now.
				// Collect them and hand the pages back, rather
				// than wait for the runtime's next collection,
				// which an idle process may not reach for
				// minutes, holding the flood's peak meanwhile.
				debug.FreeOSMemory()
				since = 0
			}
			continue
		}
		// Everything that arrived during the last commit, up to MaxRows
		// (a larger request alone).
		n, rows := 0, 0
		var hits int64
		for n < len(c.queue) && (n == 0 || rows+c.queue[n].rows <= c.opts.MaxRows) {
			rows += c.queue[n].rows
			hits += c.queue[n].hits
			n++
		}
		group := make([]*commitRequest, n)
		copy(group, c.queue)
		rest := copy(c.queue, c.queue[n:])
		clear(c.queue[rest:]) // the batches taken are not kept past their commit
		c.queue = c.queue[:rest]
		c.queuedRows -= rows
		c.busyRows, c.busyHits, c.busySince = rows, hits, group[0].at
		c.mu.Unlock()

		c.commit(group)
		since += rows

		c.mu.Lock()
		c.busyRows, c.busyHits = 0, 0
		c.mu.Unlock()
		// Answer only now: a writer told its batch is stored may send
		// the next one at once, and must find the room this one took.
		for _, r := range group {
			close(r.done)
		}
	}
}

// commit writes a group in one transaction, retrying failures briefly,
// and sets each request's outcome (run answers them).
func (c *Committer) commit(group []*commitRequest) {
	var batches []keylens.HitBatch
	for _, r := range group {
		batches = append(batches, r.batches...)
	}
	retry := backoff.Backoff{Min: 50 * time.Millisecond} // commitAttempts bounds it
	for attempt := 0; ; attempt++ {
		start := time.Now()
		actx, cancel := context.WithTimeout(c.base, commitTimeout)
		applied, err := c.store.AddHits(actx, batches)
		cancel()
		c.m.commitSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			if attempt > 0 {
				// A failed attempt may have committed before its
				// answer was lost: a batch found applied now may be
				// this committer's own, so none is called a duplicate.
				for i := range applied {
					applied[i] = true
				}
			}
			for _, r := range group {
				r.applied, applied = applied[:len(r.batches)], applied[len(r.batches):]
				for i := range r.batches {
					if r.applied[i] {
						c.m.committedHits.Add(float64(r.batches[i].Hits()))
						c.m.keys.add(r.batches[i].Series)
					} else {
						c.m.duplicateBatches.Inc()
					}
				}
			}
			return
		}
		if keylens.ErrorCode(err) == keylens.EINVALID {
			// Validated where the hits entered, so the store's rules
			// differ (a portal of another version): find the batch it
			// refuses by committing each alone.
			if len(group) > 1 {
				for _, r := range group {
					c.commit([]*commitRequest{r})
				}
				return
			}
			c.opts.Logger.Error("hit batch refused by the store", "err", err)
			c.m.invalidBatches.Inc()
			group[0].err = err
			return
		}
		c.m.commitErrors.Inc()
		if attempt == commitAttempts-1 {
			// The store is failing (down, full, unreachable): tell
			// the writers now rather than hold them. They keep their
			// batches and send them again under the same ids, which
			// the store applies once should this attempt have
			// committed after all.
			if keylens.ErrorCode(err) != keylens.EFULL { // the store logs that itself
				c.opts.Logger.Warn("committing hits failed; writers told to retry", "err", err, "batches", len(batches))
			}
			for _, r := range group {
				r.err = keylens.Errorf(keylens.EUNAVAILABLE, "hits could not be stored now; retry later")
			}
			return
		}
		select {
		case <-c.stop:
			c.mu.Lock()
			for _, r := range group {
				c.abandoned += r.hits
				r.err = errors.Join(ErrClosing, err)
			}
			c.mu.Unlock()
			return
		case <-time.After(retry.Next()):
		}
	}
}

// After releaseAfterRows series or more, a committer idle for releaseIdle
// hands the memory they took back to the system.
const (
	releaseAfterRows = 100000
	releaseIdle      = 5 * time.Second
)

// commitTimeout bounds one commit attempt: far more than a transaction of
// MaxRows takes, so that only a store that hangs (a portal whose
// connection went silent) meets it.
const commitTimeout = time.Minute

// anonymousBatchID names a batch its writer did not name.
func anonymousBatchID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "anon-" + hex.EncodeToString(b[:])
}

// commitAttempts is how often a failing commit is tried (over some 350 ms)
// before its writers are told to retry.
const commitAttempts = 4

// Close refuses new batches, then waits until every batch taken is
// committed or ctx ends; the batches left then are answered with an error
// (their writers retry them elsewhere or later) and reported.
func (c *Committer) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	left := c.queue
	c.queue, c.queuedRows = nil, 0
	for _, r := range left {
		c.abandoned += r.hits
		r.err = ErrClosing
		close(r.done)
	}
	c.mu.Unlock()
	c.stopOnce.Do(func() { close(c.stop) })
	c.cancelBase() // an attempt under way ends now
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.abandoned == 0 {
		return nil
	}
	return fmt.Errorf("%d hits were not committed before the deadline; their writers were answered with an error and keep them", c.abandoned)
}

// Pending reports the hits waiting or being committed.
func (c *Committer) Pending() int64 {
	h, _ := c.pending()
	return h
}

// pending reports the hits waiting or being committed, and the age of the
// oldest of them.
func (c *Committer) pending() (hits int64, lag time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hits = c.busyHits
	oldest := time.Time{}
	if c.busyHits > 0 {
		oldest = c.busySince
	}
	for _, r := range c.queue {
		hits += r.hits
		if oldest.IsZero() {
			oldest = r.at
		}
	}
	if !oldest.IsZero() {
		lag = time.Since(oldest)
	}
	return hits, lag
}
