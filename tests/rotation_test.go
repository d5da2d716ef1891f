package tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
)

// rotation is the answer of POST …/keys/{keyId}/rotate.
type rotation struct {
	RawKey, Password string
	KeyID            string    `json:"key_id"`
	Replaces         string    `json:"replaces"`
	OldKeyExpires    time.Time `json:"old_key_expires"`
}

func rotate(t testing.TB, in *instance, dev, key, grace string) rotation {
	t.Helper()
	r := in.do("POST", "/api/keylens/developers/"+dev+"/keys/"+key+"/rotate", `{"grace_period":"`+grace+`"}`)
	if r.Status != 200 {
		t.Fatalf("rotate %s: %d %s", key, r.Status, r.Body)
	}
	return decodeAs[rotation](t, r)
}

// lookup asks the sidecar who auth belongs to: the status and identity.
func lookup(t testing.TB, in *instance, auth string) (int, identity.Identity) {
	t.Helper()
	r := in.sidecar("GET", "/developer", nil, map[string]string{"Authorization": auth})
	var id identity.Identity
	if r.Status == 200 {
		_ = json.Unmarshal(r.Body, &id)
	}
	return r.Status, id
}

func basicAuth(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// waitRefusedAfter polls the sidecar until auth is refused (401) and
// fails if that happens before end, or if auth still resolves a second
// after end: a replaced key stops everywhere within a second of its end.
func waitRefusedAfter(t *testing.T, in *instance, auth string, end time.Time) {
	t.Helper()
	for {
		status, _ := lookup(t, in, auth)
		now := time.Now()
		switch {
		case status == 401 && now.Before(end):
			t.Fatalf("refused at %v, before the end of its grace %v", now, end)
		case status == 401:
			t.Logf("refused %v after the end of its grace", now.Sub(end).Round(time.Millisecond))
			return
		case status != 200:
			t.Fatalf("lookup: %d", status)
		case now.After(end.Add(time.Second)):
			t.Fatalf("still resolves at %v, over a second after the end of its grace %v", now, end)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeyRotation: a developer's key is replaced without downtime. During
// the grace both keys resolve at the sidecar to the same developer, each
// under its own hash (headers and hits name the key used); when it ends,
// the old key is refused within a second and leaves the developer; the
// limits and ownership are enforced and refusals change nothing.
func TestKeyRotation(t *testing.T) {
	in, dev := portalWithCatalogue(t)
	other := createDeveloper(t, in, `{"email":"bob@example.com"}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"],"fields":{"Use case":"billing"}}`))
	oldHash := keylens.HashKey(a.RawKey)
	if status, _ := lookup(t, in, a.RawKey); status != 200 { // cached before the rotation
		t.Fatalf("lookup before rotating: %d", status)
	}
	feedStart := decodeAs[struct{ Last int64 }](t, in.do("GET", "/api/keylens/changes/last", "")).Last

	// Refusals: the envelope's 4xx, nothing changed.
	path := func(d, k string) string { return "/api/keylens/developers/" + d + "/keys/" + k + "/rotate" }
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{path(dev, oldHash), `{"grace_period":"721h"}`, 400},
		{path(dev, oldHash), `{"grace_period":"-1s"}`, 400},
		{path(dev, oldHash), `{"grace_period":"a while"}`, 400},
		{path(dev, oldHash), `{}`, 400},
		{path(dev, "deadbeef"), `{"grace_period":"1h"}`, 404},
		{path(other, oldHash), `{"grace_period":"1h"}`, 404},
		{path("000000000000000000000000", oldHash), `{"grace_period":"1h"}`, 404},
	} {
		wantEnvelope(t, in.do("POST", c.path, c.body), c.status, "Error", "")
	}
	if last := decodeAs[struct{ Last int64 }](t, in.do("GET", "/api/keylens/changes/last", "")).Last; last != feedStart {
		t.Fatalf("refused rotations recorded changes: %d → %d", feedStart, last)
	}

	rot := rotate(t, in, dev, a.RawKey, "3s")
	end := rot.OldKeyExpires
	if rot.Replaces != oldHash || rot.KeyID != keylens.HashKey(rot.RawKey) || rot.Password != "" ||
		end.Nanosecond() != 0 || end.Before(time.Now().Add(2*time.Second)) {
		t.Fatalf("rotation %+v", rot)
	}
	wantEnvelope(t, in.do("POST", path(dev, oldHash), `{"grace_period":"1h"}`), 409, "Error", "")

	// During the grace: both keys, one developer, each key named.
	for raw, hash := range map[string]string{a.RawKey: oldHash, rot.RawKey: rot.KeyID} {
		status, id := lookup(t, in, raw)
		if status != 200 || id.DeveloperID != dev || id.KeyID != hash || id.KeyRequestFields["Use case"] != "billing" ||
			strings.Join(id.Policies, ",") != "pol-token" {
			t.Errorf("during the grace %s: %d %+v", hash, status, id)
		}
		if hash == oldHash && id.Expires != end.Unix() {
			t.Errorf("the old key's identity expires %d, want its grace end %d", id.Expires, end.Unix())
		}
		r := in.sidecar("GET", "/auth", nil, map[string]string{"Authorization": raw})
		if r.Status != 200 || r.Header.Get("X-Key-Id") != hash || r.Header.Get("X-Developer-Id") != dev {
			t.Errorf("forward-auth with %s: %d X-Key-Id %q", hash, r.Status, r.Header.Get("X-Key-Id"))
		}
	}
	devKeys := decodeAs[developerOut](t, in.do("GET", "/api/portal/developers/"+dev, "")).Keys
	if len(devKeys) != 2 || devKeys[oldHash] == nil || devKeys[rot.KeyID] == nil {
		t.Errorf("developer keys during the grace: %v", devKeys)
	}

	// Each key's hits stay under its own hash: the usage shows both, the
	// aggregate answers for either.
	today := time.Now().UTC()
	at := today.Format(time.RFC3339)
	var hits []string
	for i := 0; i < 3; i++ {
		hits = append(hits, fmt.Sprintf(`{"key":%q,"api_id":"api-token","code":200,"time":%q}`, oldHash, at))
	}
	for i := 0; i < 5; i++ {
		hits = append(hits, fmt.Sprintf(`{"key":%q,"api_id":"api-token","code":200,"time":%q}`, rot.KeyID, at))
	}
	if r := in.postHits("[" + strings.Join(hits, ",") + "]"); r.Status != 200 {
		t.Fatalf("POST /hits: %d %s", r.Status, r.Body)
	}
	day := fmt.Sprintf("%d/%d/%d", today.Day(), today.Month(), today.Year())
	total := func(path string) int64 {
		t.Helper()
		r := in.do("GET", path, "")
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
		var n int64
		for _, row := range decodeAs[hitList](t, r).Data {
			n += row.Hits
		}
		return n
	}
	for keys, want := range map[string]int64{oldHash: 3, rot.KeyID: 5, oldHash + "," + rot.KeyID: 8, a.RawKey: 3} {
		if got := total("/api/activity/keys/aggregate/" + keys + "/" + day + "/" + day + "?p=-1"); got != want {
			t.Errorf("aggregate %s: %d hits, want %d", keys, got, want)
		}
	}
	if got := total("/api/portal/developers/" + dev + "/usage"); got != 8 {
		t.Errorf("developer usage during the grace: %d hits, want both keys' 8", got)
	}

	// The end: the old key is refused within a second, by every
	// resolver; the new one keeps working.
	waitRefusedAfter(t, in, a.RawKey, end)
	if status, _ := lookup(t, in, rot.RawKey); status != 200 {
		t.Errorf("the new key after the old one's end: %d", status)
	}
	// The store removes it, and the feed says so.
	var kinds []string
	waitFor(t, 5*time.Second, "the old key's removal in the change feed", func() bool {
		ch := decodeAs[identity.Changes](t, in.do("GET", fmt.Sprintf("/api/keylens/changes?after=%d", feedStart), ""))
		kinds = kinds[:0]
		for _, c := range ch.Changes {
			kinds = append(kinds, c.Kind+":"+c.KeyHash)
		}
		return strings.Contains(strings.Join(kinds, " "), "key_revoked:"+oldHash)
	})
	if got, want := strings.Join(kinds, " "), "key_added:"+rot.KeyID+" key_rotated:"+oldHash+" key_revoked:"+oldHash; got != want {
		t.Errorf("change feed %q, want %q", got, want)
	}
	if devKeys := decodeAs[developerOut](t, in.do("GET", "/api/portal/developers/"+dev, "")).Keys; len(devKeys) != 1 || devKeys[rot.KeyID] == nil {
		t.Errorf("developer keys after the grace: %v", devKeys)
	}
	if got := total("/api/activity/keys/aggregate/" + oldHash + "/" + day + "/" + day + "?p=-1"); got != 3 {
		t.Errorf("the old key's hits after its removal: %d, want 3", got)
	}

	// No grace: the old key stops at once, as a revoked one does (the
	// change feed takes it out of the sidecar's cache).
	rot2 := rotate(t, in, dev, rot.KeyID, "0s")
	waitUntil(t, "a key rotated without grace is refused", func() bool {
		status, _ := lookup(t, in, rot.RawKey)
		return status == 401
	})
	if status, _ := lookup(t, in, rot2.RawKey); status != 200 {
		t.Errorf("its replacement: %d", status)
	}

	// An inactive developer's keys are not rotated.
	d := decodeAs[map[string]any](t, in.do("GET", "/api/portal/developers/"+dev, ""))
	d["inactive"] = true
	b, _ := json.Marshal(d)
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev, string(b)), 200, "OK", "")
	wantEnvelope(t, in.do("POST", path(dev, rot2.KeyID), `{"grace_period":"1h"}`), 403, "Error", "")
}

