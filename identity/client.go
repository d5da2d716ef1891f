package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
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
	// ErrNotSidecar: what answered is not a keylens sidecar (or not one
	// speaking this protocol); the error wrapping it says what is wrong.
	// Callers treat it as the sidecar being unavailable.
	ErrNotSidecar = errors.New("identity: not a keylens sidecar")
)

// A keylens sidecar marks its 401 and 403 answers to GET /developer with
// OutcomeHeader, so that a client can tell "unknown key" and "developer
// inactive" from any other service's 401 or 403 (an admin API, a proxy).
const (
	OutcomeHeader   = "X-Keylens-Outcome"
	OutcomeUnknown  = "unknown"
	OutcomeInactive = "inactive"
)

// Client asks a keylens sidecar who a key belongs to, caching answers in
// process: found identities for TTL, unknown and inactive answers for
// NegativeTTL. The cache is keyed by a keyed hash of the credential
// (cache.CredentialDigest), so it holds no raw key. Safe for concurrent use.
type Client struct {
	base      string
	http      *http.Client
	feed      *http.Client // long polls: the HTTP client's transport, no timeout
	verifier  *Verifier
	assertion string
	cache     *cache.Resolutions[Identity]
}

// ClientOptions configure NewClient; zero values take the defaults.
type ClientOptions struct {
	HTTPClient  *http.Client  // default: 2 s timeout
	Size        int           // cached identities; default 10,000
	TTL         time.Duration // default 10 s
	NegativeTTL time.Duration // default 1 s
	// Verifier, when set, requires every identity the sidecar finds to
	// come with a valid signed assertion (the sidecar's --assertions)
	// naming the same developer and key; AssertionHeader is its header,
	// by default DefaultHeaderNames.Assertion.
	Verifier        *Verifier
	AssertionHeader string
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
	if o.AssertionHeader == "" {
		o.AssertionHeader = DefaultHeaderNames.Assertion
	}
	return &Client{
		base:      strings.TrimRight(baseURL, "/"),
		http:      o.HTTPClient,
		feed:      &http.Client{Transport: o.HTTPClient.Transport},
		verifier:  o.Verifier,
		assertion: o.AssertionHeader,
		cache: cache.NewResolutions(cache.ResolutionsOptions[Identity]{
			Size: o.Size, TTL: int64(o.TTL), NegativeTTL: int64(o.NegativeTTL),
			Owner:           func(id *Identity) (string, string) { return id.KeyID, id.DeveloperID },
			Expires:         func(id *Identity) int64 { return id.Expires },
			RefusesInactive: true,
			Refusals:        []error{ErrUnknownKey, ErrInactive},
		}),
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
	id, _, err := c.cache.Resolve(cache.DigestOfString(credential), time.Now().UnixNano(), 0, func() (*Identity, error) {
		return c.Fetch(ctx, credential)
	})
	return id, err
}

// Apply drops what a change of the sidecar's feed (Changes) made
// stale, by the rule every keylens cache follows (Change.Stale), so that a
// caller following the feed can cache for long.
func (c *Client) Apply(ch Change) { c.cache.Invalidate(ch.Stale()) }

// Forget drops everything cached, e.g. after a revocation the caller
// learned of another way.
func (c *Client) Forget() { c.cache.Purge() }

// Fetch asks the sidecar without the cache: for callers that cache what
// they derive from an identity themselves. It accepts only a keylens
// sidecar's answers: 200 with a JSON identity naming a developer and a key
// (and, with a Verifier, a valid assertion of them), or 401 and 403 marked
// with OutcomeHeader. Anything else is an error that says what is wrong
// and never quotes the answer's body (a misdirected request may be echoed
// back, raw key and all); ErrNotSidecar when the answer cannot be a
// sidecar's.
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
	switch res.StatusCode {
	case http.StatusOK:
		return c.identityOf(ctx, res)
	case http.StatusUnauthorized:
		return nil, outcome(res, OutcomeUnknown, ErrUnknownKey)
	case http.StatusForbidden:
		return nil, outcome(res, OutcomeInactive, ErrInactive)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return nil, fmt.Errorf("identity: sidecar answered %d", res.StatusCode)
	default:
		return nil, fmt.Errorf("%w: answered %d to GET /developer", ErrNotSidecar, res.StatusCode)
	}
}

// outcome returns answer when the 401 or 403 in res is marked as the
// sidecar marks it, else what is wrong.
func outcome(res *http.Response, want string, answer error) error {
	switch got := res.Header.Get(OutcomeHeader); got {
	case want:
		return answer
	case "":
		return fmt.Errorf("%w: answered %d without %s", ErrNotSidecar, res.StatusCode, OutcomeHeader)
	default:
		return fmt.Errorf("%w: answered %d with %s %.32q", ErrNotSidecar, res.StatusCode, OutcomeHeader, got)
	}
}

// identityOf reads a 200 answer: a JSON identity of a developer and a key,
// with its assertion when one is required.
func (c *Client) identityOf(ctx context.Context, res *http.Response) (*Identity, error) {
	ct := res.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: answered 200 with Content-Type %.64q, not application/json", ErrNotSidecar, ct)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("identity: read sidecar answer: %w", err)
	}
	var id Identity
	if err := json.Unmarshal(body, &id); err != nil {
		return nil, fmt.Errorf("%w: the 200 answer is not an identity (%v)", ErrNotSidecar, jsonProblem(err))
	}
	switch {
	case id.DeveloperID == "" && id.KeyID == "":
		return nil, fmt.Errorf("%w: the 200 answer names no developer_id and no key_id", ErrNotSidecar)
	case id.DeveloperID == "":
		return nil, fmt.Errorf("%w: the 200 answer names no developer_id", ErrNotSidecar)
	case id.KeyID == "":
		return nil, fmt.Errorf("%w: the 200 answer names no key_id", ErrNotSidecar)
	}
	if c.verifier != nil {
		token := res.Header.Get(c.assertion)
		if token == "" {
			return nil, fmt.Errorf("identity: assertions are required but the sidecar sent no %s (start it with --assertions)", c.assertion)
		}
		claimed, err := c.verifier.Verify(ctx, token)
		if err != nil {
			return nil, err
		}
		if claimed.DeveloperID != id.DeveloperID || claimed.KeyID != id.KeyID {
			return nil, errors.New("identity: the assertion names another developer or key than the answer")
		}
	}
	return &id, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "a JSON " + typ.Value + ", not an object"
		}
		return fmt.Sprintf("%s is a JSON %s", typ.Field, typ.Value)
	}
	return "unreadable"
}
