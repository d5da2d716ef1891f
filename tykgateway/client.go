// Package tykgateway is a client of a Tyk gateway's REST API (/tyk/): keys
// by hash, OAuth clients and their tokens, policies and APIs. It follows the
// gateway's documented behaviour (docs/tyk-facts.md, "The Gateway API"):
// every call sends the secret in X-Tyk-Authorization, keys are addressed by
// their hash (?hashed=1), a PUT replaces a whole session, and the OAuth
// revoke endpoints take form fields.
package tykgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one gateway. Its methods are safe for concurrent use.
type Client struct {
	base   *url.URL
	secret string
	http   *http.Client
}

// DefaultTimeout bounds one call: an approval waits for the gateway before
// it commits.
const DefaultTimeout = 5 * time.Second

// helloTimeout bounds one health probe (Hello).
const helloTimeout = time.Second

// New returns a client of the gateway at baseURL (http or https, e.g.
// http://tyk:8080) that sends secret, the gateway's "secret" setting.
func New(baseURL, secret string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("want an http or https URL without credentials, e.g. http://tyk-gateway:8080") // never echoed: it may hold a password
	}
	if secret == "" {
		return nil, errors.New("the gateway's secret is empty")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, secret: secret, http: &http.Client{Timeout: DefaultTimeout}}, nil
}

// URL is the gateway's base URL.
func (c *Client) URL() string { return c.base.String() }

// Error is what went wrong with a call of the gateway: its refusal (Status
// and Message), or no answer at all (Status 0: unreachable, timed out, an
// answer that did not read).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return "gateway unreachable: " + e.Message
	}
	if e.Message == "" {
		return fmt.Sprintf("gateway answered %d", e.Status)
	}
	return fmt.Sprintf("gateway answered %d: %s", e.Status, e.Message)
}

// IsGateway reports whether err came from the gateway (an answer or
// none), rather than from keylens's side.
func IsGateway(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// IsNotFound reports whether err is the gateway's 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// StatusOf is the gateway's status in err; 0 when the gateway did not
// answer (unreachable, timed out).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// maxAnswer bounds what is read of one answer.
const maxAnswer = 32 << 20

// do sends one request and decodes a 2xx JSON answer into out (when not
// nil). body is JSON-encoded unless it is url.Values (sent as a form).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encoding a gateway request: %w", err)
		}
		rd, ctype = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Tyk-Authorization", c.secret)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Never the URL: a key's id in a path is as good as the key.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &Error{Message: err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return &Error{Message: "reading the answer: " + err.Error()}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var msg struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(raw, &msg)
		if msg.Message == "" {
			msg.Message = msg.Error
		}
		return &Error{Status: resp.StatusCode, Message: msg.Message}
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // quota counters are int64: no float rounding on a round trip
	if err := dec.Decode(out); err != nil {
		return &Error{Status: resp.StatusCode, Message: fmt.Sprintf("an answer to %s that does not decode: %v", method, err)}
	}
	return nil
}

// Hello asks the gateway's health check (/hello, no secret needed): nil
// when the gateway answers at all, whatever it says of its health. It
// waits at most a second: a cheap probe while the gateway is down.
func (c *Client) Hello(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	err := c.do(ctx, http.MethodGet, "/hello", nil, nil, nil)
	if StatusOf(err) != 0 {
		return nil
	}
	return err
}

// Session is a key's session as the gateway stores it. It is a map, so
// that a read-modify-write (GetKey, then PutKey) keeps every member this
// client does not know, as a PUT replaces the whole session.
type Session map[string]any

// Policies returns apply_policies.
func (s Session) Policies() []string { return stringList(s["apply_policies"]) }

// Meta returns meta_data (nil when absent).
func (s Session) Meta() map[string]any {
	m, _ := s["meta_data"].(map[string]any)
	return m
}

// Expires returns expires (Unix seconds; 0 when absent or not a number).
func (s Session) Expires() int64 {
	switch v := s["expires"].(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	case float64:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	}
	return 0
}

// String returns member name when it is a string.
func (s Session) String(name string) string {
	v, _ := s[name].(string)
	return v
}