// TestKeyRotationSurvivesARestart: the ends are stored, not timed. A
// Basic key rotated with a long grace keeps working, beside its
// replacement, across a crash; a key whose grace ended while keylens was
// down is refused at once when it comes back.
func TestKeyRotationSurvivesARestart(t *testing.T) {
	in, dev := portalWithCatalogue(t)
	org := decodeAs[developerOut](t, in.do("GET", "/api/portal/developers/"+dev, "")).OrgID
	basicHash := func(user string) string {
		return keylens.HashKey(keylens.KeyFor(org, user, keylens.DefaultHashAlgorithm))
	}
	b := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-basic"]}`))
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))

	long := rotate(t, in, dev, basicHash(b.RawKey), "720h")
	if long.Password == "" || long.RawKey == b.RawKey || long.KeyID != basicHash(long.RawKey) {
		t.Fatalf("basic rotation %+v", long)
	}
	short := rotate(t, in, dev, a.RawKey, "1s")
	in.kill()
	for time.Now().Before(short.OldKeyExpires) { // keylens is down as the grace ends
		time.Sleep(50 * time.Millisecond)
	}
	in = startKeylens(t, in.Store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})

	for auth, hash := range map[string]string{basicAuth(b.RawKey, b.Password): basicHash(b.RawKey), basicAuth(long.RawKey, long.Password): long.KeyID} {
		if status, id := lookup(t, in, auth); status != 200 || id.KeyID != hash || id.DeveloperID != dev {
			t.Errorf("basic key %s after the restart: %d %+v", hash, status, id)
		}
	}
	if _, id := lookup(t, in, basicAuth(b.RawKey, b.Password)); id.Expires != long.OldKeyExpires.Unix() {
		t.Errorf("the old basic key's end after the restart: %d, want %d", id.Expires, long.OldKeyExpires.Unix())
	}
	if status, _ := lookup(t, in, a.RawKey); status != 401 {
		t.Errorf("a key whose grace ended while keylens was down: %d, want 401", status)
	}
	if status, _ := lookup(t, in, short.RawKey); status != 200 {
		t.Errorf("its replacement: %d", status)
	}
	wantEnvelope(t, in.do("POST", "/api/keylens/developers/"+dev+"/keys/"+basicHash(b.RawKey)+"/rotate", `{"grace_period":"1h"}`), 409, "Error", "")
}

