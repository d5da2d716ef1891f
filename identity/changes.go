package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Change kinds in keylens's change feed.
const (
	ChangeDeveloper  = "developer"   // a developer was created, updated, deactivated or deleted
	ChangeKeyAdded   = "key_added"   // a key now resolves
	ChangeKeyUpdated = "key_updated" // a key's policies changed
	ChangeKeyRevoked = "key_revoked" // a key no longer resolves
	ChangeQuotaReset = "quota_reset" // a key's quota was reset (its usage counts from zero again)
	// ChangeKeyRotated: a key (KeyHash) was replaced and resolves only
	// until its grace ends; its replacement comes as ChangeKeyAdded.
	ChangeKeyRotated   = "key_rotated"
	ChangeOAuthRemoved = "oauth_removed" // an OAuth client was deleted, and its tokens with it
	ChangeTokenRevoked = "token_revoked" // an OAuth access token (KeyHash: its hash) no longer resolves
	// ChangeTokensRevoked: every access token of an OAuth client
	// (ClientID, of developer DeveloperID) no longer resolves.
	ChangeTokensRevoked = "tokens_revoked"
)

// Change is one entry of keylens's change feed: something that can alter
// how a key resolves. Seq increases with every change.
type Change struct {
	Seq         int64     `json:"seq"`
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	DeveloperID string    `json:"developer_id,omitempty"`
	KeyHash     string    `json:"key_hash,omitempty"`
	ClientID    string    `json:"client_id,omitempty"`
}

// Stale is the rule every cache of resolved credentials follows (the
// sidecar's and the Tyk plugin's): what change c can have made stale. A
// named key hash loses every credential cached for it; a changed developer
// (fields, email, activation, deletion) loses every one of its keys —
// a key change names its developer too, but alters only that key; a new
// key may be cached as unknown, so newKey asks to forget unknown answers.
// An OAuth client's tokens are cached under their own hashes, which the
// feed does not list when the client loses them all (deleted, or
// revoke_all): such a change drops every credential of the client's
// developer.
func (c Change) Stale() (keyHash, developerID string, newKey bool) {
	switch c.Kind {
	case ChangeDeveloper, ChangeOAuthRemoved, ChangeTokensRevoked:
		developerID = c.DeveloperID
	}
	return c.KeyHash, developerID, c.Kind == ChangeKeyAdded
}

// Changes is one answer of the sidecar's GET /changes.
type Changes struct {
	Changes []Change `json:"changes"`
	// Last is the position to ask from next time.
	Last int64 `json:"last"`
	// Reset tells the reader that changes it never saw are gone: it
	// must drop everything it cached.
	Reset bool `json:"reset"`
}

// MaxChangesWait bounds one long poll of GET /changes.
const MaxChangesWait = 30 * time.Second

// Changes long-polls the sidecar's change feed: the changes after after,
// waiting up to wait for one. after < 0 asks where to start: the answer
// comes at once, with no changes and Last the newest position the sidecar
// has applied to its own cache. The sidecar serves a change only once its
// own cache has applied it, so a lookup made after reading a change sees
// its effect. secret, when set, is sent as "Authorization: Bearer".
func (c *Client) Changes(ctx context.Context, after int64, wait time.Duration, secret string) (*Changes, error) {
	q := url.Values{}
	if after >= 0 {
		q.Set("after", strconv.FormatInt(after, 10))
		q.Set("wait", min(wait, MaxChangesWait).String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/changes?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	res, err := c.feed.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identity: follow changes: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		switch res.StatusCode {
		case http.StatusUnauthorized:
			return nil, fmt.Errorf("identity: GET /changes answered 401: the secret is missing or wrong")
		case http.StatusNotFound:
			return nil, fmt.Errorf("identity: GET /changes answered 404: not a keylens sidecar, or one without a change feed")
		}
		return nil, fmt.Errorf("identity: GET /changes answered %d", res.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: GET /changes answered 200 with Content-Type %.64q", ErrNotSidecar, res.Header.Get("Content-Type"))
	}
	var out Changes
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: GET /changes answered no change list (%v)", ErrNotSidecar, jsonProblem(err))
	}
	if out.Last < 0 || (after >= 0 && out.Last < after && !out.Reset) {
		return nil, fmt.Errorf("%w: GET /changes answered position %d after %d", ErrNotSidecar, out.Last, after)
	}
	return &out, nil
}