func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// KeyAnswer is the gateway's answer to a key write.
type KeyAnswer struct {
	Key     string `json:"key"`
	Status  string `json:"status"`
	Action  string `json:"action"`
	KeyHash string `json:"key_hash"`
}

var hashed = url.Values{"hashed": {"1"}}

// CreateKey creates (or overwrites) the key the gateway forms from name and
// s's org_id: POST /tyk/keys/{name}. The answer's Key is the stored name
// (for a generated key of the org, the raw key) and KeyHash its hash.
func (c *Client) CreateKey(ctx context.Context, name string, s Session) (*KeyAnswer, error) {
	var a KeyAnswer
	err := c.do(ctx, http.MethodPost, "/tyk/keys/"+url.PathEscape(name), nil, s, &a)
	return &a, err
}

// GetKey reads the session of the key with hash.
func (c *Client) GetKey(ctx context.Context, hash string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodGet, "/tyk/keys/"+url.PathEscape(hash), hashed, nil, &s)
	return s, err
}

// PutKey replaces the whole session of the key with hash (404 if absent).
// suppressReset keeps its quota counters.
func (c *Client) PutKey(ctx context.Context, hash string, s Session, suppressReset bool) error {
	q := url.Values{"hashed": {"1"}}
	if suppressReset {
		q.Set("suppress_reset", "1")
	}
	return c.do(ctx, http.MethodPut, "/tyk/keys/"+url.PathEscape(hash), q, s, nil)
}

// SetKeyPolicies swaps only the policies of the key with hash, keeping the
// rest of its session and its quota counters.
func (c *Client) SetKeyPolicies(ctx context.Context, hash string, policies []string) error {
	if policies == nil {
		policies = []string{}
	}
	return c.do(ctx, http.MethodPost, "/tyk/keys/policy/"+url.PathEscape(hash), nil,
		map[string]any{"apply_policies": policies}, nil)
}

// DeleteKey deletes the key with hash; IsNotFound when there is none.
func (c *Client) DeleteKey(ctx context.Context, hash string) error {
	return c.do(ctx, http.MethodDelete, "/tyk/keys/"+url.PathEscape(hash), hashed, nil, nil)
}

// DeleteKeyByName deletes a key by its name, looked up as the gateway's
// key of (orgID, name), then as given: for a gateway that does not hash
// keys.
func (c *Client) DeleteKeyByName(ctx context.Context, name, orgID string) error {
	return c.do(ctx, http.MethodDelete, "/tyk/keys/"+url.PathEscape(name), url.Values{"org_id": {orgID}}, nil, nil)
}

// ListKeys returns the stored key names (their hashes when the gateway
// hashes keys). A gateway with hash_keys on answers 404 unless its
// enable_hashed_keys_listing is set.
func (c *Client) ListKeys(ctx context.Context) ([]string, error) {
	var out struct {
		Keys []string `json:"keys"`
	}
	err := c.do(ctx, http.MethodGet, "/tyk/keys", nil, nil, &out)
	return out.Keys, err
}

// Policy is what this client reads of a gateway policy.
type Policy struct {
	ID           string                     `json:"id"`
	MongoID      string                     `json:"_id"`
	Name         string                     `json:"name"`
	OrgID        string                     `json:"org_id"`
	IsInactive   bool                       `json:"is_inactive"`
	AccessRights map[string]json.RawMessage `json:"access_rights"`
}

// PolicyID is the policy's id (its id, else its _id).
func (p Policy) PolicyID() string {
	if p.ID != "" {
		return p.ID
	}
	return p.MongoID
}

// Policies lists the gateway's policies (those it has loaded).
func (c *Client) Policies(ctx context.Context) ([]Policy, error) {
	var out []Policy
	err := c.do(ctx, http.MethodGet, "/tyk/policies", nil, nil, &out)
	return out, err
}

