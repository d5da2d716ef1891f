package rest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// api is a test's view of the in-process API: each call checks its status
// and decodes the answer.
type api struct {
	t *testing.T
	h http.Handler
}

func (a api) do(method, path, body string, wantStatus int) map[string]any {
	a.t.Helper()
	rec := call(a.h, method, path, body)
	if rec.Code != wantStatus {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, wantStatus)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		a.t.Fatalf("%s %s: the answer is not a JSON object: %q", method, path, rec.Body)
	}
	if wantStatus >= 400 && (out["Status"] != "Error" || out["Message"] == "") {
		a.t.Fatalf("%s %s: %d without the error envelope: %s", method, path, rec.Code, rec.Body)
	}
	return out
}

// ok calls and returns the envelope's Message (an id, for creations).
func (a api) ok(method, path, body string) string {
	a.t.Helper()
	out := a.do(method, path, body, 200)
	if out["Status"] != "OK" {
		a.t.Fatalf("%s %s: %v, want Status OK", method, path, out)
	}
	msg, _ := out["Message"].(string)
	return msg
}

func (a api) list(path string) []any {
	a.t.Helper()
	data, _ := a.do("GET", path, "", 200)["Data"].([]any)
	return data
}

const unknownID = "000000000000000000000000"

// TestDeveloperHandlers: each developer route does its one job, and
// answers an unknown developer or a bad body with a 4xx envelope.
func TestDeveloperHandlers(t *testing.T) {
	a := api{t, newTestServer(t)}
	id := a.ok("POST", "/api/portal/developers", `{"email":"ada@example.com","password":"secret1","fields":{"team":"payments"}}`)
	a.do("POST", "/api/portal/developers", `{"email":"ada@example.com"}`, 409)
	a.do("POST", "/api/portal/developers", `{"email":"not an email"}`, 400)

	if got := a.do("GET", "/api/portal/developers/"+id, "", 200); got["email"] != "ada@example.com" || got["password"] != nil {
		t.Errorf("get: %v", got)
	}
	a.do("GET", "/api/portal/developers/"+unknownID, "", 404)
	if got := a.do("GET", "/api/portal/developers/email/ada@example.com", "", 200); got["id"] != id {
		t.Errorf("by email: %v", got)
	}
	a.do("GET", "/api/portal/developers/email/nobody@example.com", "", 404)
	if devs := a.list("/api/portal/developers"); len(devs) != 1 {
		t.Errorf("list: %v", devs)
	}

	a.ok("PUT", "/api/portal/developers/"+id, `{"email":"ada@example.com","fields":{"team":"risk"}}`)
	if got := a.do("GET", "/api/portal/developers/"+id, "", 200); got["fields"].(map[string]any)["team"] != "risk" {
		t.Errorf("after update: %v", got["fields"])
	}
	a.do("PUT", "/api/portal/developers/"+unknownID, `{"email":"x@example.com"}`, 404)

	// Credentials: right, wrong, and after a password change.
	a.do("POST", "/api/portal/developers/verify_credentials", `{"username":"ada@example.com","password":"secret1"}`, 200)
	a.do("POST", "/api/portal/developers/verify_credentials", `{"username":"ada@example.com","password":"wrong1"}`, 401)
	a.ok("POST", "/api/portal/developers/password/"+id, `{"password":"secret2"}`)
	a.do("POST", "/api/portal/developers/verify_credentials", `{"username":"ada@example.com","password":"secret2"}`, 200)
	a.do("POST", "/api/portal/developers/password/"+id, `{"password":"123"}`, 400)
	a.do("POST", "/api/portal/developers/password/"+unknownID, `{"password":"secret3"}`, 404)
	a.do("POST", "/api/portal/developers/"+id+"/elsewhere", `{}`, 404)

	// Usage of a developer without keys is an empty list; of nobody, 404.
	if got := jsonOf(t, a.do("GET", "/api/portal/developers/"+id+"/usage", "", 200)); got != `{"data":[],"pages":0}` {
		t.Errorf("usage without keys: %s", got)
	}
	a.do("GET", "/api/portal/developers/"+unknownID+"/usage", "", 404)
	a.do("GET", "/api/portal/developers/"+id+"/elsewhere", "", 404)

	a.ok("DELETE", "/api/portal/developers/"+id, "")
	a.do("DELETE", "/api/portal/developers/"+id, "", 404)
	if devs := a.list("/api/portal/developers"); len(devs) != 0 {
		t.Errorf("after delete: %v", devs)
	}
}

