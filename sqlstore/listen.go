package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keylens/keylens/identity/backoff"
)

// On PostgreSQL, a transaction that records a change also sends a
// notification on this channel; it is delivered when the transaction
// commits. Every process sharing the database listens, so that a change
// committed by one wakes the change-feed readers of all of them at once.
// Polling stays as the safety net: every changePollInterval while the
// listener is down, every listeningPollInterval while it is up.
const (
	notifyChannel         = "keylens_changes"
	listeningPollInterval = 2 * time.Second
)

// listener holds one connection that LISTENs and wakes db.changed on every
// notification, reconnecting with backoff when it is lost.
type listener struct {
	once      sync.Once
	listening atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
}

// startListening starts the listener once, on first use of the feed.
func (db *DB) startListening() {
	if !db.pg {
		return
	}
	db.listen.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		db.listen.cancel, db.listen.done = cancel, make(chan struct{})
		go db.listenLoop(ctx)
	})
}

func (db *DB) listenLoop(ctx context.Context) {
	defer close(db.listen.done)
	// Never reset, even after a connection that lasted: once a few were
	// lost, every reconnection waits 5 s.
	retry := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		err := db.listenOnce(ctx)
		db.listen.listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		_ = err // the feed's readers poll meanwhile; they report failures
		if retry.Wait(ctx) != nil {
			return
		}
	}
}

// listenOnce listens on one connection until it fails or ctx ends.
func (db *DB) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, db.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	db.listen.listening.Store(true)
	// Changes committed while no one listened: wake the readers once.
	db.changed.broadcast()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		db.changed.broadcast()
	}
}

// pollInterval is how often a change-feed reader looks at the table.
func (db *DB) pollInterval() time.Duration {
	if db.pg && db.listen.listening.Load() {
		return db.pollUp
	}
	return db.pollDown
}

// stopListening ends the listener, if it runs.
func (db *DB) stopListening() {
	if db.listen.cancel != nil {
		db.listen.cancel()
		<-db.listen.done
	}
}
