package sqlstore

import "time"

// SetPollIntervals sets the change feed's safety-net polls, so that a test
// of a wake-up fails when the wake-up does not come instead of being
// rescued by a poll.
func SetPollIntervals(db *DB, down, up time.Duration) { db.pollDown, db.pollUp = down, up }
