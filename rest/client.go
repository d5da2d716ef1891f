package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

// Client reads what a sidecar needs from a keylens portal over its admin
// API: keys with their verification material, developers and the change
// feed. It answers with the store's error codes, so that a sidecar treats
// it as it treats a store.
type Client struct {
	base     string
	adminKey string
	http     *http.Client
}

// NewClient returns a client of the portal at base (http://host:port),
// authenticating with adminKey.
func NewClient(base, adminKey string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL", base)
	}
	return &Client{
		base:     strings.TrimSuffix(u.String(), "/"),
		adminKey: adminKey,
		// No overall timeout: long polls wait up to maxChangeWait, and
		// every call carries its own deadline.
		http: &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     90 * time.Second,
		}},
	}, nil
}

// lookupTimeout bounds a single lookup; the request waiting on it is a
// gateway's.
const lookupTimeout = 5 * time.Second

// maxResponse bounds what is read from the portal.
const maxResponse = 32 << 20

// get fetches path?query into out, mapping error answers to store errors.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, out)
}

// do sends a request with the admin key and decodes a 200 answer into out;
// other answers become store errors.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.adminKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Not the *url.Error itself: its URL carries the query, which may
		// name a Basic username (a key id), and this error is logged.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return keylens.Errorf(keylens.EINTERNAL, "portal unreachable (%s %s): %v", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return keylens.Errorf(keylens.EINTERNAL, "reading the portal's answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var env envelope
		_ = json.Unmarshal(answer, &env)
		code := CodeOfStatus(resp.StatusCode)
		if resp.StatusCode == http.StatusRequestEntityTooLarge || resp.StatusCode == http.StatusMethodNotAllowed {
			code = keylens.EINVALID // the request's own fault: too large, or a method the route does not take
		}
		switch code {
		case keylens.EUNAUTHORIZED:
			if env.Message != notAuthorised && env.Message != "" {
				return keylens.Errorf(code, "%s", env.Message) // a client's credentials, not the admin key
			}
			return keylens.Errorf(code, "the portal refused the admin key")
		case "", keylens.EINTERNAL:
			return keylens.Errorf(keylens.EINTERNAL, "portal answered %d to %s: %s", resp.StatusCode, path, env.Message)
		default:
			return keylens.Errorf(code, "%s", env.Message)
		}
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return keylens.Errorf(keylens.EINTERNAL, "the portal's answer to %s: %v", path, err)
	}
	return nil
}

func (c *Client) resolve(ctx context.Context, path string, query url.Values) (*keylens.Credential, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	var cred keylens.Credential
	rec := credentialRecord{Key: keyRecord{Key: &cred.Key}}
	if err := c.get(ctx, path, query, &rec); err != nil {
		return nil, err
	}
	k := &cred.Key
	k.BasicPasswordHash, k.JWTSecret, k.JWTPublicKey = rec.Key.BasicPasswordHash, rec.Key.JWTSecret, rec.Key.JWTPublicKey
	cred.Owner, cred.Token = rec.Owner, rec.Token
	if k.Hash == "" || cred.Owner.ID == "" || cred.Owner.ID != k.DeveloperID {
		return nil, keylens.Errorf(keylens.EINTERNAL, "the portal's answer to %s is not a credential", path)
	}
	return &cred, nil
}

// ResolveKey returns the key with hash and its owner, in one round trip;
// ENOTFOUND if none.
func (c *Client) ResolveKey(ctx context.Context, hash string) (*keylens.Credential, error) {
	return c.resolve(ctx, "/api/keylens/credentials/"+url.PathEscape(hash), nil)
}

// ResolveBasicUser returns the basic key of username and its owner, in one
// round trip; ENOTFOUND if none.
func (c *Client) ResolveBasicUser(ctx context.Context, username string) (*keylens.Credential, error) {
	return c.resolve(ctx, "/api/keylens/credentials", url.Values{"basic_username": {username}})
}

