package sidecar_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/sqlstore"
)

// requestMark is a user value the test server sets on every RequestCtx: a
// context that answers it is, or derives from, a request's.
type requestMark struct{}

// markedStore is the real store, counting the calls made of it and
// recording those whose context carries requestMark.
type markedStore struct {
	*sqlstore.DB
	mu     sync.Mutex
	calls  map[string]int
	marked []string
}

func (s *markedStore) saw(ctx context.Context, call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[call]++
	if ctx.Value(requestMark{}) != nil {
		s.marked = append(s.marked, call)
	}
}

func (s *markedStore) ResolveKey(ctx context.Context, hash string) (*keylens.Credential, error) {
	s.saw(ctx, "ResolveKey")
	return s.DB.ResolveKey(ctx, hash)
}

func (s *markedStore) ResolveBasicUser(ctx context.Context, username string) (*keylens.Credential, error) {
	s.saw(ctx, "ResolveBasicUser")
	return s.DB.ResolveBasicUser(ctx, username)
}

func (s *markedStore) ResolveToken(ctx context.Context, hash string) (*keylens.Credential, error) {
	s.saw(ctx, "ResolveToken")
	return s.DB.ResolveToken(ctx, hash)
}

func (s *markedStore) IssueToken(ctx context.Context, c keylens.ClientCredentials, hash string, ttl time.Duration) (*keylens.TokenGrant, error) {
	s.saw(ctx, "IssueToken")
	return s.DB.IssueToken(ctx, c, hash, ttl)
}

func (s *markedStore) RevokeClientToken(ctx context.Context, c keylens.ClientCredentials, hash string) error {
	s.saw(ctx, "RevokeClientToken")
	return s.DB.RevokeClientToken(ctx, c, hash)
}

func (s *markedStore) LastChange(ctx context.Context) (int64, error) {
	s.saw(ctx, "LastChange")
	return s.DB.LastChange(ctx)
}

func (s *markedStore) WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]keylens.Change, bool, error) {
	s.saw(ctx, "WaitForChanges")
	return s.DB.WaitForChanges(ctx, after, limit, wait)
}

// No request's RequestCtx reaches the store, not even wrapped: fasthttp
// reuses it once the handler returns, while the SQLite driver's interrupt
// watcher, started on the context of a query, may read it later (a data
// race the race detector caught on a cache miss).
func TestTheStoreNeverGetsARequestContext(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	store := &markedStore{DB: f.db, calls: map[string]int{}}
	r := sidecar.NewResolver(store, sidecar.ResolverOptions{})
	follow, stop := context.WithCancel(ctx)
	defer stop()
	go r.Follow(follow, f.db) // the store wrapped sees only requests' calls
	for deadline := time.Now().Add(10 * time.Second); r.Applied() < 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the resolver did not start following the change feed")
		}
	}
	c := analytics.NewCommitter(f.db, analytics.CommitterOptions{})
	defer c.Close(ctx)
	of := &oauthFixture{fixture: f}
	of.url = "http://" + serveOnLoopback(t, sidecar.Config{Resolver: r, Tokens: store, Feed: store, Hits: c}, func(s *fasthttp.Server) {
		h := s.Handler
		s.Handler = func(ctx *fasthttp.RequestCtx) {
			ctx.SetUserValue(requestMark{}, true)
			h(ctx)
		}
	})

	raw := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})
	basic := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	oauth := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-oauth"})
	client := keylens.ClientCredentials{ID: oauth.OAuthClient.ClientID, Secret: oauth.OAuthClient.Secret}
	tok := of.token(t, client)
	// Every lookup a miss: the cache is emptied before each.
	for _, cred := range []string{raw.RawKey, string(basicCred(basic.RawKey, basic.Password)), "Bearer " + tok, "unknown"} {
		want := 200
		if cred == "unknown" {
			want = 401
		}
		for _, path := range []string{"/auth", "/developer"} {
			r.Purge()
			if a := of.get(t, path, cred); a.status != want {
				t.Errorf("%s %q: %d", path, cred, a.status)
			}
		}
	}
	for _, token := range []string{raw.RawKey, tok, "unknown"} {
		r.Purge()
		if a := of.post(t, "/introspect", form, "token="+url.QueryEscape(token), ""); a.status != 200 || a.body["active"] != (token != "unknown") {
			t.Errorf("/introspect %q: %d %s", token, a.status, a.raw)
		}
	}
	if a := of.post(t, "/hits", "application/json", `[{"key":"a-username","api_id":"api-1","code":200}]`, ""); a.status != 200 {
		t.Errorf("/hits: %d %s", a.status, a.raw)
	}
	if a := of.post(t, "/oauth/revoke", form, "token="+url.QueryEscape(tok), basicAuth(client)); a.status != 200 {
		t.Errorf("/oauth/revoke: %d %s", a.status, a.raw)
	}
	// The keys issued are changes: a wait for one past 0 ends with it.
	for _, q := range []string{"after=0&wait=10s", "after=1000000"} {
		if a := of.get(t, "/changes?"+q, ""); a.status != 200 {
			t.Errorf("/changes?%s: %d %s", q, a.status, a.raw)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for _, call := range []string{"ResolveKey", "ResolveBasicUser", "ResolveToken", "IssueToken", "RevokeClientToken", "LastChange", "WaitForChanges"} {
		if store.calls[call] == 0 {
			t.Errorf("no request called %s", call)
		}
	}
	if len(store.marked) > 0 {
		t.Errorf("the store got a request's context in %v", store.marked)
	}
}
