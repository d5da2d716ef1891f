package main

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/cache"
)

// entry is a resolved credential with everything a hook writes prepared
// once: the headers (canonical names) and the session metadata. Entries are
// shared between requests and never modified.
type entry struct {
	id      *identity.Identity
	err     error // identity.ErrUnknownKey or identity.ErrInactive
	headers []identity.Header
	// values holds each header's value as a one-element slice of capacity
	// one, set as is into requests: an Add by later code appends into a
	// new array, never into the shared one.
	values [][]string
	meta   []metaPair
}

type metaPair struct {
	key   string
	value interface{} // boxed once, so that setting it allocates nothing
}

// resolver caches entries over the sidecar, keyed by a keyed hash of the
// credential (cache.CredentialDigest): it holds no raw key. A goroutine, started on
// first use, follows the sidecar's change feed and drops what each change
// makes stale as it commits; cache_ttl bounds an entry's life only when
// the feed is lost.
type resolver struct {
	s      settings
	client *identity.Client
	names  identity.HeaderNames
	strip  *stripper
	cache  *cache.Resolutions[entry] // identities; unknown or inactive for a shorter time

	follow   sync.Once
	followed atomic.Bool // the feed has answered once
	sidecar  *outage     // lookups
	feed     *outage     // the change feed
}

func newResolver(s settings) *resolver {
	o := identity.ClientOptions{HTTPClient: &http.Client{Timeout: s.Timeout}, AssertionHeader: s.Headers.Assertion}
	if s.RequireAssertion {
		o.Verifier = identity.NewVerifier(s.SidecarURL, &http.Client{Timeout: s.Timeout})
	}
	return &resolver{
		s:      s,
		client: identity.NewClient(s.SidecarURL, o),
		names:  s.Headers,
		strip:  newStripper(s.Headers),
		cache: cache.NewResolutions(cache.ResolutionsOptions[entry]{
			Size: s.CacheSize, TTL: int64(s.CacheTTL), NegativeTTL: int64(s.NegativeCacheTTL),
			Owner:           func(e *entry) (string, string) { return e.id.KeyID, e.id.DeveloperID },
			Expires:         func(e *entry) int64 { return e.id.Expires },
			RefusesInactive: true,
			Refusals:        refusals,
		}),
		sidecar: newOutage("the keylens sidecar at "+s.SidecarURL, "asking"),
		feed:    newOutage("the keylens change feed at "+s.SidecarURL+"/changes", "following"),
	}
}

// resolve returns the entry of credential as of now (Unix nanoseconds): an
// identity, or an entry whose err says unknown or inactive. Other errors
// are failures to ask.
func (r *resolver) resolve(ctx context.Context, credential string, now int64, hint uint64) (*entry, error) {
	e, _, err := r.cache.Resolve(cache.DigestOfString(credential), now, hint, func() (*entry, error) {
		return r.fetch(ctx, credential)
	})
	if isRefusal(err) {
		return refusal(err), nil
	}
	return e, err
}

// fetch asks the sidecar for the entry of credential, without the cache,
// and records the sidecar's state: a refusal is an answer, other errors
// are failures to ask.
func (r *resolver) fetch(ctx context.Context, credential string) (*entry, error) {
	r.follow.Do(func() { go r.followFeed() })
	id, err := r.client.Fetch(ctx, credential)
	switch {
	case err == nil:
		r.sidecar.ok()
		return r.prepare(id), nil
	case isRefusal(err):
		r.sidecar.ok()
		return nil, err
	}
	if ctx.Err() == nil {
		r.sidecar.failed(err)
	}
	return nil, err
}

// refusals are the sidecar's answers other than an identity.
var refusals = []error{identity.ErrUnknownKey, identity.ErrInactive}

func isRefusal(err error) bool {
	return err != nil && (errors.Is(err, identity.ErrUnknownKey) || errors.Is(err, identity.ErrInactive))
}

// The entries of the two refusals, shared: callers only read their err.
var (
	unknownEntry  = &entry{err: identity.ErrUnknownKey}
	inactiveEntry = &entry{err: identity.ErrInactive}
)

