package tests

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// goldenSidecar holds the sidecar's complete answers (status line, every
// header in order, body) to a fixed set of requests.
var goldenSidecar = filepath.Join("testdata", "sidecar-answers.golden")

// TestSidecarAnswersByteForByte sends /auth, /developer and /introspect
// requests for a set of credentials (identities with awkward field values,
// truncated headers, an inactive developer, unknown and missing keys, two
// credentials, spoofed identity headers), with assertions on and off, over
// a raw connection and compares every byte of the answers with
// testdata/sidecar-answers.golden, so that the request path can be made
// faster without changing what gateways receive. What differs between runs
// (developer ids, key hashes, the org id, the assertion's signature) is
// replaced by names before comparing. KEYLENS_UPDATE_GOLDEN=1 rewrites the
// file.
func TestSidecarAnswersByteForByte(t *testing.T) {
	out := "## keylens serve --assertions\n" + sidecarAnswers(t, "--assertions") + "## keylens serve\n" + sidecarAnswers(t)
	if strings.Contains(out, "must never appear") {
		t.Error("a raw key appears in an answer")
	}
	if os.Getenv("KEYLENS_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(goldenSidecar, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenSidecar)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(out, "\n")
		for i := 0; i < max(len(wl), len(gl)); i++ {
			w, g := "<end>", "<end>"
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Fatalf("answers differ from %s at line %d:\nwant %s\n got %s\n(KEYLENS_UPDATE_GOLDEN=1 rewrites it, after a deliberate change)", goldenSidecar, i+1, w, g)
			}
		}
	}
}

// sidecarAnswers starts keylens serve with args, gives it the developers
// and keys of TestSidecarAnswersByteForByte, and returns its answers to
// the test's requests, run-specific values replaced by names.
func sidecarAnswers(t *testing.T, args ...string) string {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey}, args...)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	names := map[string]string{} // run-specific value → its name in the golden file
	issue := func(name, developer, keyFields string) string {
		dev := createDeveloper(t, in, developer)
		raw := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys",
			`{"apply_policies":["pol-token","pol-gold"],"fields":`+keyFields+`}`)).RawKey
		names[dev] = "{" + name + " developer}"
		names[keylens.HashKey(raw)] = "{" + name + " key hash}"
		names[raw] = "{" + name + " raw key: must never appear}"
		return raw
	}
	long := strings.Repeat("0123456789", 300)
	ada := issue("ada", `{"email":"ada@example.com","fields":{"Company":"Analytical\r\nEngines","Plan":"gold","Zoë":"ünïcödé","Empty":"","Tab":"a\tb","Spaces":"  padded  "}}`,
		`{"Use case":"invoicing","seats":3,"trial":true,"nested":{"a":[1,2]},"nothing":null}`)
	bob := issue("bob", `{"email":"bob@example.com"}`, `{}`)
	cy := issue("cy", `{"email":"cy@example.com","fields":{"A":"`+long+`","B":"`+long+`","C":"`+long+`","D":"short"}}`, `{"E":"`+long+`"}`)
	dee := issue("dee", `{"email":"dee@example.com","fields":{"Plan":"silver"}}`, `{}`)
	deeID := ""
	for v, n := range names {
		if n == "{dee developer}" {
			deeID = v
		}
	}
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+deeID, `{"email":"dee@example.com","inactive":true,"keys":{"`+keylens.HashKey(dee)+`":["pol-token"]}}`), 200, "OK", "")

	host := strings.TrimPrefix(in.SidecarURL, "http://")
	waitUntil(t, "the deactivation reaches the sidecar", func() bool {
		return strings.HasPrefix(rawExchange(t, host, "GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: "+dee+"\r\n\r\n"), "HTTP/1.1 403")
	})
	get := func(path string, headers ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: sidecar\r\n" + strings.Join(headers, "") + "\r\n"
	}
	auth := func(v string) string { return "Authorization: " + v + "\r\n" }
	form := func(token string) string {
		body := "token=" + url.QueryEscape(token)
		return "POST /introspect HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	basic := base64.StdEncoding.EncodeToString([]byte("nobody:secret"))
	requests := []struct{ name, req string }{
		{"auth: raw key with awkward fields", get("/auth", auth(ada))},
		{"auth: Bearer key", get("/auth", auth("Bearer "+ada))},
		{"auth: lower-case header name, spoofed identity headers", get("/auth", "authorization: "+ada+"\r\n", "X-Developer-Id: evil\r\nX-Developer-Field-Plan: platinum\r\n")},
		{"auth: forward-auth path below /auth/", get("/auth/some/upstream?q=1", "User-Agent: test\r\n", auth(ada), "Accept: */*\r\n")},
		{"auth: no fields", get("/auth", auth(bob))},
		{"auth: truncated headers", get("/auth", auth(cy))},
		{"auth: inactive developer", get("/auth", auth(dee))},
		{"auth: unknown key", get("/auth", auth("not-a-key"))},
		{"auth: missing key", get("/auth")},
		{"auth: empty key", get("/auth", auth(""))},
		{"auth: two Authorization headers", get("/auth", auth(ada), auth(bob))},
		{"auth: unknown Basic user", get("/auth", auth("Basic "+basic))},
		{"auth: HEAD", "HEAD /auth HTTP/1.1\r\nHost: sidecar\r\n" + auth(ada) + "\r\n"},
		{"auth: POST with a body", "POST /auth HTTP/1.1\r\nHost: sidecar\r\n" + auth(bob) + "Content-Length: 3\r\n\r\nabc"},
		{"developer: raw key", get("/developer", auth(ada))},
		{"developer: truncated", get("/developer", auth(cy))},
		{"developer: inactive", get("/developer", auth(dee))},
		{"developer: unknown", get("/developer", auth("not-a-key"))},
		{"introspect: active", form(ada)},
		{"introspect: inactive", form(dee)},
		{"introspect: unknown", form("not-a-key")},
		{"not found", get("/nowhere", auth(ada))},
	}
	var got bytes.Buffer
	for _, r := range requests {
		fmt.Fprintf(&got, "### %s\n", r.name)
		for line := range strings.SplitSeq(rawExchange(t, host, r.req), "\r\n") {
			got.WriteString(strconv.Quote(line) + "\n")
		}
	}
	out := got.String()
	for v, n := range names {
		out = strings.ReplaceAll(out, v, n)
	}
	out = regexp.MustCompile(`\b[0-9a-f]{24}\b`).ReplaceAllString(out, "{object id}") // the org id
	return regexp.MustCompile(`(X-Developer-Assertion: )[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`).ReplaceAllString(out, "${1}{assertion}")
}

// rawExchange sends req on a new connection and returns the complete
// answer: its header and the Content-Length bytes of body that follow.
func rawExchange(t *testing.T, host, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var head strings.Builder
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the answer to %q: %v (so far %q)", req, err, head.String())
		}
		head.WriteString(line)
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	if strings.HasPrefix(req, "HEAD ") {
		n = 0
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatalf("reading the body of the answer to %q: %v", req, err)
	}
	return head.String() + string(body)
}
