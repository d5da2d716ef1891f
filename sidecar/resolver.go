// Package sidecar resolves raw keys, Basic credentials and JWTs to the
// developer behind them, fast enough for a gateway's request path, and
// serves the answer over fasthttp: a lookup, RFC 7662 introspection and
// forward-auth for nginx, Traefik and Envoy.
package sidecar

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/cache"
	"github.com/keylens/keylens/portalstore"
)

// Store is what resolving needs from the portal store: one read per
// credential (the SQL store, or a portal's admin API).
type Store = portalstore.CredentialService

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
// only as its encoded JSON, and that JSON and every header share one
// pointer-free buffer. Entries are never modified once cached, except for
// the assertion slot, which every copy of an entry shares.
type Entry struct {
	Inactive    bool
	Expires     int64  // the credential's own expiry (a JWT's exp), Unix seconds; 0 for none
	KeyID       string // the key hash
	DeveloperID string

	buf     []byte                     // the /developer JSON, then header name, value, name, value, …
	jsonEnd uint32                     // buf[:jsonEnd] is the JSON
	hdrEnds []uint32                   // the end offset in buf of each header name and value, in turn
	assert  *atomic.Pointer[assertion] // shared by copies of the entry
}

// JSON returns the identity as the /developer body.
func (e *Entry) JSON() []byte { return e.buf[:e.jsonEnd] }

// Identity decodes the entry's identity. It allocates: the request path
// never calls it, only introspection and assertion signing.
func (e *Entry) Identity() *identity.Identity {
	var id identity.Identity
	_ = json.Unmarshal(e.JSON(), &id) // our own encoding: cannot fail
	return &id
}

// eachHeader calls fn with every header name and value, without copying.
func (e *Entry) eachHeader(fn func(name, value []byte)) {
	start := e.jsonEnd
	for i := 0; i+1 < len(e.hdrEnds); i += 2 {
		nameEnd, valueEnd := e.hdrEnds[i], e.hdrEnds[i+1]
		fn(e.buf[start:nameEnd], e.buf[nameEnd:valueEnd])
		start = valueEnd
	}
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
	// default half the CPUs, at least one.
	BcryptConcurrency int
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
	// cache holds found credentials, inactive ones included, indexed by
	// key hash and developer for the change feed's invalidations.
	cache   *cache.Tracked[Entry]
	unknown *cache.Cache[struct{}]
	m       *Metrics

	lastContact atomic.Int64 // UnixNano of the change feed's last answer

	bcryptSlots chan struct{} // one token per Basic password check under way

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
		bcryptSlots: make(chan struct{}, o.BcryptConcurrency)}
	r.cache = cache.NewTracked(o.Size, int64(o.TTL),
		func(e *Entry) (string, string) { return e.KeyID, e.DeveloperID },
		func(cache.Key, *Entry) { r.m.cacheEvictions.Inc() })
	r.unknown = cache.New[struct{}](max(o.Size/4, 1000), int64(o.NegativeTTL), nil)
	return r
}

// Resolve returns the entry for credential, an Authorization value: a raw
// key, "Bearer <key or JWT>" or "Basic <base64 user:password>". The answer
// is an entry (Inactive set for a deactivated developer), ErrUnknown, or a
// store failure. A cache hit allocates nothing.
func (r *Resolver) Resolve(ctx context.Context, credential []byte) (*Entry, error) {
	return r.resolveAt(ctx, credential, now().wall)
}

// resolveAt is Resolve for a request that read the clock already: now is
// its wall time in UnixNano.
func (r *Resolver) resolveAt(ctx context.Context, credential []byte, now int64) (*Entry, error) {
	ck := cache.KeyOf(credential)
	var conn uint64 // spreads the hit counter's stripes
	if rc, ok := ctx.(*fasthttp.RequestCtx); ok {
		conn = rc.ConnID()
	}
	if e, ok := r.cache.Get(ck, now, conn); ok {
		if e.Expires == 0 || e.Expires > now/1e9 {
			r.m.cacheHits.add(conn)
			return e, nil
		}
		r.cache.Remove(ck) // an expired JWT
	}
	if _, ok := r.unknown.Get(ck, now, conn); ok {
		r.m.cacheHits.add(conn)
		return nil, ErrUnknown
	}
	r.m.cacheMisses.Inc()
	gen := r.cache.Gen()
	key, expires, err := r.lookupKey(ctx, credential)
	if err == nil {
		var e *Entry
		if e, err = r.entryFor(key, expires); err == nil {
			r.cache.Add(ck, *e, now, gen)
			return e, nil
		}
	}
	if errors.Is(err, ErrUnknown) && r.cache.Gen() == gen {
		r.unknown.Add(ck, struct{}{}, now)
	}
	return nil, err
}