func refusal(err error) *entry {
	if errors.Is(err, identity.ErrInactive) {
		return inactiveEntry
	}
	return unknownEntry
}

// Session metadata names: Tyk's, and keylens's own key hash for the
// response hook.
const (
	metaDeveloperID      = "tyk_developer_id"
	metaDeveloperEmail   = "tyk_developer_email"
	metaKeyRequestFields = "tyk_key_request_fields"
	metaUserFields       = "tyk_user_fields"
	metaKeyID            = "keylens_key_id"
)

func (r *resolver) prepare(id *identity.Identity) *entry {
	e := &entry{id: id}
	headers, _ := id.HeadersWithin(r.names, r.s.MaxHeaderBytes)
	for _, h := range headers {
		e.headers = append(e.headers, identity.Header{Name: textproto.CanonicalMIMEHeaderKey(h.Name), Value: h.Value})
		e.values = append(e.values, []string{h.Value})
	}
	userFields := make(map[string]string, len(id.Fields))
	for k, v := range id.Fields {
		userFields[k] = v
	}
	krf := make(map[string]interface{}, len(id.KeyRequestFields))
	for k, v := range id.KeyRequestFields {
		krf[k] = v
	}
	e.meta = []metaPair{
		{metaDeveloperID, id.DeveloperID}, {metaDeveloperEmail, id.Email}, {metaKeyID, id.KeyID},
		{metaKeyRequestFields, krf}, {metaUserFields, userFields},
	}
	// Flat string copies, which $tyk_meta header templates can render
	// (Tyk renders maps as empty: issue 3230).
	for k, v := range id.KeyRequestFields {
		e.meta = append(e.meta, metaPair{metaKeyRequestFields + "_" + identity.MetaToken(k), identity.FieldString(v)})
	}
	for k, v := range id.Fields {
		e.meta = append(e.meta, metaPair{metaUserFields + "_" + identity.MetaToken(k), v})
	}
	return e
}

// stripper removes every header that claims an identity, as a client may
// send them. Header names that net/http parsed are canonical, so they are
// compared with the canonical forms; a name stored in lower case by other
// code gets the case-insensitive comparison.
type stripper struct {
	names    identity.HeaderNames
	exact    []string // canonical
	prefixes []string // canonical
}

func newStripper(n identity.HeaderNames) *stripper {
	st := &stripper{names: n}
	for _, name := range []string{n.DeveloperID, n.Email, n.KeyID, n.Policies, n.Assertion, n.Truncated} {
		if name != "" {
			st.exact = append(st.exact, textproto.CanonicalMIMEHeaderKey(name))
		}
	}
	for _, p := range []string{n.FieldPrefix, n.KeyRequestFieldPrefix} {
		if p != "" {
			st.prefixes = append(st.prefixes, textproto.CanonicalMIMEHeaderKey(p))
		}
	}
	return st
}

func (st *stripper) claims(name string) bool {
	for _, e := range st.exact {
		if name == e {
			return true
		}
	}
	for _, p := range st.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name[0] >= 'a' && name[0] <= 'z' && st.names.IsIdentityHeader(name)
}

func (st *stripper) strip(h http.Header) {
	for name := range h {
		if name != "" && st.claims(name) {
			delete(h, name)
		}
	}
}

// injectHeaders sets e's headers on h, allocating nothing.
func injectHeaders(h http.Header, e *entry) {
	for i, hd := range e.headers {
		h[hd.Name] = e.values[i]
	}
}

// setMeta adds e's metadata to meta; unless overwrite is set, keys already
// there are kept (the post-auth hook adds only what is missing).
func setMeta(meta map[string]interface{}, e *entry, overwrite bool) {
	overwrite = overwrite || len(meta) == 0 // nothing to keep
	for _, p := range e.meta {
		if !overwrite {
			if _, ok := meta[p.key]; ok {
				continue
			}
		}
		meta[p.key] = p.value
	}
}

// credentialOf is the key the request carries: the gateway's auth token
// when it has one, else the Authorization header.
func credentialOf(token string, r *http.Request) string {
	if token != "" {
		return token
	}
	return strings.TrimSpace(r.Header.Get("Authorization"))
}
