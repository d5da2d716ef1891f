// Package sidecar resolves raw keys, Basic credentials, JWTs and OAuth
// access tokens to the developer behind them, fast enough for a gateway's
// request path, and serves the answer over fasthttp: a lookup, RFC 7662
// introspection, forward-auth for nginx, Traefik and Envoy, and the OAuth
// client-credentials token and revocation endpoints.
package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/cache"
	"github.com/keylens/keylens/identity/clock"
)

// Store is what resolving needs from the portal store: one read per
// credential (the SQL store, or a portal's admin API).
type Store = keylens.CredentialService

// Outcomes other than an identity. Neither is a failure of keylens. They
// are the identity contract's own errors: the sidecar, identity.Client and
// the Tyk plugin speak one vocabulary.
var (
	ErrUnknown  = identity.ErrUnknownKey
	ErrInactive = identity.ErrInactive
)

// ErrBusy: every slot for a Basic password check is taken; the caller
// should retry shortly. It protects the CPU that valid keys need from
// guessing, which costs one bcrypt comparison per distinct guess.
var ErrBusy = errors.New("too many password checks at once")

// Entry is a resolved credential with its answers encoded once, so that a
// cache hit only copies bytes. To keep the garbage collector's work small
// with 100,000s of entries, an entry holds few pointers: the identity lives
// only as its encoded JSON, and that JSON and the identity headers share
// one pointer-free buffer. Entries are never modified once cached, except
// for the assertion slot, which every copy of an entry shares.
type Entry struct {
	Inactive    bool
	Expires     int64  // the credential's own expiry (a JWT's or OAuth token's), Unix seconds; 0 for none
	KeyID       string // the key hash (an OAuth token's hash)
	DeveloperID string

	// buf is the /developer JSON, then the identity headers as the lines
	// of a response ("Name: value\r\n" each), as fasthttp would write them
	// had they been set one by one: names are header tokens, values
	// sanitised (identity.HeadersWithin), a repeated name keeps its first
	// place and its last value.
	buf     []byte
	jsonEnd uint32 // buf[:jsonEnd] is the JSON
	// setOneByOne: a header name is one fasthttp gives a meaning of its
	// own (Server, Content-Type, …; only an odd configuration makes one),
	// or the assertion's: the headers must be set through fasthttp's API.
	setOneByOne bool
	assert      *atomic.Pointer[assertion] // shared by copies of the entry
}

// JSON returns the identity as the /developer body.
func (e *Entry) JSON() []byte { return e.buf[:e.jsonEnd] }

// headerLines returns the identity headers as response lines.
func (e *Entry) headerLines() []byte { return e.buf[e.jsonEnd:] }

// Identity decodes the entry's identity. It allocates: the request path
// never calls it, only introspection and assertion signing.
func (e *Entry) Identity() *identity.Identity {
	var id identity.Identity
	_ = json.Unmarshal(e.JSON(), &id) // our own encoding: cannot fail
	return &id
}

// eachHeader calls fn with every header name and value, without copying.
func (e *Entry) eachHeader(fn func(name, value []byte)) {
	for lines := e.headerLines(); len(lines) > 0; {
		end := bytes.Index(lines, crlf)
		name, value, _ := bytes.Cut(lines[:end], colonSpace)
		fn(name, value)
		lines = lines[end+len(crlf):]
	}
}

var (
	crlf       = []byte("\r\n")
	colonSpace = []byte(": ")
)

