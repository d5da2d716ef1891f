package tests

import (
	"github.com/keylens/keylens"

	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startDefault starts keylens on a fresh store with the test admin key,
// given through the environment as an operator would.
func startDefault(t *testing.T) *instance {
	return startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
}

// seedDeveloper is the "Add a Developer Record" sample of the Tyk docs.
const seedDeveloper = `{
  "email": "blip@blop.com",
  "password": "$2a$10$hlG1ujAHWUpnM37k.l1RhO6RrxkCpXki2yrGhufnDs1IBiUo4Kzqy",
  "date_created": "2015-05-15T08:56:13.257-04:00",
  "inactive": false,
  "org_id": "53ac07777cbb8c2d53000002",
  "keys": {
    "<api-key>": ["<policy-id>"]
  },
  "fields": {
    "Name": "",
    "custom1": "",
    "custom2": ""
  }
}`

var objectID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// createDeveloper posts body and returns the new id.
func createDeveloper(t testing.TB, in *instance, body string) string {
	t.Helper()
	e := wantEnvelope(t, in.do("POST", "/api/portal/developers", body), 200, "OK", "")
	if !objectID.MatchString(e.Message) {
		t.Fatalf("new developer id %q is not 24 lowercase hex", e.Message)
	}
	return e.Message
}

type developerOut struct {
	ID              string                      `json:"id"`
	Email           string                      `json:"email"`
	DateCreated     string                      `json:"date_created"`
	Inactive        bool                        `json:"inactive"`
	OrgID           string                      `json:"org_id"`
	Keys            map[string][]string         `json:"keys"`
	Subscriptions   map[string]string           `json:"subscriptions"`
	Fields          map[string]string           `json:"fields"`
	OAuthClients    map[string][]map[string]any `json:"oauth_clients"`
	PasswordUpdated string                      `json:"password_updated"`
	LastLoginDate   string                      `json:"last_login_date"`
}

func getDeveloper(t *testing.T, in *instance, id string) developerOut {
	t.Helper()
	r := in.do("GET", "/api/portal/developers/"+id, "")
	if r.Status != 200 {
		t.Fatalf("GET developer %s: %d %s", id, r.Status, r.Body)
	}
	return decodeAs[developerOut](t, r)
}

func countDevelopers(t *testing.T, in *instance) int {
	t.Helper()
	r := in.do("GET", "/api/portal/developers?p=-1", "")
	return len(decodeAs[struct{ Data []developerOut }](t, r).Data)
}

func TestAdminAuthentication(t *testing.T) {
	in := startDefault(t)
	for name, auth := range map[string]string{"missing": "", "wrong": "not-the-admin-key-at-all", "wrong bearer": "Bearer nope", "prefix of the key": testAdminKey[:10]} {
		t.Run(name, func(t *testing.T) {
			wantEnvelope(t, in.doAuth("GET", "/api/portal/developers", "", auth), 401, "Error", "Not authorised")
		})
	}
	for name, auth := range map[string]string{"raw as Tyk clients send it": testAdminKey, "bearer": "Bearer " + testAdminKey, "lowercase bearer": "bearer " + testAdminKey} {
		t.Run(name, func(t *testing.T) {
			if r := in.doAuth("GET", "/api/portal/developers", "", auth); r.Status != 200 {
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		})
	}
	t.Run("a refused write stores nothing", func(t *testing.T) {
		wantEnvelope(t, in.doAuth("POST", "/api/portal/developers", `{"email":"sneaky@example.com"}`, "wrong-key-wrong-key"), 401, "Error", "Not authorised")
		if n := countDevelopers(t, in); n != 0 {
			t.Errorf("%d developers after an unauthorised POST", n)
		}
	})
}

func TestHealthzOnBothListeners(t *testing.T) {
	in := startDefault(t)
	for _, base := range []string{in.AdminURL, in.SidecarURL} {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		r := send(t, req)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"ok"`) {
			t.Errorf("%s/healthz: %d %s", base, r.Status, r.Body)
		}
	}
}

func TestDeveloperLifecycle(t *testing.T) {
	in := startDefault(t)

	// The documentation's own sample body.
	id := createDeveloper(t, in, seedDeveloper)
	d := getDeveloper(t, in, id)
	if d.ID != id || d.Email != "blip@blop.com" || d.OrgID != "53ac07777cbb8c2d53000002" ||
		d.DateCreated != "2015-05-15T08:56:13.257-04:00" || len(d.Fields) != 3 {
		t.Errorf("stored developer: %+v", d)
	}
	// A key sent in a developer object is filed under its hash, as the
	// gateway hashes it: the same id the sidecar resolves and /hits counts.
	if pols := d.Keys[keylens.KeyHashOf("<api-key>")]; len(pols) != 1 || pols[0] != "<policy-id>" {
		t.Errorf("keys = %v, want <api-key> filed under its hash", d.Keys)
	}

	// Every member of Tyk's developer object, and never the password.
	raw := in.do("GET", "/api/portal/developers/"+id, "")
	for _, member := range []string{"id", "email", "date_created", "inactive", "org_id", "keys", "subscriptions", "fields",
		"nonce", "sso_key", "oauth_clients", "password_max_days", "password_updated", "PWHistory", "last_login_date"} {
		if !strings.Contains(string(raw.Body), `"`+member+`":`) {
			t.Errorf("developer object lacks %q: %s", member, raw.Body)
		}
	}
	if strings.Contains(string(raw.Body), "$2a$") || strings.Contains(string(raw.Body), `"password"`) {
		t.Errorf("developer object leaks the password: %s", raw.Body)
	}

	// By email, URL-encoded and in another case.
	for _, path := range []string{"blip@blop.com", url.PathEscape("BLIP@blop.com"), "blip%40blop.com"} {
		r := in.do("GET", "/api/portal/developers/email/"+path, "")
		if r.Status != 200 || decodeAs[developerOut](t, r).ID != id {
			t.Errorf("by email %s: %d %s", path, r.Status, r.Body)
		}
	}
	wantEnvelope(t, in.do("GET", "/api/portal/developers/email/"+url.PathEscape("no/body@x.io"), ""), 404, "Error", "Developer not found")

	// PUT replaces; an absent password keeps the old one.
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+id, `{"email":"blip@blop.com","inactive":false,
		"keys":{"cac572e018c60de0":["pol-a"]},"subscriptions":{"pol-a":"cac572e018c60de0"},"fields":{"Name":"Blip"}}`), 200, "OK", "Data updated")
	d = getDeveloper(t, in, id)
	if len(d.Keys) != 1 || d.Keys["cac572e018c60de0"][0] != "pol-a" || d.Subscriptions["pol-a"] != "cac572e018c60de0" ||
		d.Fields["Name"] != "Blip" || len(d.Fields) != 1 || d.DateCreated != "2015-05-15T08:56:13.257-04:00" {
		t.Errorf("after PUT: %+v", d)
	}

	// Set a known password, verify it, change it.
	e := wantEnvelope(t, in.do("POST", "/api/portal/developers/password/"+id, `{"password":"first-pass"}`), 200, "OK", "Password changed")
	_ = e
	before := getDeveloper(t, in, id)
	wantEnvelope(t, in.do("POST", "/api/portal/developers/verify_credentials", `{"username":"blip@blop.com","password":"first-pass"}`), 200, "OK", "")
	after := getDeveloper(t, in, id)
	if after.LastLoginDate == before.LastLoginDate || strings.HasPrefix(after.LastLoginDate, "0001") {
		t.Errorf("last_login_date not updated: %s -> %s", before.LastLoginDate, after.LastLoginDate)
	}
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+id, `{"email":"blip@blop.com"}`), 200, "OK", "Data updated")
	wantEnvelope(t, in.do("POST", "/api/portal/developers/verify_credentials", `{"username":"blip@blop.com","password":"first-pass"}`), 200, "OK", "")
	wantEnvelope(t, in.do("POST", "/api/portal/developers/verify_credentials", `{"username":"blip@blop.com","password":"wrong-pass"}`), 401, "Error", "")
	wantEnvelope(t, in.do("POST", "/api/portal/developers/verify_credentials", `{"username":"nobody@blop.com","password":"first-pass"}`), 401, "Error", "")

	// Deactivated developers do not verify.
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+id, `{"email":"blip@blop.com","inactive":true}`), 200, "OK", "Data updated")
	wantEnvelope(t, in.do("POST", "/api/portal/developers/verify_credentials", `{"username":"blip@blop.com","password":"first-pass"}`), 401, "Error", "")

	// Delete, then everything about the id is 404.
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+id, ""), 200, "OK", "Data deleted")
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+id, ""), 404, "Error", "Developer not found")
	wantEnvelope(t, in.do("GET", "/api/portal/developers/"+id, ""), 404, "Error", "Developer not found")
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+id, `{"email":"blip@blop.com"}`), 404, "Error", "Developer not found")
}

func TestDeveloperList(t *testing.T) {
	in := startDefault(t)
	var ids []string
	for i := range 12 {
		domain := "even.io"
		if i%2 == 1 {
			domain = "odd.io"
		}
		ids = append(ids, createDeveloper(t, in, fmt.Sprintf(`{"email":"dev%02d@%s"}`, i, domain)))
	}
	type listOut struct {
		Data  []developerOut
		Pages int
	}
	tests := []struct {
		query     string
		wantFirst string
		wantLen   int
		wantPages int
	}{
		{"", ids[0], 12, 2},
		{"?p=1", ids[0], 10, 2},
		{"?p=2", ids[10], 2, 2},
		{"?p=3", "", 0, 2},
		{"?p=0", ids[0], 12, 2},
		{"?p=-1", ids[0], 12, 2},
		{"?q=ODD.io", ids[1], 6, 1},
		{"?q=odd&p=1", ids[1], 6, 1},
		{"?q=nothing-matches", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := in.do("GET", "/api/portal/developers"+tt.query, "")
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if !strings.Contains(string(r.Body), `"Data":[`) {
				t.Errorf("Data is not an array: %s", r.Body)
			}
			l := decodeAs[listOut](t, r)
			if len(l.Data) != tt.wantLen || l.Pages != tt.wantPages || (tt.wantLen > 0 && l.Data[0].ID != tt.wantFirst) {
				t.Errorf("got %d items (first %v), %d pages; want %d, first %s, %d pages", len(l.Data), firstID(l.Data), l.Pages, tt.wantLen, tt.wantFirst, tt.wantPages)
			}
		})
	}
	wantEnvelope(t, in.do("GET", "/api/portal/developers?p=two", ""), 400, "Error", "p must be a whole number")
}

func firstID(ds []developerOut) string {
	if len(ds) == 0 {
		return ""
	}
	return ds[0].ID
}

func TestDeveloperInputFromOlderPayloads(t *testing.T) {
	in := startDefault(t)
	id := createDeveloper(t, in, `{"_id":"554c733a30c55e4b16000002","email":"old@example.com",
		"api_keys":{"4beaa90b":"pol-old"},"keys":{"0123456789abcdef":["pol-new"]}}`)
	if id != "554c733a30c55e4b16000002" {
		t.Errorf("_id not kept: %s", id)
	}
	d := getDeveloper(t, in, id)
	if d.Keys["4beaa90b"][0] != "pol-old" || d.Keys["0123456789abcdef"][0] != "pol-new" {
		t.Errorf("keys = %v", d.Keys)
	}
	// A raw Tyk key sent as a key id is stored as its hash, never raw.
	raw := "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0="
	id2 := createDeveloper(t, in, `{"email":"raw@example.com","keys":{"`+raw+`":["p"]}}`)
	r := in.do("GET", "/api/portal/developers/"+id2, "")
	if strings.Contains(string(r.Body), raw) || !strings.Contains(string(r.Body), `"cac572e018c60de0":["p"]`) {
		t.Errorf("raw key handling: %s", r.Body)
	}
}

func TestDeveloperBadInput(t *testing.T) {
	in := startDefault(t)
	existing := createDeveloper(t, in, `{"email":"taken@example.com","password":"a-password","keys":{"aaaabbbb":["p"]}}`)
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"trailing comma (the community thread's body)", "POST", "/api/portal/developers",
			`{"by_user":"57039e3a1f41370001000009","fields":{"custom1":"sdf",},"for_plan":"x"}`, 400, "Request body malformed"},
		{"empty body", "POST", "/api/portal/developers", ``, 400, "Request body malformed"},
		{"not an object", "POST", "/api/portal/developers", `[1,2]`, 400, ""},
		{"two values", "POST", "/api/portal/developers", `{"email":"a@b.io"}{"email":"c@d.io"}`, 400, "Request body malformed"},
		{"wrong type", "POST", "/api/portal/developers", `{"email":"w@example.com","inactive":"yes"}`, 400, "Request body malformed: inactive must be true or false"},
		{"wrong type in a map", "POST", "/api/portal/developers", `{"email":"w@example.com","keys":{"k":"not-a-list"}}`, 400, ""},
		{"missing email", "POST", "/api/portal/developers", `{"fields":{}}`, 400, "Email is required"},
		{"malformed email", "POST", "/api/portal/developers", `{"email":"nope"}`, 400, "Email address is not valid"},
		{"short password", "POST", "/api/portal/developers", `{"email":"s@example.com","password":"12345"}`, 400, "Password must be at least 6 characters"},
		{"malformed id", "POST", "/api/portal/developers", `{"id":"ZZZ","email":"s@example.com"}`, 400, ""},
		{"duplicate email ignoring case", "POST", "/api/portal/developers", `{"email":"TAKEN@example.com"}`, 409, "A developer with this email already exists"},
		{"duplicate id", "POST", "/api/portal/developers", `{"id":"` + existing + `","email":"new@example.com"}`, 409, ""},
		{"key of another developer", "POST", "/api/portal/developers", `{"email":"k@example.com","keys":{"aaaabbbb":[]}}`, 409, "Key aaaabbbb belongs to another developer"},
		{"body over 1 MiB", "POST", "/api/portal/developers", `{"email":"big@example.com","nonce":"` + strings.Repeat("x", 1<<20) + `"}`, 413, ""},
		{"PUT malformed", "PUT", "/api/portal/developers/" + existing, `{"email":`, 400, "Request body malformed"},
		{"PUT id mismatch", "PUT", "/api/portal/developers/" + existing, `{"id":"000000000000000000000000","email":"taken@example.com"}`, 400, ""},
		{"PUT unknown id", "PUT", "/api/portal/developers/000000000000000000000000", `{"email":"x@example.com"}`, 404, "Developer not found"},
		{"GET unknown id", "GET", "/api/portal/developers/000000000000000000000000", ``, 404, "Developer not found"},
		{"DELETE unknown id", "DELETE", "/api/portal/developers/000000000000000000000000", ``, 404, "Developer not found"},
		{"verify malformed", "POST", "/api/portal/developers/verify_credentials", `{"username":1}`, 400, ""},
		{"password unknown developer", "POST", "/api/portal/developers/password/000000000000000000000000", `{"password":"long-enough"}`, 404, "Developer password validation failed."},
		{"password too short", "POST", "/api/portal/developers/password/" + existing, `{"password":"123"}`, 400, "Developer password validation failed."},
		{"password malformed", "POST", "/api/portal/developers/password/" + existing, `{"password":}`, 400, "Request body malformed"},
		{"unknown route", "GET", "/api/portal/nothing-here", ``, 404, "Not found"},
		{"unknown method", "PATCH", "/api/portal/developers/" + existing, `{}`, 405, "Method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := in.do(tt.method, tt.path, tt.body)
			wantEnvelope(t, r, tt.status, "Error", tt.message)
			if n := countDevelopers(t, in); n != 1 {
				t.Fatalf("%d developers stored after refused input, want 1", n)
			}
			d := getDeveloper(t, in, existing)
			if d.Email != "taken@example.com" || len(d.Keys) != 1 {
				t.Fatalf("existing developer changed: %+v", d)
			}
		})
	}
	// The password survived every refused attempt to change it.
	wantEnvelope(t, in.do("POST", "/api/portal/developers/verify_credentials", `{"username":"taken@example.com","password":"a-password"}`), 200, "OK", "")
}

func TestRestartLosesNothing(t *testing.T) {
	in := startDefault(t)
	id := createDeveloper(t, in, `{"email":"persist@example.com","password":"persisted","keys":{"aaaabbbb":["p"]},"fields":{"Company":"Acme"}}`)
	before := in.do("GET", "/api/portal/developers/"+id, "")
	in.stop()

	again := startKeylens(t, in.Store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	after := again.do("GET", "/api/portal/developers/"+id, "")
	if after.Status != 200 || string(after.Body) != string(before.Body) {
		t.Errorf("after restart:\n%s\nbefore:\n%s", after.Body, before.Body)
	}
	wantEnvelope(t, again.do("POST", "/api/portal/developers/verify_credentials", `{"username":"persist@example.com","password":"persisted"}`), 200, "OK", "")
}

func TestGeneratedAdminKey(t *testing.T) {
	in := startKeylens(t, "", nil)
	// stdout reaches us through a copying goroutine of its own, so the
	// key may arrive after the log lines startKeylens waits for.
	var m []string
	for start := time.Now(); m == nil && time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		m = regexp.MustCompile(`KEYLENS_ADMIN_KEY=([0-9a-f]{48})`).FindStringSubmatch(in.stdout.String())
	}
	if m == nil {
		t.Fatalf("no generated admin key printed; stdout:\n%s", in.stdout)
	}
	key := m[1]
	if strings.Contains(in.stderr.String(), key) {
		t.Error("the admin key appears in the logs")
	}
	if r := in.doAuth("GET", "/api/portal/developers", "", key); r.Status != 200 {
		t.Fatalf("generated key refused: %d %s", r.Status, r.Body)
	}
	in.stop()

	// Second start: the stored hash is used and nothing is printed. Its
	// output is read once it has exited: all of it is there then.
	again := startKeylens(t, in.Store, nil)
	if r := again.doAuth("GET", "/api/portal/developers", "", key); r.Status != 200 {
		t.Errorf("the generated key stopped working after a restart: %d", r.Status)
	}
	again.stop()
	if strings.Contains(again.stdout.String(), "KEYLENS_ADMIN_KEY=") {
		t.Errorf("a key was printed again:\n%s", again.stdout)
	}
	// An explicit key takes over.
	third := startKeylens(t, in.Store, nil, "--admin-key", "an-explicit-admin-key")
	if r := third.doAuth("GET", "/api/portal/developers", "", key); r.Status != 401 {
		t.Errorf("old key still accepted with --admin-key set: %d", r.Status)
	}
	if r := third.doAuth("GET", "/api/portal/developers", "", "an-explicit-admin-key"); r.Status != 200 {
		t.Errorf("--admin-key refused: %d", r.Status)
	}
}

func TestInvalidConfigurationReportsEveryProblem(t *testing.T) {
	cmd := exec.Command(keylensBin, "serve", "--store", "mysql://x", "--admin-addr", "nope", "--admin-key", "short")
	cmd.Env = append(cleanEnv(), "KEYLENS_LOG_LEVEL=loud", "KEYLENS_SIDECAR_ADDR=127.0.0.1:99999")
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
		t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
	}
	for _, want := range []string{"--store", "--admin-addr", "--sidecar-addr", "--admin-key", "--log-level"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention %s:\n%s", want, out)
		}
	}
}

func TestTakenPortFailsStartUp(t *testing.T) {
	in := startDefault(t)
	cmd := exec.Command(keylensBin, "serve", "--store", "sqlite:"+t.TempDir()+"/k.db", "--admin-addr", strings.TrimPrefix(in.AdminURL, "http://"),
		"--sidecar-addr", "127.0.0.1:0", "--portal-addr", "127.0.0.1:0", "--admin-key", testAdminKey)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(string(out), "address already in use") {
		t.Errorf("exit %v; output:\n%s", err, out)
	}
}
