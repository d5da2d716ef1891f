package rest

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/keylens/keylens"
)

// keylens's own routes, under /api/keylens/, serve sidecars that run
// against a portal instead of a store (keylens sidecar --portal URL). They
// need the admin key like every other route.

// credentialRecord is a credential on the wire: the key with the material
// that verifies it (the bcrypt hash of a basic key's password, a JWT key's
// HMAC secret or public key) and what an identity needs of its owner; never
// the owner's other keys or OAuth client secrets. Only the admin key can
// read it, as only it can mint keys.
type credentialRecord struct {
	Key   keyRecord               `json:"key"`
	Owner keylens.CredentialOwner `json:"owner"`
	Token *keylens.TokenGrant     `json:"token,omitempty"`
}

type keyRecord struct {
	*keylens.Key
	BasicPasswordHash string `json:"basic_password_hash,omitempty"`
	JWTSecret         string `json:"jwt_secret,omitempty"`
	JWTPublicKey      string `json:"jwt_public_key,omitempty"`
}

func (s *Server) writeCredential(w http.ResponseWriter, r *http.Request, c *keylens.Credential, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	k := &c.Key
	writeJSON(w, http.StatusOK, credentialRecord{Owner: c.Owner, Token: c.Token, Key: keyRecord{Key: k,
		BasicPasswordHash: k.BasicPasswordHash, JWTSecret: k.JWTSecret, JWTPublicKey: k.JWTPublicKey}})
}

// GET /api/keylens/credentials/{hash}: the key with that hash and its owner.
func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) {
	c, err := s.Credentials.ResolveKey(r.Context(), r.PathValue("hash"))
	s.writeCredential(w, r, c, err)
}

// GET /api/keylens/credentials?basic_username=U: the basic key of username
// U and its owner; ?token_hash=H: the OAuth access token with hash H, its
// grant and its developer.
func (s *Server) findCredential(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, token := q.Get("basic_username"), q.Get("token_hash")
	var c *keylens.Credential
	var err error
	switch {
	case (user == "") == (token == ""):
		err = keylens.Errorf(keylens.EINVALID, "basic_username or token_hash is required, not both")
	case user != "":
		c, err = s.Credentials.ResolveBasicUser(r.Context(), user)
	default:
		c, err = s.Credentials.ResolveToken(r.Context(), token)
	}
	s.writeCredential(w, r, c, err)
}

// GET /api/keylens/changes/last: {"last": N}, the newest change's sequence
// number, where a new reader of the feed starts.
func (s *Server) lastChange(w http.ResponseWriter, r *http.Request) {
	last, err := s.Changes.LastChange(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Last int64 `json:"last"`
	}{last})
}

// maxHitBatches bounds the batches of one POST /api/keylens/hits (a
// sidecar sends a group of at most 10,000 series), well inside the
// databases' limits on one statement's parameters.
const maxHitBatches = 10000

// maxHitsBody bounds a POST /api/keylens/hits body: a sidecar's group of
// batches, up to some 10,000 series.
const maxHitsBody = 16 << 20

// POST /api/keylens/hits: {"batches":[{"batch_id","deltas":[…]}…]} (or one
// batch as {"batch_id","deltas"}) from a sidecar that runs against this
// portal (keylens sidecar --portal). It answers once the batches are
// committed; Meta.applied says which were applied now, the others having
// been applied before under the same id.
func (s *Server) addHits(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Batches []keylens.HitBatch `json:"batches"`
		keylens.HitBatch
	}
	if err := decodeLimit(w, r, &in, maxHitsBody); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	switch {
	case in.Batches == nil && in.Series == nil:
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "give batches, or one batch_id with its deltas"))
		return
	case in.Batches == nil:
		in.Batches = []keylens.HitBatch{in.HitBatch}
	case in.ID != "" || in.Series != nil:
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "give batches, or one batch_id with its deltas, not both"))
		return
	}
	if len(in.Batches) > maxHitBatches {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "at most %d batches a request", maxHitBatches))
		return
	}
	// Hits enter here: the writer (committer, store) takes them as they are.
	if err := keylens.ValidateHits(in.Batches); err != nil {
		s.writeError(w, r, err)
		return
	}
	applied, err := s.HitWriter.AddHits(r.Context(), in.Batches)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "OK", Message: "Hits added", Meta: hitsApplied{applied}})
}

type hitsApplied struct {
	Applied []bool `json:"applied"`
}

// changesResponse is one long-poll answer of the change feed.
type changesResponse struct {
	Changes []keylens.Change `json:"changes"`
	// Last is the position to ask from next time.
	Last int64 `json:"last"`
	// Reset tells the reader that changes it never saw were pruned: it
	// must drop everything it cached.
	Reset bool `json:"reset"`
}

// maxChangeWait bounds a long poll well inside the server's write timeout.
const maxChangeWait = 30 * time.Second

// GET /api/keylens/changes?after=N&limit=L&wait=DURATION: the changes after
// N, waiting up to wait (default 0, at most 30s) for one to arrive.
func (s *Server) listChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "after must be a sequence number"))
		return
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 10000 {
			s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "limit must be 1 to 10000"))
			return
		}
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "wait must be a duration such as 25s"))
			return
		}
		wait = min(wait, maxChangeWait)
	}
	select {
	case <-s.stop:
		wait = 0 // shutting down: answer what there is
	default:
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	changes, gap, err := s.Changes.WaitForChanges(ctx, after, limit, wait)
	if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
		// Shutdown ended the wait: answer what there is now.
		changes, gap, err = s.Changes.ChangesSince(r.Context(), after, limit)
	}
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		s.writeError(w, r, err)
		return
	}
	last := after
	if len(changes) > 0 {
		last = changes[len(changes)-1].Seq
	}
	writeJSON(w, http.StatusOK, changesResponse{Changes: changes, Last: last, Reset: gap})
}