// fasthttpSpecial reports whether fasthttp's ResponseHeader.Set gives a
// header of this name a meaning of its own instead of adding a line.
func fasthttpSpecial(name string) bool {
	for _, s := range []string{fasthttp.HeaderContentType, fasthttp.HeaderContentLength, fasthttp.HeaderContentEncoding,
		fasthttp.HeaderConnection, fasthttp.HeaderServer, fasthttp.HeaderSetCookie, fasthttp.HeaderTransferEncoding,
		fasthttp.HeaderTrailer, fasthttp.HeaderDate} {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	return false
}

// ResolverOptions configure NewResolver; zero values take the defaults.
type ResolverOptions struct {
	Size int // cached credentials; default 100,000
	// TTL bounds how long a found identity is served. Invalidation comes
	// from the change feed as changes commit; the TTL only limits
	// staleness should the feed be lost. Default 10 min.
	TTL         time.Duration
	NegativeTTL time.Duration // an unknown credential; default 2 s
	// MaxHeaderBytes bounds an identity's headers; custom fields beyond
	// are left out and Headers.Truncated says so. Default
	// identity.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// BcryptConcurrency bounds the Basic password checks run at once;
	// default half the CPUs, at least one. A check that finds them all
	// taken waits its turn, briefly, the first checks of known usernames
	// first; ErrBusy when the wait would be too long.
	BcryptConcurrency int
	// BasicMaxFailures is how many wrong passwords one Basic username may
	// have within BasicFailureWindow (from its first) before it is refused
	// with a GuessingError, no password checked, until the window ends.
	// Default 10; negative: no limit. BasicFailureWindow defaults to a
	// minute.
	BasicMaxFailures   int
	BasicFailureWindow time.Duration
	// JWTLeeway is the clock skew tolerated on a JWT's exp, nbf and iat;
	// zero takes DefaultJWTLeeway, a negative value none.
	JWTLeeway time.Duration
	Headers   identity.HeaderNames
	Logger    *slog.Logger
	Metrics   *Metrics
}

// Resolver turns credentials into entries, through a cache that the change
// feed keeps honest.
type Resolver struct {
	store Store
	opts  ResolverOptions
	// cache holds found credentials, inactive ones included, and
	// unknown ones briefly; the change feed invalidates it.
	cache *cache.Resolutions[Entry]
	m     *Metrics

	lastContact atomic.Int64 // UnixNano of the change feed's last answer

	bcryptSlots   *bcryptSlots     // the Basic password checks under way
	basicFailures *basicFailures   // each Basic username's recent failures
	authn         []authenticator  // the credential kinds, asked in order
	central       *centralVerifier // central JWT verification; nil when off
	// checkPassword compares a Basic password with its bcrypt hash
	// (keylens.CheckPassword; replaced in tests).
	checkPassword func(hash, password string) bool

	// The change feed position applied to the cache (-1 until Follow
	// starts), and a channel closed when it advances: GET /changes
	// serves only what the cache has applied.
	feedMu   sync.Mutex
	applied  int64
	advanced chan struct{}
}

// NewResolver returns a resolver over store.
func NewResolver(store Store, o ResolverOptions) *Resolver {
	if o.Size <= 0 {
		o.Size = 100000
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 2 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = identity.DefaultMaxHeaderBytes
	}
	if o.BcryptConcurrency <= 0 {
		o.BcryptConcurrency = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if o.BasicMaxFailures == 0 {
		o.BasicMaxFailures = 10
	}
	if o.BasicFailureWindow <= 0 {
		o.BasicFailureWindow = time.Minute
	}
	if o.JWTLeeway < 0 {
		o.JWTLeeway = 0
	} else if o.JWTLeeway == 0 {
		o.JWTLeeway = DefaultJWTLeeway
	}
	if o.Headers == (identity.HeaderNames{}) {
		o.Headers = identity.DefaultHeaderNames
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	r := &Resolver{store: store, opts: o, m: o.Metrics, applied: -1, advanced: make(chan struct{}),
		bcryptSlots:   newBcryptSlots(o.BcryptConcurrency),
		basicFailures: newBasicFailures(o.BasicMaxFailures, o.BasicFailureWindow, max(o.Size/4, 1000))}
	r.cache = cache.NewResolutions(cache.ResolutionsOptions[Entry]{
		Size: o.Size, TTL: int64(o.TTL), NegativeTTL: int64(o.NegativeTTL),
		Owner:    func(e *Entry) (string, string) { return e.KeyID, e.DeveloperID },
		Expires:  func(e *Entry) int64 { return e.Expires },
		OnEvict:  func(cache.CredentialDigest, *Entry) { r.m.cacheEvictions.Inc() },
		Refusals: []error{ErrUnknown}, // an inactive developer's key is an entry
	})
	r.authn = r.authenticators()
	r.checkPassword = keylens.CheckPassword
	return r
}

// Resolve returns the entry for credential, an Authorization value: a raw
// key, "Bearer <key or JWT>" or "Basic <base64 user:password>". The answer
// is an entry (Inactive set for a deactivated developer), ErrUnknown, or a
// store failure. A cache hit allocates nothing.
func (r *Resolver) Resolve(ctx context.Context, credential []byte) (*Entry, error) {
	return r.resolve(ctx, 0, credential, clock.Now().Wall)
}

// resolveAt is Resolve for a request to the sidecar's server, on
// connection conn (it spreads the hit counter's stripes), that read the
// clock already: now is its wall time in UnixNano. It takes no context:
// the request's RequestCtx must not reach the store (storeContext), and it
// gave a lookup no deadline either.
func (r *Resolver) resolveAt(conn uint64, credential []byte, now int64) (*Entry, error) {
	return r.resolve(context.Background(), conn, credential, now)
}

func (r *Resolver) resolve(ctx context.Context, conn uint64, credential []byte, now int64) (*Entry, error) {
	e, hit, err := r.cache.Resolve(cache.DigestOf(credential), now, conn, func() (*Entry, error) {
		r.m.cacheMisses.Inc()
		return r.fetch(ctx, credential)
	})
	if hit {
		r.m.cacheHits.add(conn)
	}
	return e, err
}

// fetch resolves credential without the cache.
func (r *Resolver) fetch(ctx context.Context, credential []byte) (*Entry, error) {
	key, expires, err := r.lookupKey(ctx, credential)
	if err != nil {
		return nil, err
	}
	return r.entryFor(key, expires)
}

// entryFor builds the entry of a credential: the encoded answers.
func (r *Resolver) entryFor(c *keylens.Credential, expires int64) (*Entry, error) {
	k, d := &c.Key, &c.Owner
	id := &identity.Identity{
		DeveloperID: d.ID, Email: d.Email, OrgID: d.OrgID, Fields: d.Fields,
		KeyID: k.Hash, Policies: k.Policies, KeyRequestFields: k.Fields, Expires: expires,
	}
	if t := c.Token; t != nil {
		id.ClientID, id.IssuedAt = t.ClientID, t.IssuedAt
	}
	if id.Fields == nil {
		id.Fields = map[string]string{}
	}
	if id.KeyRequestFields == nil {
		id.KeyRequestFields = map[string]any{}
	}
	if id.Policies == nil {
		id.Policies = []string{}
	}
	body, err := json.Marshal(id)
	if err != nil {
		return nil, err
	}
	headers, truncated := id.HeadersWithin(r.opts.Headers, r.opts.MaxHeaderBytes)
	if truncated {
		r.m.truncated.Inc()
	}
	// A name set twice keeps its first place and takes the last value, as
	// fasthttp's Set does (two field names can reduce to one token).
	for i := 0; i < len(headers); i++ {
		for j := 0; j < i; j++ {
			if headers[j].Name == headers[i].Name {
				headers[j].Value = headers[i].Value
				headers = slices.Delete(headers, i, i+1)
				i--
				break
			}
		}
	}
	size := len(body)
	oneByOne := false
	for _, h := range headers {
		size += len(h.Name) + len(colonSpace) + len(h.Value) + len(crlf)
		oneByOne = oneByOne || fasthttpSpecial(h.Name) || h.Name == r.opts.Headers.Assertion
	}
	e := &Entry{Inactive: d.Inactive, Expires: expires, KeyID: k.Hash, DeveloperID: d.ID,
		buf: make([]byte, 0, size), setOneByOne: oneByOne, assert: new(atomic.Pointer[assertion])}
	e.buf = append(e.buf, body...)
	e.jsonEnd = uint32(len(e.buf))
	for _, h := range headers {
		e.buf = append(e.buf, h.Name...)
		e.buf = append(e.buf, colonSpace...)
		e.buf = append(e.buf, h.Value...)
		e.buf = append(e.buf, crlf...)
	}
	return e, nil
}

// Purge drops everything cached.
func (r *Resolver) Purge() { r.cache.Purge() }

// Apply invalidates what one change can have made stale, by the rule every
// keylens cache follows (identity.Change.Stale).
func (r *Resolver) Apply(c keylens.Change) { r.cache.Invalidate(c.Stale()) }

// Len reports how many credentials are cached.
func (r *Resolver) Len() int { return r.cache.Len() }

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}