// TestCatalogueAndConfigurationHandlers: PUT and POST replace, GET
// answers what was put; an invalid document changes nothing.
func TestCatalogueAndConfigurationHandlers(t *testing.T) {
	a := api{t, newTestServer(t)}
	a.ok("POST", "/api/portal/catalogue", `{"apis":[{"name":"Pay","policy_id":"pol","api_id":"api"}]}`)
	a.ok("PUT", "/api/portal/catalogue", `{"apis":[{"name":"Pay","policy_id":"pol","api_id":"api"},{"name":"Maps","policy_id":"maps","auth_type":"basic"}]}`)
	a.do("PUT", "/api/portal/catalogue", `{"apis":[{"name":"Bad","policy_id":"x","auth_type":"carrier-pigeon"}]}`, 400)
	cat := a.do("GET", "/api/portal/catalogue", "", 200)
	if apis := cat["apis"].([]any); len(apis) != 2 || apis[1].(map[string]any)["auth_type"] != "basic" {
		t.Errorf("catalogue: %v", cat)
	}

	a.ok("POST", "/api/portal/configuration", `{"require_key_approval":true,"signup_fields":["company"]}`)
	a.ok("PUT", "/api/portal/configuration", `{"require_key_approval":false,"signup_fields":["company","country"],"key_request_fields":["use_case"]}`)
	a.do("PUT", "/api/portal/configuration", `{"signup_fields":"company"}`, 400)
	conf := a.do("GET", "/api/portal/configuration", "", 200)
	if conf["require_key_approval"] != false || len(conf["signup_fields"].([]any)) != 2 || len(conf["key_request_fields"].([]any)) != 1 {
		t.Errorf("configuration: %v", conf)
	}
}