// WritePolicy creates policy p (POST /tyk/policies), or replaces it when
// exists (PUT /tyk/policies/{id}). The gateway writes it to its policy
// path and uses it after a reload; it refuses with a 500 when its policies
// come from a Dashboard.
func (c *Client) WritePolicy(ctx context.Context, p map[string]any, exists bool) error {
	if exists {
		id, _ := p["id"].(string)
		return c.do(ctx, http.MethodPut, "/tyk/policies/"+url.PathEscape(id), nil, p, nil)
	}
	return c.do(ctx, http.MethodPost, "/tyk/policies", nil, p, nil)
}

// Reload asks every gateway of the group to reload its APIs and policies.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/tyk/reload/group", nil, nil, nil)
}

// API is what this client reads of an API definition.
type API struct {
	APIID     string `json:"api_id"`
	Name      string `json:"name"`
	OrgID     string `json:"org_id"`
	UseOAuth2 bool   `json:"use_oauth2"`
}

// APIs lists the gateway's API definitions.
func (c *Client) APIs(ctx context.Context) ([]API, error) {
	var out []API
	err := c.do(ctx, http.MethodGet, "/tyk/apis", nil, nil, &out)
	return out, err
}

// OAuthClient is an OAuth client as the gateway's client API takes and
// answers it.
type OAuthClient struct {
	ClientID    string         `json:"client_id"`
	Secret      string         `json:"secret"`
	RedirectURI string         `json:"redirect_uri"`
	APIID       string         `json:"api_id,omitempty"`
	PolicyID    string         `json:"policy_id"`
	MetaData    map[string]any `json:"meta_data,omitempty"`
	Description string         `json:"description,omitempty"`
}

// CreateOAuthClient creates c (without APIID: on every OAuth API of its
// policy) and returns the gateway's answer.
func (c *Client) CreateOAuthClient(ctx context.Context, oc OAuthClient) (*OAuthClient, error) {
	var out OAuthClient
	err := c.do(ctx, http.MethodPost, "/tyk/oauth/clients/create", nil, oc, &out)
	return &out, err
}

// GetOAuthClient reads client clientID of API apiID; IsNotFound when the
// API has no such client.
func (c *Client) GetOAuthClient(ctx context.Context, apiID, clientID string) (*OAuthClient, error) {
	var out OAuthClient
	err := c.do(ctx, http.MethodGet, "/tyk/oauth/clients/"+url.PathEscape(apiID)+"/"+url.PathEscape(clientID), nil, nil, &out)
	return &out, err
}

// UpdateOAuthClient rewrites client oc.ClientID of API apiID: its redirect
// URI, policy, metadata and description (the gateway keeps its id and
// secret). IsNotFound when the API has no such client.
func (c *Client) UpdateOAuthClient(ctx context.Context, apiID string, oc OAuthClient) error {
	return c.do(ctx, http.MethodPut, "/tyk/oauth/clients/"+url.PathEscape(apiID)+"/"+url.PathEscape(oc.ClientID), nil, oc, nil)
}

// DeleteOAuthClient deletes client clientID of API apiID; its tokens stop
// working. IsNotFound when the API has no such client.
func (c *Client) DeleteOAuthClient(ctx context.Context, apiID, clientID string) error {
	return c.do(ctx, http.MethodDelete, "/tyk/oauth/clients/"+url.PathEscape(apiID)+"/"+url.PathEscape(clientID), nil, nil, nil)
}

// RevokeToken revokes one OAuth token of client clientID (tokenTypeHint
// "access_token" or "refresh_token"); the endpoint takes form fields.
func (c *Client) RevokeToken(ctx context.Context, token, tokenTypeHint, clientID, orgID string) error {
	return c.do(ctx, http.MethodPost, "/tyk/oauth/revoke", nil, url.Values{
		"token": {token}, "token_type_hint": {tokenTypeHint}, "client_id": {clientID}, "org_id": {orgID}}, nil)
}

// RevokeAllTokens revokes every token of a client. The gateway answers 200
// even when the secret is wrong (and then revokes nothing).
func (c *Client) RevokeAllTokens(ctx context.Context, clientID, clientSecret, orgID string) error {
	return c.do(ctx, http.MethodPost, "/tyk/oauth/revoke_all", nil, url.Values{
		"client_id": {clientID}, "client_secret": {clientSecret}, "org_id": {orgID}}, nil)
}
