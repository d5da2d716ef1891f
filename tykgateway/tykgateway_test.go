package tykgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

var owner = keylens.CredentialOwner{ID: "dev1", Email: "ada@example.com", OrgID: "org1",
	Fields: map[string]string{"Company": "AE", "Sign up reason": "tests"}}

// Meta carries the Dashboard's members and the plugin's flat string
// copies, which $tyk_meta templates can render.
func TestMeta(t *testing.T) {
	m := Meta(owner, map[string]any{"Use case": "billing", "seats": 3.0})
	want := map[string]any{
		"tyk_developer_id": "dev1", "tyk_developer_email": "ada@example.com",
		"tyk_key_request_fields_Use_case": "billing", "tyk_key_request_fields_seats": "3",
		"tyk_user_fields_Company": "AE", "tyk_user_fields_Sign_up_reason": "tests",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if krf := m["tyk_key_request_fields"].(map[string]any); krf["Use case"] != "billing" || krf["seats"] != 3.0 {
		t.Errorf("tyk_key_request_fields %v", krf)
	}
	if uf := m["tyk_user_fields"].(map[string]any); uf["Company"] != "AE" {
		t.Errorf("tyk_user_fields %v", uf)
	}
}

func TestDesiredForInactiveDeveloper(t *testing.T) {
	k := &keylens.Key{Policies: []string{"gold", "silver"}}
	off := owner
	off.Inactive = true
	if d := DesiredFor(k, off, "inactive"); !slices.Equal(d.Policies, []string{"inactive"}) || !d.Inactive {
		t.Errorf("with an inactive policy: %+v", d)
	}
	if d := DesiredFor(k, off, ""); !slices.Equal(d.Policies, []string{"gold", "silver"}) || !d.Inactive {
		t.Errorf("without one: %+v", d)
	}
	if d := DesiredFor(k, owner, "inactive"); !slices.Equal(d.Policies, k.Policies) || d.Inactive || d.Alias != "ada@example.com" || d.OrgID != "org1" {
		t.Errorf("active: %+v", d)
	}
}

// Compare reads a session as the gateway answers it: numbers as
// json.Number, members it omits when zero, and no is_inactive on a key
// with policies (the gateway drops it).
func TestCompare(t *testing.T) {
	d := DesiredFor(&keylens.Key{Policies: []string{"gold"}, Fields: map[string]any{"seats": 3.0}}, owner, "")
	s := Session{}
	d.Apply(s)
	b, _ := json.Marshal(s)
	var answered Session
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&answered); err != nil {
		t.Fatal(err)
	}
	delete(answered, "is_inactive") // false: omitted
	if diff := Compare(answered, d); diff != (Difference{}) {
		t.Errorf("a session as written differs: %+v", diff)
	}
	off := owner
	off.Inactive = true
	if diff := Compare(answered, DesiredFor(&keylens.Key{Policies: []string{"gold"}, Fields: map[string]any{"seats": 3.0}}, off, "")); diff != (Difference{}) {
		t.Errorf("is_inactive compared on a key with policies: %+v", diff)
	}
	answered["apply_policies"] = []any{"silver"}
	if diff := Compare(answered, d); diff != (Difference{Policies: true}) {
		t.Errorf("policies: %+v", diff)
	}
	answered["alias"] = "other@example.com"
	if diff := Compare(answered, d); diff != (Difference{Policies: true, Meta: true}) {
		t.Errorf("alias: %+v", diff)
	}
	if diff := Compare(Session{"meta_data": "not a map", "apply_policies": 7}, d); !diff.Policies || !diff.Meta {
		t.Errorf("garbage session: %+v", diff)
	}
}

// A replaced key's grace end is its session's expires; a key not
// replaced leaves the session's own expiry alone.
func TestDesiredExpiresOfAReplacedKey(t *testing.T) {
	end := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	k := &keylens.Key{Policies: []string{"gold"}, ExpiresAt: end, ReplacedBy: "0123456789abcdef"}
	d := DesiredFor(k, owner, "")
	if d.Expires != end.Unix() {
		t.Fatalf("Desired.Expires = %d, want %d", d.Expires, end.Unix())
	}
	s := Session{"expires": json.Number("0"), "quota_max": json.Number("5")}
	plain := DesiredFor(&keylens.Key{Policies: []string{"gold"}}, owner, "")
	plain.Apply(s)
	if diff := Compare(s, plain); diff != (Difference{}) || s.Expires() != 0 {
		t.Errorf("a key not replaced: %+v, expires %v", diff, s["expires"])
	}
	s["expires"] = json.Number("1700000000") // set in the gateway by someone: kept
	if diff := Compare(s, plain); diff != (Difference{}) {
		t.Errorf("a key not replaced compares its expiry: %+v", diff)
	}
	if diff := Compare(s, d); diff != (Difference{Meta: true}) {
		t.Errorf("a replaced key without its end: %+v", diff)
	}
	d.Apply(s)
	if s.Expires() != end.Unix() || s["quota_max"] != json.Number("5") {
		t.Errorf("after Apply: %v", s)
	}
	if diff := Compare(s, d); diff != (Difference{}) {
		t.Errorf("a replaced key with its end: %+v", diff)
	}
}