// TestKeyRequestAndKeyHandlers follows a request from filing to its key's
// policy change, quota reset and revocation, through every key route.
func TestKeyRequestAndKeyHandlers(t *testing.T) {
	a := api{t, newTestServer(t)}
	a.ok("PUT", "/api/portal/catalogue", `{"apis":[{"name":"Pay","policy_id":"pol","api_id":"api"},{"name":"Gold","policy_id":"gold","api_id":"api"},{"name":"Apps","policy_id":"apps","auth_type":"oauth"}]}`)
	dev := a.ok("POST", "/api/portal/developers", `{"email":"ada@example.com"}`)

	req := a.ok("POST", "/api/portal/requests", `{"by_user":"`+dev+`","for_plan":"pol","fields":{"use_case":"billing"}}`)
	a.do("POST", "/api/portal/requests", `{"by_user":"`+unknownID+`","for_plan":"pol"}`, 400)
	a.do("POST", "/api/portal/requests", `{"by_user":"`+dev+`","for_plan":"not-in-catalogue"}`, 400)
	if got := a.do("GET", "/api/portal/requests/"+req, "", 200); got["approved"] != false || got["portal_developer"] == nil {
		t.Errorf("get request: %v", got)
	}
	a.do("GET", "/api/portal/requests/"+unknownID, "", 404)
	a.ok("PUT", "/api/portal/requests/"+req, `{"by_user":"`+dev+`","for_plan":"pol","fields":{"use_case":"invoicing"}}`)
	a.ok("UPDATE", "/api/portal/requests/"+req, `{"by_user":"`+dev+`","for_plan":"pol","fields":{"use_case":"refunds"}}`)
	if got := a.do("GET", "/api/portal/requests/"+req, "", 200); got["fields"].(map[string]any)["use_case"] != "refunds" {
		t.Errorf("after update: %v", got["fields"])
	}
	if reqs := a.list("/api/portal/requests"); len(reqs) != 1 {
		t.Errorf("list requests: %v", reqs)
	}

	approval := a.do("PUT", "/api/portal/requests/approve/"+req, "", 200)
	raw, _ := approval["RawKey"].(string)
	if raw == "" {
		t.Fatalf("approval: %v", approval)
	}
	a.do("PUT", "/api/portal/requests/approve/"+req, "", 409)
	a.do("PUT", "/api/portal/requests/approve/"+unknownID, "", 404)
	keyID := a.do("GET", "/api/portal/requests/"+req, "", 200)["key"].(string)

	// The credential route answers the key without secrets.
	cred := a.do("GET", "/api/keylens/credentials/"+keyID, "", 200)
	if !strings.Contains(jsonOf(t, cred), dev) || strings.Contains(jsonOf(t, cred), raw) {
		t.Errorf("credential: %v", cred)
	}
	a.do("GET", "/api/keylens/credentials/ffffffffffffffff", "", 404)
	a.do("GET", "/api/keylens/credentials?basic_username=nobody", "", 404)

	// Policies: the current route and the deprecated one.
	a.ok("PUT", "/api/portal/developers/"+dev+"/keys/"+keyID, `{"apply_policies":["gold"]}`)
	a.do("PUT", "/api/portal/developers/"+dev+"/keys/"+keyID, `{"apply_policies":["nope"]}`, 400)
	a.do("PUT", "/api/portal/developers/"+dev+"/keys/ffffffffffffffff", `{"apply_policies":["gold"]}`, 404)
	a.ok("GET", "/api/portal/developers/"+dev+"/"+keyID+"/pol", "")
	if got := a.do("GET", "/api/keylens/credentials/"+keyID, "", 200); !strings.Contains(jsonOf(t, got), `"pol"`) || strings.Contains(jsonOf(t, got), `"gold"`) {
		t.Errorf("after the deprecated policy change: %v", got)
	}

	// Quota resets, current and deprecated route.
	a.ok("POST", "/api/portal/developers/"+dev+"/keys/"+keyID+"/reset_quota", "")
	a.ok("POST", "/api/portal/developers/key/api/"+keyID+"/"+dev+"/reset_quota", "")
	a.do("POST", "/api/portal/developers/"+dev+"/keys/ffffffffffffffff/reset_quota", "", 404)

	// A key issued directly, then revoked by both routes.
	direct := a.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["gold"]}`, 200)
	if direct["RawKey"] == "" {
		t.Fatalf("issue: %v", direct)
	}
	a.do("POST", "/api/portal/developers/"+unknownID+"/keys", `{"apply_policies":["gold"]}`, 404)
	a.ok("DELETE", "/api/portal/developers/"+dev+"/keys/"+keyID, "")
	a.do("GET", "/api/keylens/credentials/"+keyID, "", 404)
	a.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+keyID, "", 404)
	devKeys := a.do("GET", "/api/portal/developers/"+dev, "", 200)["keys"].(map[string]any)
	if len(devKeys) != 1 {
		t.Fatalf("keys after revoking one of two: %v", devKeys)
	}
	for other := range devKeys {
		a.ok("DELETE", "/api/portal/developers/key/api/"+other+"/"+dev, "")
	}
	a.do("DELETE", "/api/portal/developers/elsewhere/x/y", "", 404)

	// OAuth clients: issued, then deleted by both routes.
	client := a.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["apps"],"oauth_info":{"redirect_uri":"https://app.example/cb"}}`, 200)
	clientID, _ := client["client_id"].(string)
	if clientID == "" || client["secret"] == "" {
		t.Fatalf("oauth issue: %v", client)
	}
	a.ok("DELETE", "/api/portal/developers/oauth/"+clientID, "")
	a.do("DELETE", "/api/portal/developers/oauth/"+clientID, "", 404)
	client = a.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["apps"]}`, 200)
	a.ok("DELETE", "/api/portal/developers/oauth/api/"+client["client_id"].(string), "")

	a.ok("DELETE", "/api/portal/requests/"+req, "")
	a.do("DELETE", "/api/portal/requests/"+req, "", 404)
}

// TestActivityAndKeylensHandlers: hits posted are stored once and counted
// by the activity routes; the change feed and its position answer.
func TestActivityAndKeylensHandlers(t *testing.T) {
	a := api{t, newTestServer(t)}
	a.ok("PUT", "/api/portal/catalogue", `{"apis":[{"name":"Pay","policy_id":"pol","api_id":"api"}]}`)
	dev := a.ok("POST", "/api/portal/developers", `{"email":"ada@example.com"}`)
	raw := a.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol"]}`, 200)["RawKey"].(string)
	key := keylens.KeyHashOf(raw)

	const hour = "494530" // 1 June 2026, 10:00 UTC
	hits := `{"batches":[{"batch_id":"b1","deltas":[{"key_id":"` + key + `","api_id":"api","hour":` + hour + `,"code":200,"hits":3,"success":3},` +
		`{"key_id":"` + key + `","api_id":"api","hour":` + hour + `,"code":500,"hits":1,"error":1}]}]}`
	if got := jsonOf(t, a.do("POST", "/api/keylens/hits", hits, 200)); !strings.Contains(got, `"applied":[true]`) {
		t.Errorf("hits: %s", got)
	}
	if got := jsonOf(t, a.do("POST", "/api/keylens/hits", hits, 200)); !strings.Contains(got, `"applied":[false]`) {
		t.Errorf("the same batch again: %s", got) // counted once
	}
	a.do("POST", "/api/keylens/hits", `{"batches":[{"batch_id":"b2","deltas":[{"key_id":"k","hour":1,"code":99,"hits":1}]}]}`, 400)

	day := "/1/6/2026/2/6/2026"
	agg := a.do("GET", "/api/activity/keys/aggregate/"+key+",/"+strings.TrimPrefix(day, "/")+"?res=day", "", 200)
	if s := jsonOf(t, agg); !strings.Contains(s, `"hits":4`) || !strings.Contains(s, `"error":1`) {
		t.Errorf("aggregate: %s", s)
	}
	one := a.do("GET", "/api/activity/keys/"+key+day+"?res=day", "", 200)
	if s := jsonOf(t, one); !strings.Contains(s, `"hits":4`) {
		t.Errorf("key activity: %s", s)
	}
	a.do("GET", "/api/activity/keys/"+key+"/31/2/2026/1/1/2026", "", 400)
	usage := jsonOf(t, a.do("GET", "/api/portal/developers/"+dev+"/usage?from=2026-05-01&to=2026-07-01", "", 200))
	if !strings.Contains(usage, `"hits":4`) || !strings.Contains(usage, `"error":1`) {
		t.Errorf("usage: %s", usage)
	}

	last := a.do("GET", "/api/keylens/changes/last", "", 200)["last"].(float64)
	feed := a.do("GET", "/api/keylens/changes?after=0", "", 200)
	if n := len(feed["changes"].([]any)); n == 0 || feed["last"].(float64) != last {
		t.Errorf("feed %v, last %v", feed, last)
	}
	a.do("GET", "/api/keylens/changes?after=x", "", 400)
	if got := a.do("GET", "/healthz", "", 200); got["status"] != "ok" {
		t.Errorf("healthz: %v", got)
	}
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRotateKeyHandler: the rotate route answers the new key once and the
// key it replaces, and each refusal with its status in the envelope,
// changing nothing.
func TestRotateKeyHandler(t *testing.T) {
	a := api{t, newTestServer(t)}
	a.ok("POST", "/api/portal/catalogue", `{"apis":[{"name":"Pay","policy_id":"pol","api_id":"api"},{"name":"Maps","policy_id":"maps","auth_type":"basic"}]}`)
	id := a.ok("POST", "/api/portal/developers", `{"email":"ada@example.com"}`)
	other := a.ok("POST", "/api/portal/developers", `{"email":"bob@example.com"}`)
	issued := a.do("POST", "/api/portal/developers/"+id+"/keys", `{"apply_policies":["pol"]}`, 200)
	raw := issued["RawKey"].(string)
	hash := keylens.HashKey(raw)
	rotate := "/api/keylens/developers/" + id + "/keys/" + hash + "/rotate"

	for body, status := range map[string]int{
		`{}`:                          400, // grace_period is required
		`{"grace_period":"soon"}`:     400,
		`{"grace_period":"-1s"}`:      400,
		`{"grace_period":"721h"}`:     400,
		`{"grace_period":24}`:         400,
		`{"grace_period":"1h","x":1}`: 400,
		`not json`:                    400,
	} {
		a.do("POST", rotate, body, status)
	}
	a.do("POST", "/api/keylens/developers/"+id+"/keys/deadbeef/rotate", `{"grace_period":"1h"}`, 404)
	a.do("POST", "/api/keylens/developers/"+other+"/keys/"+hash+"/rotate", `{"grace_period":"1h"}`, 404)
	if keys := a.do("GET", "/api/portal/developers/"+id, "", 200)["keys"].(map[string]any); len(keys) != 1 {
		t.Fatalf("refused rotations changed the keys: %v", keys)
	}

	// By the raw key as well as by hash, as every key route.
	got := a.do("POST", "/api/keylens/developers/"+id+"/keys/"+raw+"/rotate", `{"grace_period":"24h"}`, 200)
	newRaw, _ := got["RawKey"].(string)
	if newRaw == "" || got["key_id"] != keylens.HashKey(newRaw) || got["replaces"] != hash || got["Password"] != nil {
		t.Errorf("rotation answered %v", got)
	}
	if end, err := time.Parse(time.RFC3339, got["old_key_expires"].(string)); err != nil || end.Before(time.Now().Add(24*time.Hour-time.Second)) {
		t.Errorf("old_key_expires %v, %v", got["old_key_expires"], err)
	}
	keys := a.do("GET", "/api/portal/developers/"+id, "", 200)["keys"].(map[string]any)
	if len(keys) != 2 || keys[hash] == nil || keys[got["key_id"].(string)] == nil {
		t.Errorf("developer keys %v, want both", keys)
	}
	a.do("POST", rotate, `{"grace_period":"1h"}`, 409)

	// Basic: a new username and password.
	b := a.do("POST", "/api/portal/developers/"+id+"/keys", `{"apply_policies":["maps"]}`, 200)
	bHash := keylens.HashKeyWith(keylens.KeyFor(mustOrg(t, a, id), b["RawKey"].(string), keylens.DefaultHashAlgorithm), keylens.DefaultHashAlgorithm)
	got = a.do("POST", "/api/keylens/developers/"+id+"/keys/"+bHash+"/rotate", `{"grace_period":"0s"}`, 200)
	if got["Password"] == nil || got["Password"] == "" || got["RawKey"] == b["RawKey"] || got["replaces"] != bHash {
		t.Errorf("basic rotation answered %v", got)
	}
	if keys := a.do("GET", "/api/portal/developers/"+id, "", 200)["keys"].(map[string]any); keys[bHash] != nil {
		t.Errorf("a rotation without grace left the old key: %v", keys)
	}

	// An inactive developer's keys are not rotated.
	dev := a.do("GET", "/api/portal/developers/"+id, "", 200)
	dev["inactive"] = true
	body, _ := json.Marshal(dev)
	a.ok("PUT", "/api/portal/developers/"+id, string(body))
	a.do("POST", "/api/keylens/developers/"+id+"/keys/"+got["key_id"].(string)+"/rotate", `{"grace_period":"1h"}`, 403)
}