// ResolveToken returns the OAuth access token with hash, its grant and
// its developer, in one round trip; ENOTFOUND if none.
func (c *Client) ResolveToken(ctx context.Context, hash string) (*keylens.Credential, error) {
	cred, err := c.resolve(ctx, "/api/keylens/credentials", url.Values{"token_hash": {hash}})
	if err == nil && cred.Token == nil {
		return nil, keylens.Errorf(keylens.EINTERNAL, "the portal's answer for a token is not a token")
	}
	return cred, err
}

var _ keylens.TokenService = (*Client)(nil)

// IssueToken files a token for the client cred authenticates, through the
// portal; the token itself never leaves the caller, only its hash.
func (c *Client) IssueToken(ctx context.Context, cred keylens.ClientCredentials, hash string, ttl time.Duration) (*keylens.TokenGrant, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	body, err := json.Marshal(clientTokenBody{ClientID: cred.ID, ClientSecret: cred.Secret, TokenHash: hash,
		TTLSeconds: max(int64(ttl/time.Second), 1)})
	if err != nil {
		return nil, err
	}
	var g keylens.TokenGrant
	if err := c.do(ctx, http.MethodPost, "/api/keylens/oauth/tokens", nil, body, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// RevokeClientToken revokes a token of the client cred authenticates,
// through the portal.
func (c *Client) RevokeClientToken(ctx context.Context, cred keylens.ClientCredentials, hash string) error {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	body, err := json.Marshal(clientTokenBody{ClientID: cred.ID, ClientSecret: cred.Secret, TokenHash: hash})
	if err != nil {
		return err
	}
	var out envelope
	return c.do(ctx, http.MethodPost, "/api/keylens/oauth/tokens/revoke", nil, body, &out)
}

// WaitForChanges long-polls the portal's change feed.
func (c *Client) WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]keylens.Change, bool, error) {
	wait = min(wait, maxChangeWait)
	ctx, cancel := context.WithTimeout(ctx, wait+lookupTimeout)
	defer cancel()
	var out changesResponse
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}, "wait": {wait.String()}}
	if err := c.get(ctx, "/api/keylens/changes", q, &out); err != nil {
		return nil, false, err
	}
	return out.Changes, out.Reset, nil
}

// LastChange returns the newest sequence number of the portal's feed.
func (c *Client) LastChange(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	var out struct {
		Last int64 `json:"last"`
	}
	err := c.get(ctx, "/api/keylens/changes/last", nil, &out)
	return out.Last, err
}

var _ keylens.HitWriter = (*Client)(nil)

// hitsPerPost bounds the series of one POST /api/keylens/hits, well inside
// the route's body limit; a larger batch travels alone.
const hitsPerPost = 10000

// AddHits sends batches to the portal, whole batches to a request, and
// reports which the portal applied now. It returns once the portal has
// committed them.
func (c *Client) AddHits(ctx context.Context, batches []keylens.HitBatch) ([]bool, error) {
	applied := make([]bool, 0, len(batches))
	for len(batches) > 0 {
		n, rows := 0, 0
		for n < len(batches) && (n == 0 || rows+len(batches[n].Series) <= hitsPerPost) {
			rows += len(batches[n].Series)
			n++
		}
		body, err := json.Marshal(struct {
			Batches []keylens.HitBatch `json:"batches"`
		}{batches[:n]})
		if err != nil {
			return nil, err
		}
		var out struct {
			Meta hitsApplied
		}
		if err := c.do(ctx, http.MethodPost, "/api/keylens/hits", nil, body, &out); err != nil {
			return nil, err
		}
		if len(out.Meta.Applied) != n {
			return nil, keylens.Errorf(keylens.EINTERNAL, "the portal answered %d batch outcomes for %d batches", len(out.Meta.Applied), n)
		}
		applied = append(applied, out.Meta.Applied...)
		batches = batches[n:]
	}
	return applied, nil
}

// Ping reports whether the portal answers with the admin key accepted.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.LastChange(ctx)
	return err
}
