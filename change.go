package keylens

import (
	"context"
	"time"

	"github.com/keylens/keylens/identity"
)

// Change kinds in the change feed: the identity contract's, which every
// follower of the feed (sidecar, Tyk plugin) reads.
const (
	ChangeDeveloper     = identity.ChangeDeveloper     // a developer was created, updated, deactivated or deleted
	ChangeKeyAdded      = identity.ChangeKeyAdded      // a key now resolves
	ChangeKeyUpdated    = identity.ChangeKeyUpdated    // a key's policies changed
	ChangeKeyRevoked    = identity.ChangeKeyRevoked    // a key no longer resolves
	ChangeQuotaReset    = identity.ChangeQuotaReset    // a key's quota was reset
	ChangeKeyRotated    = identity.ChangeKeyRotated    // a key was replaced: it resolves until its grace ends
	ChangeOAuthRemoved  = identity.ChangeOAuthRemoved  // an OAuth client was deleted, and its tokens with it
	ChangeTokenRevoked  = identity.ChangeTokenRevoked  // an OAuth access token was revoked
	ChangeTokensRevoked = identity.ChangeTokensRevoked // every access token of an OAuth client was revoked
)

// Change is one entry of the change feed: something that can alter how a
// key resolves. Seq increases with every change and is never reused. The
// type is the identity contract's, so that the store, the admin API, the
// sidecar and the plugin pass one shape.
type Change = identity.Change

// ChangeService reads the change feed.
type ChangeService interface {
	// ChangesSince returns up to limit changes with Seq > after, oldest
	// first, and whether changes after `after` were already pruned (the
	// reader must then drop everything it cached).
	ChangesSince(ctx context.Context, after int64, limit int) (changes []Change, gap bool, err error)
	// WaitForChanges is ChangesSince that waits up to wait for at least
	// one change to arrive.
	WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]Change, bool, error)
	// LastChange returns the newest sequence number (0 when none).
	LastChange(ctx context.Context) (int64, error)
	// PruneChanges forgets changes older than before (always keeping the
	// newest) and returns how many it removed. Readers whose position is
	// older than what was pruned are told of the gap.
	PruneChanges(ctx context.Context, before time.Time) (int64, error)
}

// SkippedChange is a change a follower of the feed (the Tyk gateway
// outbox) gave up applying, and why: kept until it is applied after all.
type SkippedChange struct {
	Change
	Reason string `json:"reason"`
}
