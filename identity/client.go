package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/keylens/keylens/identity/cache"
)

// Errors a lookup can end in besides a transport failure.
var (
	// ErrUnknownKey: no developer holds this key (or it was revoked).
	ErrUnknownKey = errors.New("identity: unknown key")
	// ErrInactive: the key's developer is deactivated.
	ErrInactive = errors.New("identity: developer inactive")
)

// Client asks a keylens sidecar who a key belongs to, caching answers in
// process: found identities for TTL, unknown and inactive answers for
// NegativeTTL. The cache is keyed by a keyed hash of the credential
// (cache.Key), so it holds no raw key. Safe for concurrent use.
type Client struct {
	base   string
	http   *http.Client
	cache  *cache.Cache[*Identity]
	misses *cache.Cache[error]
}

// ClientOptions configure NewClient; zero values take the defaults.
type ClientOptions struct {
	HTTPClient  *http.Client  // default: 2 s timeout
	Size        int           // cached identities; default 10,000
	TTL         time.Duration // default 10 s
	NegativeTTL time.Duration // default 1 s
}

// NewClient returns a client of the sidecar at baseURL (http://host:port).
func NewClient(baseURL string, o ClientOptions) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 2 * time.Second}
	}
	if o.Size <= 0 {
		o.Size = 10000
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = time.Second
	}
	return &Client{
		base:   strings.TrimRight(baseURL, "/"),
		http:   o.HTTPClient,
		cache:  cache.New[*Identity](o.Size, int64(o.TTL), nil),
		misses: cache.New[error](max(o.Size/10, 100), int64(o.NegativeTTL), nil),
	}
}

// Lookup returns the identity behind credential: a raw key, "Bearer <key
// or JWT>" or "Basic <credentials>", as a request's Authorization carries
// it. ErrUnknownKey and ErrInactive are answers, not failures. The returned
// Identity is shared: do not modify it.
func (c *Client) Lookup(ctx context.Context, credential string) (*Identity, error) {
	if credential == "" {
		return nil, ErrUnknownKey
	}
	k := cache.KeyOfString(credential)
	now := time.Now().UnixNano()
	if id, ok := c.cache.Get(k, now, 0); ok {
		if (*id).Expires == 0 || (*id).Expires > now/1e9 {
			return *id, nil
		}
		c.cache.Remove(k)
	}
	if err, ok := c.misses.Get(k, now, 0); ok {
		return nil, *err
	}
	id, err := c.Fetch(ctx, credential)
	switch {
	case err == nil:
		c.cache.Add(k, id, now)
	case errors.Is(err, ErrUnknownKey), errors.Is(err, ErrInactive):
		c.misses.Add(k, err, now)
	}
	return id, err
}

// Forget drops everything cached, e.g. after a revocation the caller
// learned of another way.
func (c *Client) Forget() {
	c.cache.Purge()
	c.misses.Purge()
}

// Fetch asks the sidecar without the cache: for callers that cache what
// they derive from an identity themselves.
func (c *Client) Fetch(ctx context.Context, credential string) (*Identity, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/developer", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", credential)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identity: ask sidecar: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("identity: read sidecar answer: %w", err)
	}
	switch res.StatusCode {
	case http.StatusOK:
		var id Identity
		if err := json.Unmarshal(body, &id); err != nil {
			return nil, fmt.Errorf("identity: sidecar answer: %w", err)
		}
		return &id, nil
	case http.StatusUnauthorized:
		return nil, ErrUnknownKey
	case http.StatusForbidden:
		return nil, ErrInactive
	default:
		return nil, fmt.Errorf("identity: sidecar answered %d", res.StatusCode)
	}
}