// The client's requests: the secret on every call, keys by hash with
// ?hashed=, suppress_reset on a PUT, forms for the revoke endpoints, and
// the gateway's message in errors.
func TestClientRequests(t *testing.T) {
	var got []*http.Request
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, bodies = append(got, r), append(bodies, string(b))
		if r.URL.Path == "/tyk/keys/missing" {
			w.WriteHeader(404)
			io.WriteString(w, `{"status":"error","message":"There is no such key found"}`)
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = c.PutKey(ctx, "abcd", Session{"org_id": "o"}, true)
	err = c.DeleteKey(ctx, "missing")
	_ = c.RevokeToken(ctx, "tok", "access_token", "cid", "o")
	if !IsNotFound(err) || err.Error() != "gateway answered 404: There is no such key found" {
		t.Errorf("404: %v", err)
	}
	put, del, rev := got[0], got[1], got[2]
	for _, r := range got {
		if r.Header.Get("X-Tyk-Authorization") != "s3cret" {
			t.Errorf("%s %s without the secret", r.Method, r.URL)
		}
	}
	if put.Method != "PUT" || put.URL.Path != "/tyk/keys/abcd" || put.URL.Query().Get("hashed") == "" ||
		put.URL.Query().Get("suppress_reset") != "1" || bodies[0] != `{"org_id":"o"}` {
		t.Errorf("PUT %s %s", put.URL, bodies[0])
	}
	if del.Method != "DELETE" || del.URL.Query().Get("hashed") == "" {
		t.Errorf("DELETE %s", del.URL)
	}
	if rev.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		bodies[2] != "client_id=cid&org_id=o&token=tok&token_type_hint=access_token" {
		t.Errorf("revoke %s %q", rev.Header.Get("Content-Type"), bodies[2])
	}
	if _, err := New("ftp://x", "s"); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := New("http://u:p@x", "s"); err == nil {
		t.Error("URL with credentials accepted")
	}
	if _, err := New("http://x", ""); err == nil {
		t.Error("empty secret accepted")
	}
	unreachable, _ := New("http://127.0.0.1:1", "s")
	if _, err := unreachable.CreateKey(ctx, "d47239e128754c0c9148363286b8ed46", Session{}); err == nil || StatusOf(err) != 0 || !IsGateway(err) || givesUp(err, 1000) != "" ||
		strings.Contains(err.Error(), "d47239e1") {
		t.Errorf("unreachable: %v (a key's id must never be in an error)", err)
	}
}

// A change waits for a gateway that is down or overloaded, is skipped at
// once when refused with a 4xx, after a few 500s, and after a few failures
// of the store.
func TestGivesUp(t *testing.T) {
	down := &Error{Message: "connection refused"}
	store := errors.New("secret does not open")
	for _, tt := range []struct {
		err     error
		attempt int
		want    string
	}{
		{down, 1000, ""}, {&Error{Status: 503}, 1000, ""}, {&Error{Status: 429}, 1000, ""},
		{&Error{Status: 400}, 1, skippedRefused}, {&Error{Status: 404}, 1, skippedRefused},
		{&Error{Status: 500}, maxAnsweredAttempts - 1, ""}, {&Error{Status: 500}, maxAnsweredAttempts, skippedRefused},
		{store, maxStoreAttempts - 1, ""}, {store, maxStoreAttempts, skippedStore},
	} {
		if got := givesUp(tt.err, tt.attempt); got != tt.want {
			t.Errorf("givesUp(%v, %d) = %v", tt.err, tt.attempt, got)
		}
	}
}

// FuzzCompare: whatever a gateway answers as a session, comparing it never
// panics.
func FuzzCompare(f *testing.F) {
	f.Add([]byte(`{"apply_policies":["a"],"meta_data":{"tyk_developer_id":"d"},"alias":"x","is_inactive":true}`))
	f.Add([]byte(`{"apply_policies":"a","meta_data":[1],"alias":7,"is_inactive":"yes","org_id":null}`))
	d := DesiredFor(&keylens.Key{Policies: []string{"a"}}, owner, "off")
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Session
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if dec.Decode(&s) != nil {
			return
		}
		_ = Compare(s, d)
		_ = s.Policies()
		_, _ = s.Meta()[MetaDeveloperID].(string)
	})
}

// A gateway that answers its probes while a call failed without an answer
// is not "back": the wait runs its course instead of retrying at once.
func TestWaitForGatewayUp(t *testing.T) {
	probes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hello" {
			probes++
		}
		io.WriteString(w, `{"status":"pass"}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "s")
	o := &Outbox{Client: c}
	back, ok := o.waitForGateway(context.Background(), 3*probeInterval)
	if back || !ok || probes < 2 {
		t.Errorf("back %v, ok %v after %d probes: want the whole wait, probing", back, ok, probes)
	}
}