// TestOAuthSecretRotation: an OAuth client's secret rotated with a grace:
// at every sidecar (in keylens serve, beside it on the store, and against
// the portal) both secrets get tokens until the end, and from then on only
// the new one does; tokens already issued keep working.
func TestOAuthSecretRotation(t *testing.T) {
	f := startOAuthFleet(t)
	dev, id, oldSecret := f.client(t, "ada@example.com")
	before := f.token(t, 0, id, oldSecret)
	r := f.portal.do("POST", "/api/keylens/developers/"+dev+"/keys/"+id+"/rotate", `{"grace_period":"3s"}`)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	rot := decodeAs[struct {
		ClientID         string    `json:"client_id"`
		Secret           string    `json:"secret"`
		OldSecretExpires time.Time `json:"old_secret_expires"`
	}](t, r)
	if rot.ClientID != id || rot.Secret == "" || rot.Secret == oldSecret {
		t.Fatalf("rotation %+v", rot)
	}
	get := func(i int, secret string) int {
		return postForm(t, f.urls[i]+"/oauth/token", url.Values{"grant_type": {"client_credentials"}},
			"Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret))).Status
	}
	for i := range f.urls {
		if s := get(i, rot.Secret); s != 200 {
			t.Errorf("%s: the new secret: %d", f.names[i], s)
		}
		if s := get(i, oldSecret); s != 200 && time.Now().Before(rot.OldSecretExpires) {
			t.Errorf("%s: the old secret during the grace: %d", f.names[i], s)
		}
	}
	for i := range f.urls {
		for {
			s, now := get(i, oldSecret), time.Now()
			if s == 401 {
				if now.Before(rot.OldSecretExpires) {
					t.Fatalf("%s: the old secret refused at %v, before its end %v", f.names[i], now, rot.OldSecretExpires)
				}
				break
			}
			if s != 200 || now.After(rot.OldSecretExpires.Add(time.Second)) {
				t.Fatalf("%s: the old secret answers %d at %v (its end %v)", f.names[i], s, now, rot.OldSecretExpires)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if s := get(i, rot.Secret); s != 200 {
			t.Errorf("%s: the new secret after the end: %d", f.names[i], s)
		}
	}
	if s := f.status(t, 0, before); s != 200 {
		t.Errorf("a token issued before the rotation: %d", s)
	}
}
