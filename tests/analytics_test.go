package tests

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/keylens/keylens"
)

// hitRow is one row of Tyk's aggregate analytics answer.
type hitRow struct {
	ID struct {
		Day, Month, Year, Hour, Code int
	} `json:"id"`
	Hits, Success, Error int64
	LastHit              string  `json:"last_hit"`
	RequestTime          float64 `json:"request_time"`
}

type hitList struct {
	Data  []hitRow `json:"data"`
	Pages int      `json:"pages"`
}

// postHits sends a POST /hits body to the sidecar.
func (in *instance) postHits(body string) response {
	in.t.Helper()
	return in.sidecar("POST", "/hits", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
}

// seedHits are the hits behind the Tyk Classic Portal API's example answer: on 9/8/2017 the
// two keys got 13 hits, 10 answered 200 and 3 errors; plus hits outside the
// queried range and another key's, which must not count.
func seedHits() string {
	var h []string
	add := func(n int, key, api, code, at string, extra string) {
		for range n {
			h = append(h, fmt.Sprintf(`{"key":%q,"api_id":%q,"code":%s,"time":%q%s}`, key, api, code, at, extra))
		}
	}
	add(6, "add2b342", "8e4d983609c044984ecbb286b8d25cd9", "200", "2017-08-09T09:15:00Z", `,"latency_ms":10`)
	add(4, "5f1d9603", "8e4d983609c044984ecbb286b8d25cd9", "200", "2017-08-09T12:31:02Z", `,"latency_ms":20`)
	add(2, "5f1d9603", "8e4d983609c044984ecbb286b8d25cd9", "500", "2017-08-09T12:00:00Z", "")
	add(1, "add2b342", "other-api", "404", "2017-08-09T10:00:00Z", "")
	add(5, "add2b342", "8e4d983609c044984ecbb286b8d25cd9", "200", "2017-08-12T23:59:59Z", "") // in range: to is inclusive
	add(7, "add2b342", "8e4d983609c044984ecbb286b8d25cd9", "200", "2017-08-14T00:00:00Z", "") // after the range
	add(3, "add2b342", "8e4d983609c044984ecbb286b8d25cd9", "200", "2017-08-04T23:59:59Z", "") // before it
	add(9, "ffffffff", "8e4d983609c044984ecbb286b8d25cd9", "200", "2017-08-09T12:00:00Z", "") // another key
	return "[" + strings.Join(h, ",") + "]"
}

// TestAggregateAnalyticsSeedCall feeds hits through the sidecar's /hits,
// kills keylens at once (kill -9: a 200 from /hits means the hits are
// stored, so none may be lost), starts it again and checks the Tyk Classic Portal API's
// example call and its variants to the hit.
func TestAggregateAnalyticsSeedCall(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	if r := in.postHits(seedHits()); r.Status != 200 || string(r.Body) != `{"recorded":37,"dropped":0}` {
		t.Fatalf("POST /hits: %d %s", r.Status, r.Body)
	}
	in.kill()
	in = startKeylens(t, in.Store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})

	get := func(path string) hitList {
		t.Helper()
		r := in.do("GET", path, "")
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
		return decodeAs[hitList](t, r)
	}
	rowsOf := func(l hitList) string {
		var s []string
		for _, r := range l.Data {
			s = append(s, fmt.Sprintf("%d/%d/%d h%d c%d: %d %d %d", r.ID.Day, r.ID.Month, r.ID.Year, r.ID.Hour, r.ID.Code, r.Hits, r.Success, r.Error))
		}
		return strings.Join(s, "; ")
	}

	// The Tyk Classic Portal API's call, verbatim (its api_id is the API of the hits).
	seed := get("/api/activity/keys/aggregate/add2b342,5f1d9603,/5/8/2017/13/8/2017?api_id=8e4d983609c044984ecbb286b8d25cd9&api_version=Non+Versioned&p=-1&res=day")
	if got, want := rowsOf(seed), "9/8/2017 h0 c200: 12 10 2; 12/8/2017 h0 c200: 5 5 0"; got != want || seed.Pages != 0 {
		t.Errorf("seed call:\n got %s (pages %d)\nwant %s", got, seed.Pages, want)
	}
	if r := seed.Data[0]; r.LastHit != "2017-08-09T12:31:02Z" || r.RequestTime != 14 {
		t.Errorf("last_hit %s, request_time %v; want 2017-08-09T12:31:02Z and (6×10+4×20)/10 = 14", r.LastHit, r.RequestTime)
	}
	for _, c := range []struct{ name, path, want string }{
		// Without the API filter the other API's 404 counts too: 13
		// hits, 3 errors, as in the Tyk Classic Portal API's answer.
		{"all APIs", "/api/activity/keys/aggregate/add2b342,5f1d9603,/5/8/2017/13/8/2017?p=-1&res=day",
			"9/8/2017 h0 c200: 13 10 3; 12/8/2017 h0 c200: 5 5 0"},
		{"res=hour, zero-padded dates", "/api/activity/keys/aggregate/add2b342,5f1d9603/09/08/2017/09/08/2017?res=hour&p=-1",
			"9/8/2017 h9 c200: 6 6 0; 9/8/2017 h10 c404: 1 0 1; 9/8/2017 h12 c200: 6 4 2"},
		{"by_code", "/api/activity/keys/aggregate/add2b342,5f1d9603/9/8/2017/9/8/2017?by_code=true",
			"9/8/2017 h0 c200: 10 10 0; 9/8/2017 h0 c404: 1 0 1; 9/8/2017 h0 c500: 2 0 2"},
		{"res=month", "/api/activity/keys/aggregate/add2b342,5f1d9603/1/8/2017/31/8/2017?res=month",
			"0/8/2017 h0 c200: 28 25 3"},
		{"single key", "/api/activity/keys/5f1d9603/9/8/2017/9/8/2017",
			"9/8/2017 h0 c200: 6 4 2"},
	} {
		if got := rowsOf(get(c.path)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
	// Paging: 10 rows a page.
	paged := get("/api/activity/keys/aggregate/add2b342/1/8/2017/31/8/2017?res=hour&p=1")
	if len(paged.Data) != 5 || paged.Pages != 1 {
		t.Errorf("p=1: %d rows, %d pages", len(paged.Data), paged.Pages)
	}

	// Bad input: 400 in the envelope.
	for _, path := range []string{
		"/api/activity/keys/aggregate/add2b342/32/8/2017/13/8/2017",
		"/api/activity/keys/aggregate/add2b342/31/2/2017/13/8/2017",
		"/api/activity/keys/aggregate/add2b342/x/8/2017/13/8/2017",
		"/api/activity/keys/aggregate/add2b342/5/8/-2017/13/8/2017",
		"/api/activity/keys/aggregate/add2b342/14/8/2017/13/8/2017",
		"/api/activity/keys/aggregate/add2b342/5/8/2017/13/8/2017?res=week",
		"/api/activity/keys/aggregate/add2b342/5/8/2017/13/8/2017?p=first",
		"/api/activity/keys/aggregate/,/31/2/2017/13/8/2017", // no keys, but the dates are still checked
	} {
		wantEnvelope(t, in.do("GET", path, ""), 400, "Error", "")
	}
	// A new developer's dashboard in a real custom portal asks for the
	// aggregate of no keys: an empty answer, not an error.
	for _, path := range []string{
		"/api/activity/keys/aggregate/,/5/8/2017/13/8/2017?p=-1&res=day",
		"/api/activity/keys/aggregate/%20,%20/5/8/2017/13/8/2017",
	} {
		if r := in.do("GET", path, ""); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"data":[],"pages":0}` {
			t.Errorf("%s: %d %s, want 200 {\"data\":[],\"pages\":0}", path, r.Status, r.Body)
		}
	}
	// A developer with no keys: the usage route answers the same.
	dev := createDeveloper(t, in, `{"email":"keyless@example.com"}`)
	if r := in.do("GET", "/api/portal/developers/"+dev+"/usage", ""); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"data":[],"pages":0}` {
		t.Errorf("usage of a developer with no keys: %d %s", r.Status, r.Body)
	}
}

// TestHitsFromRawKeysReachDeveloperUsage sends hits with the raw key a
// gateway saw; they count for the key's hash, appear in the developer's
// usage, filter by policy id and show on /metrics. Bad bodies record
// nothing.
func TestHitsFromRawKeysReachDeveloperUsage(t *testing.T) {
	in := startDefault(t)
	dev, raw := issuedKey(t, in)
	hash := keylens.HashKey(raw)

	for _, body := range []string{
		``, `{}`, `[`, `[{"key":"","code":200}]`, `[{"key":"k","code":99}]`, `[{"key":"k","code":200,"time":"yesterday"}]`,
		`[{"key":"k","code":200,"time":"2999-01-01T00:00:00Z"}]`, `[{"key":"k","code":200,"latency_ms":-1}]`,
		`[{"key":"k","code":200,"count":0}]`, `[{"key":"k","code":200}] []`,
		// One bad element spoils the batch: the good one is not recorded.
		`[{"key":"` + raw + `","code":200},{"key":"k","code":"200"}]`,
	} {
		if r := in.postHits(body); r.Status != 400 {
			t.Errorf("POST /hits %q: %d %s", body, r.Status, r.Body)
		}
	}
	if status := rawStatus(t, strings.TrimPrefix(in.SidecarURL, "http://"), "POST /hits HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n["); status != "413" {
		t.Errorf("oversized /hits: %s", status)
	}
	if r := in.sidecar("GET", "/hits", nil, nil); r.Status != 405 {
		t.Errorf("GET /hits: %d", r.Status)
	}
	body := fmt.Sprintf(`[{"key":%q,"api_id":"api-token","code":200,"count":40},{"key":%q,"api_id":"api-token","code":403,"count":2},{"key":%q,"api_id":"api-other","code":200}]`, raw, raw, raw)
	// A batch sent twice under one X-Keylens-Batch id (a retry after a lost
	// answer) counts once.
	for i, want := range []string{`{"recorded":43,"dropped":0}`, `{"recorded":0,"dropped":0,"duplicate":true}`} {
		r := in.sidecar("POST", "/hits", strings.NewReader(body), map[string]string{"Content-Type": "application/json", "X-Keylens-Batch": "writer-1/7"})
		if r.Status != 200 || string(r.Body) != want {
			t.Fatalf("POST /hits #%d: %d %s, want %s", i+1, r.Status, r.Body, want)
		}
	}
	usage := func(query string) hitList {
		return decodeAs[hitList](t, in.do("GET", "/api/portal/developers/"+dev+"/usage"+query, ""))
	}
	// Acknowledged means stored: the usage is there at once.
	u := usage("")
	if len(u.Data) != 1 {
		t.Fatalf("usage right after /hits: %+v", u.Data)
	}
	if r := u.Data[0]; r.Hits != 43 || r.Success != 41 || r.Error != 2 || r.ID.Code != 200 {
		t.Errorf("usage row %+v", r)
	}
	// api_id as a policy id: the catalogue publishes pol-token on api-token.
	for _, filter := range []string{"api-token", "pol-token"} {
		l := decodeAs[hitList](t, in.do("GET", "/api/activity/keys/aggregate/"+url.PathEscape(raw)+",/1/1/2020/1/1/2100?api_id="+filter, ""))
		var n int64
		for _, r := range l.Data {
			n += r.Hits
		}
		if n != 42 {
			t.Errorf("api_id=%s: %d hits, want 42", filter, n)
		}
	}
	if l := usage("?from=1/1/2001&to=2/1/2001"); len(l.Data) != 0 {
		t.Errorf("usage outside the range: %+v", l.Data)
	}
	wantEnvelope(t, in.do("GET", "/api/portal/developers/000000000000000000000000/usage", ""), 404, "Error", "")
	wantEnvelope(t, in.do("GET", "/api/portal/developers/"+dev+"/usage?from=soon", ""), 400, "Error", "")
	wantEnvelope(t, in.do("GET", "/api/portal/developers/"+dev+"/elsewhere", ""), 404, "Error", "")

	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	for _, want := range []string{
		fmt.Sprintf(`keylens_key_hits_total{key_id=%q} 43`, hash),
		fmt.Sprintf(`keylens_key_errors_total{key_id=%q} 2`, hash),
		"keylens_analytics_committed_hits_total 43",
		"keylens_analytics_duplicate_batches_total 1",
		"keylens_analytics_pending_hits 0",
		`keylens_sidecar_requests_total{endpoint="hits",outcome="bad_request"} 11`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, raw) {
		t.Error("/metrics contains a raw key")
	}
}

// TestHitsSecret: with --hits-secret, POST /hits needs it as a Bearer
// token, compared in constant time; without it nothing is recorded.
func TestHitsSecret(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_HITS_SECRET=gateway-hits-secret"})
	body := `[{"key":"add2b342","api_id":"a","code":200}]`
	for name, auth := range map[string]string{"none": "", "wrong": "Bearer nope", "raw secret": "gateway-hits-secret"} {
		r := in.sidecar("POST", "/hits", strings.NewReader(body), map[string]string{"Authorization": auth})
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	r := in.sidecar("POST", "/hits", strings.NewReader(body), map[string]string{"Authorization": "Bearer gateway-hits-secret"})
	if r.Status != 200 || string(r.Body) != `{"recorded":1,"dropped":0}` {
		t.Errorf("with the secret: %d %s", r.Status, r.Body)
	}
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	if !strings.Contains(metrics, `keylens_sidecar_requests_total{endpoint="hits",outcome="unauthorized"} 3`) {
		t.Error("refused /hits requests not counted as unauthorized")
	}
}

// TestCustomKeyIdCountedWhereFiled: a developer object naming a custom key
// id files it under the one rule's hash, and hits reported with that key
// reach the developer's usage.
func TestCustomKeyIdCountedWhereFiled(t *testing.T) {
	in := startDefault(t)
	dev := createDeveloper(t, in, `{"email":"custom@example.com","keys":{"my-custom-key-1":["pol-x"]}}`)
	if r := in.postHits(`[{"key":"my-custom-key-1","api_id":"a","code":200,"count":3}]`); r.Status != 200 {
		t.Fatalf("POST /hits: %d %s", r.Status, r.Body)
	}
	u := decodeAs[hitList](t, in.do("GET", "/api/portal/developers/"+dev+"/usage", ""))
	if len(u.Data) != 1 || u.Data[0].Hits != 3 {
		t.Errorf("usage of a custom key id: %+v, want 3 hits", u.Data)
	}
	if d := getDeveloper(t, in, dev); len(d.Keys["my-custom-key-1"]) != 0 {
		t.Errorf("the raw custom key was stored: %v", d.Keys)
	}
}

// TestHitsOfABasicKeyCountForIt: a Basic key's hits may name it by its
// username (what a writer with only the request's Basic credentials has),
// by its stored name, the gateway's key of (org, username) as the gateway's
// own analytics name it, or by its hash; all three count for that key, in
// the developer's usage too. A key no one holds still counts under its own
// hash, not the Basic key's.
func TestHitsOfABasicKeyCountForIt(t *testing.T) {
	in, dev := portalWithCatalogue(t)
	basic := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-basic"]}`))
	org := decodeAs[struct {
		OrgID string `json:"org_id"`
	}](t, in.do("GET", "/api/portal/developers/"+dev, "")).OrgID
	stored := keylens.KeyFor(org, basic.RawKey, keylens.DefaultHashAlgorithm)
	hash := keylens.HashKey(stored)
	body := fmt.Sprintf(`[{"key":%q,"api_id":"api-basic","code":200,"count":3},{"key":%q,"api_id":"api-basic","code":200,"count":2},`+
		`{"key":%q,"api_id":"api-basic","code":500},{"key":"nobody-has-this","api_id":"api-basic","code":200,"count":7}]`,
		basic.RawKey, stored, hash)
	if r := in.postHits(body); r.Status != 200 || string(r.Body) != `{"recorded":13,"dropped":0}` {
		t.Fatalf("POST /hits: %d %s", r.Status, r.Body)
	}
	total := func(l hitList) (n int64) {
		for _, r := range l.Data {
			n += r.Hits
		}
		return n
	}
	if n := total(decodeAs[hitList](t, in.do("GET", "/api/activity/keys/aggregate/"+hash+"/1/1/2020/1/1/2100", ""))); n != 6 {
		t.Errorf("the Basic key's hits: %d, want 6 (3 by username, 2 by stored name, 1 by hash)", n)
	}
	if n := total(decodeAs[hitList](t, in.do("GET", "/api/portal/developers/"+dev+"/usage", ""))); n != 6 {
		t.Errorf("the developer's usage: %d hits, want 6", n)
	}
	if n := total(decodeAs[hitList](t, in.do("GET", "/api/activity/keys/aggregate/"+keylens.HashKey("nobody-has-this")+"/1/1/2020/1/1/2100", ""))); n != 7 {
		t.Errorf("an unknown raw key's hits: %d, want 7 under its own hash", n)
	}
}