// lookupKey finds the stored credential a request's credential names,
// verifying Basic passwords and JWT signatures. It returns the credential's
// own expiry (a JWT's exp) when it has one.
func (r *Resolver) lookupKey(ctx context.Context, credential []byte) (*portalstore.Credential, int64, error) {
	cred := bytes.TrimSpace(credential)
	switch {
	case len(cred) == 0 || len(cred) > maxCredential:
		return nil, 0, ErrUnknown
	case hasPrefixFold(cred, "basic "):
		return r.lookupBasic(ctx, bytes.TrimSpace(cred[6:]))
	case hasPrefixFold(cred, "bearer "):
		cred = bytes.TrimSpace(cred[7:])
	}
	if bytes.Count(cred, []byte{'.'}) == 2 {
		return r.lookupJWT(ctx, string(cred))
	}
	k, err := r.findKey(ctx, portalstore.HashKey(string(cred)))
	return k, 0, err
}

// maxCredential bounds what is hashed and parsed; real keys and JWTs are
// far shorter.
const maxCredential = 8 << 10

func (r *Resolver) findKey(ctx context.Context, hash string) (*portalstore.Credential, error) {
	start := time.Now()
	k, err := r.store.ResolveKey(ctx, hash)
	r.m.observeStore("key", start, err)
	if portalstore.ErrorCode(err) == portalstore.ENOTFOUND {
		return nil, ErrUnknown
	}
	return k, err
}

func (r *Resolver) lookupBasic(ctx context.Context, encoded []byte) (*portalstore.Credential, int64, error) {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(encoded)))
	n, err := base64.StdEncoding.Decode(raw, encoded)
	if err != nil {
		return nil, 0, ErrUnknown
	}
	user, pass, ok := bytes.Cut(raw[:n], []byte{':'})
	if !ok || len(user) == 0 {
		return nil, 0, ErrUnknown
	}
	select {
	case r.bcryptSlots <- struct{}{}:
		defer func() { <-r.bcryptSlots }()
	default:
		return nil, 0, ErrBusy
	}
	start := time.Now()
	c, err := r.store.ResolveBasicUser(ctx, string(user))
	r.m.observeStore("basic", start, err)
	if portalstore.ErrorCode(err) == portalstore.ENOTFOUND {
		portalstore.CheckPassword("", string(pass)) // same cost as a real check
		return nil, 0, ErrUnknown
	} else if err != nil {
		return nil, 0, err
	}
	if c.Key.AuthType != portalstore.AuthBasic || !portalstore.CheckPassword(c.Key.BasicPasswordHash, string(pass)) {
		return nil, 0, ErrUnknown
	}
	return c, 0, nil
}

// jwtMethods are the algorithms a JWT may name at all; "none" is never
// among them. Which of them a given key accepts is pinned by its material
// in keyFor.
var jwtMethods = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA"}

func (r *Resolver) lookupJWT(ctx context.Context, token string) (*portalstore.Credential, int64, error) {
	if !numericDates(token) {
		return nil, 0, ErrUnknown
	}
	var key *portalstore.Credential
	claims := jwt.RegisteredClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods(jwtMethods), jwt.WithLeeway(r.opts.JWTLeeway), jwt.WithIssuedAt())
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			// RFC 7515 §4.1.11: extensions the recipient must
			// understand; keylens understands none.
			return nil, ErrUnknown
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, ErrUnknown
		}
		k, err := r.findKey(ctx, portalstore.HashKey(kid))
		if errors.Is(err, ErrUnknown) {
			return nil, ErrUnknown
		} else if err != nil {
			return nil, storeError{err}
		}
		if k.Key.AuthType != portalstore.AuthJWT {
			return nil, ErrUnknown
		}
		key = k
		return verificationKey(&k.Key, t.Method)
	})
	if err != nil {
		// A store failure stays a failure; everything else about a token
		// (malformed, bad signature, expired, wrong algorithm) is an
		// unknown credential.
		var se storeError
		if errors.As(err, &se) {
			return nil, 0, se.error
		}
		return nil, 0, ErrUnknown
	}
	var exp int64
	if claims.ExpiresAt != nil {
		exp = claims.ExpiresAt.Unix()
	}
	return key, exp, nil
}

// DefaultJWTLeeway is the clock skew tolerated on JWT dates.
const DefaultJWTLeeway = 30 * time.Second