func mustOrg(t *testing.T, a api, devID string) string {
	t.Helper()
	org, _ := a.do("GET", "/api/portal/developers/"+devID, "", 200)["org_id"].(string)
	if org == "" {
		t.Fatal("developer without an org")
	}
	return org
}

// TestRotateOAuthSecretHandler: the rotate route given an OAuth client's
// id answers its new secret and the old one's end.
func TestRotateOAuthSecretHandler(t *testing.T) {
	a := api{t, newTestServer(t)}
	a.ok("POST", "/api/portal/catalogue", `{"apis":[{"name":"Sync","policy_id":"sync","api_id":"api","auth_type":"oauth"}]}`)
	id := a.ok("POST", "/api/portal/developers", `{"email":"ada@example.com"}`)
	other := a.ok("POST", "/api/portal/developers", `{"email":"bob@example.com"}`)
	c := a.do("POST", "/api/portal/developers/"+id+"/keys", `{"apply_policies":["sync"],"oauth_info":{"redirect_uri":"https://app.example.com/cb"}}`, 200)
	client := c["client_id"].(string)
	a.do("POST", "/api/keylens/developers/"+other+"/keys/"+client+"/rotate", `{"grace_period":"1h"}`, 404)
	got := a.do("POST", "/api/keylens/developers/"+id+"/keys/"+client+"/rotate", `{"grace_period":"1h"}`, 200)
	if got["client_id"] != client || got["secret"] == "" || got["secret"] == c["secret"] || got["old_secret_expires"] == nil {
		t.Errorf("secret rotation answered %v", got)
	}
	a.do("POST", "/api/keylens/developers/"+id+"/keys/"+client+"/rotate", `{"grace_period":"1h"}`, 409)
}
