package web

import (
	"sync"
	"time"

	"github.com/keylens/keylens"
)

// Issued credentials are shown once. The POST that issues them (New Key,
// approving a request) hands them to this store, in memory only, and
// redirects to a page that takes them out: reloading that page, or going
// back to it, finds nothing, and resubmitting the form is not needed to see
// them (so a reload can never issue a second key). What nobody fetched is
// forgotten after issuedTTL. keylens never writes them anywhere.
type issuedStore struct {
	mu sync.Mutex
	m  map[string]*issuedEntry
}

type issuedEntry struct {
	session     string // the IDHash of the session that may read it
	developerID string
	email       string
	approval    *keylens.Approval
	authType    string
	policies    []string
	expires     time.Time
	// replaces and oldExpires are set for a rotation: the key the new
	// one replaces, and when that stops working.
	replaces   string
	oldExpires time.Time
}

const (
	issuedTTL = 10 * time.Minute
	maxIssued = 1000
)

func newIssuedStore() *issuedStore { return &issuedStore{m: map[string]*issuedEntry{}} }

// put keeps e and returns the nonce that fetches it.
func (s *issuedStore) put(e *issuedEntry, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if now.After(v.expires) || len(s.m) >= maxIssued {
			delete(s.m, k)
		}
	}
	nonce := randomToken()
	e.expires = now.Add(issuedTTL)
	s.m[nonce] = e
	return nonce
}

// take returns and forgets the entry of nonce, if the session may read it.
func (s *issuedStore) take(nonce, session string, now time.Time) *issuedEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[nonce]
	if e == nil || e.session != session {
		return nil
	}
	delete(s.m, nonce)
	if now.After(e.expires) {
		return nil
	}
	return e
}