// maxNumericDate is the latest exp, nbf or iat a token may carry: the end
// of year 9999. Later dates (exp=1e30, say) are not dates but garbage, and
// a credential that never expires in practice should say so by leaving
// exp out.
const maxNumericDate = 253402300799

// numericDates reports whether the token's exp, nbf and iat, when present,
// are what RFC 7519 §2 says they are: JSON numbers (not strings, which
// golang-jwt would read as numbers), finite, from 1970 to the year 9999.
func numericDates(token string) bool {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first < 0 || last <= first {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(token[first+1 : last])
	if err != nil {
		return true // malformed: the parser refuses it
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(payload, &claims) != nil {
		return true // not an object: the parser refuses it
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		var n json.Number
		if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
			return false
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
			return false
		}
	}
	return true
}

// verificationKey returns the key to check a token signed with method,
// refusing any method the key's material does not pin: an HMAC secret
// verifies only HS*, a public key only its own family, so an HMAC token
// can never be checked against a public key used as a secret.
func verificationKey(k *portalstore.Key, method jwt.SigningMethod) (any, error) {
	if k.JWTPublicKey == "" {
		if _, ok := method.(*jwt.SigningMethodHMAC); ok && k.JWTSecret != "" {
			return []byte(k.JWTSecret), nil
		}
		return nil, ErrUnknown
	}
	pub, err := portalstore.ParsePublicKeyPEM(k.JWTPublicKey)
	if err != nil {
		return nil, ErrUnknown
	}
	switch pub.(type) {
	case *rsa.PublicKey:
		switch method.(type) {
		case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
			return pub, nil
		}
	case *ecdsa.PublicKey:
		if _, ok := method.(*jwt.SigningMethodECDSA); ok {
			return pub, nil
		}
	case ed25519.PublicKey:
		if _, ok := method.(*jwt.SigningMethodEd25519); ok {
			return pub, nil
		}
	}
	return nil, ErrUnknown
}

// storeError carries a store failure out of the JWT keyfunc.
type storeError struct{ error }

// entryFor builds the entry of a credential: the encoded answers.
func (r *Resolver) entryFor(c *portalstore.Credential, expires int64) (*Entry, error) {
	k, d := &c.Key, &c.Owner
	id := &identity.Identity{
		DeveloperID: d.ID, Email: d.Email, OrgID: d.OrgID, Fields: d.Fields,
		KeyID: k.Hash, Policies: k.Policies, KeyRequestFields: k.Fields, Expires: expires,
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
	size := len(body)
	for _, h := range headers {
		size += len(h.Name) + len(h.Value)
	}
	e := &Entry{Inactive: d.Inactive, Expires: expires, KeyID: k.Hash, DeveloperID: d.ID,
		buf: make([]byte, 0, size), hdrEnds: make([]uint32, 0, 2*len(headers)),
		assert: new(atomic.Pointer[assertion])}
	e.buf = append(e.buf, body...)
	e.jsonEnd = uint32(len(e.buf))
	for _, h := range headers {
		e.buf = append(e.buf, h.Name...)
		e.hdrEnds = append(e.hdrEnds, uint32(len(e.buf)))
		e.buf = append(e.buf, h.Value...)
		e.hdrEnds = append(e.hdrEnds, uint32(len(e.buf)))
	}
	return e, nil
}

// InvalidateKey drops every cached credential of a key hash.
func (r *Resolver) InvalidateKey(hash string) { r.cache.InvalidateKey(hash) }

// InvalidateDeveloper drops every cached credential of a developer.
func (r *Resolver) InvalidateDeveloper(id string) { r.cache.InvalidateDeveloper(id) }

// Purge drops everything cached.
func (r *Resolver) Purge() {
	r.cache.Purge()
	r.unknown.Purge()
}

// Apply invalidates what one change can have made stale, by the rule every
// keylens cache follows (identity.Change.Stale).
func (r *Resolver) Apply(c portalstore.Change) {
	hash, dev, newKey := wireChange(c).Stale()
	if hash != "" {
		r.cache.InvalidateKey(hash)
	}
	if dev != "" {
		r.cache.InvalidateDeveloper(dev)
	}
	if newKey {
		r.cache.Invalidated()
		r.unknown.Purge()
	}
}

// wireChange is c as the feed's readers receive it.
func wireChange(c portalstore.Change) identity.Change {
	return identity.Change{Seq: c.Seq, Time: c.Time, Kind: c.Kind, DeveloperID: c.DeveloperID, KeyHash: c.KeyHash, ClientID: c.ClientID}
}

// Len reports how many credentials are cached.
func (r *Resolver) Len() int { return r.cache.Len() }

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}
