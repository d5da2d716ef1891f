package keylens_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

func TestDeveloperJSON_NeverWritesSecrets(t *testing.T) {
	d := &keylens.Developer{ID: "5e397e714ea461ef1d474efa", Email: "a@b.io", Password: "plain-text",
		PasswordHash: "$2a$10$hash", PasswordHistory: []string{"$2a$10$old"}}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, secret := range []string{"plain-text", "$2a$10$hash", "$2a$10$old", `"password"`} {
		if strings.Contains(s, secret) {
			t.Errorf("marshalled developer contains %s: %s", secret, s)
		}
	}
	for _, member := range []string{`"keys":{}`, `"subscriptions":{}`, `"fields":{}`, `"oauth_clients":{}`, `"PWHistory":[]`} {
		if !strings.Contains(s, member) {
			t.Errorf("marshalled developer lacks %s: %s", member, s)
		}
	}
}

func TestDeveloperJSON_Input(t *testing.T) {
	tests := []struct {
		name, in string
		check    func(*keylens.Developer) bool
	}{
		{"_id when id is absent", `{"_id":"554c733a30c55e4b16000002"}`, func(d *keylens.Developer) bool { return d.ID == "554c733a30c55e4b16000002" }},
		{"id wins over _id", `{"id":"aaaaaaaaaaaaaaaaaaaaaaaa","_id":"bbbbbbbbbbbbbbbbbbbbbbbb"}`, func(d *keylens.Developer) bool { return d.ID == "aaaaaaaaaaaaaaaaaaaaaaaa" }},
		{"password is write-only input", `{"password":"p4ssword"}`, func(d *keylens.Developer) bool { return d.Password == "p4ssword" }},
		{"PWHistory input is ignored", `{"PWHistory":["x"]}`, func(d *keylens.Developer) bool { return d.PasswordHistory == nil }},
		{"api_keys key to policy", `{"api_keys":{"k1":"p1"}}`, func(d *keylens.Developer) bool { return d.Keys["k1"][0] == "p1" }},
		{"api_keys key to policies", `{"api_keys":{"k1":["p1","p2"]}}`, func(d *keylens.Developer) bool { return len(d.Keys["k1"]) == 2 }},
		{"keys win over api_keys", `{"keys":{"k1":["new"]},"api_keys":{"k1":"old"}}`, func(d *keylens.Developer) bool { return d.Keys["k1"][0] == "new" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d keylens.Developer
			if err := json.Unmarshal([]byte(tt.in), &d); err != nil {
				t.Fatal(err)
			}
			if !tt.check(&d) {
				t.Errorf("decoded %+v", d)
			}
		})
	}
	var d keylens.Developer
	if err := json.Unmarshal([]byte(`{"api_keys":7}`), &d); err == nil {
		t.Error("api_keys of the wrong type accepted")
	}
}

func FuzzDeveloperJSON(f *testing.F) {
	f.Add(`{"email":"blip@blop.com","password":"$2a$10$hlG1ujAHWUpnM37k.l1RhO6RrxkCpXki2yrGhufnDs1IBiUo4Kzqy","keys":{"k":["p"]}}`)
	f.Add(`{"_id":"554c733a30c55e4b16000002","api_keys":{"a":"b"},"oauth_clients":{"p":[{"client_id":"c"}]}}`)
	f.Add(`{"fields":{"custom1":"sdf",}}`)
	f.Fuzz(func(t *testing.T, in string) {
		var d keylens.Developer
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			return
		}
		d.NormalizeKeys()
		_ = d.Validate()
		out, err := json.Marshal(&d)
		if err != nil {
			t.Fatalf("a decoded developer does not marshal: %v", err)
		}
		if d.Password != "" && strings.Contains(string(out), d.Password) && len(d.Password) > 8 {
			t.Fatalf("password %q echoed in %s", d.Password, out)
		}
	})
}

func TestDeveloperPrepareAndMerge(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := &keylens.Developer{Email: "a@example.com", Password: "secret-1", Keys: map[string][]string{"my-custom-key": {"p"}}}
	if err := d.PrepareNew(now); err != nil {
		t.Fatal(err)
	}
	if d.Password != "" || !keylens.CheckPassword(d.PasswordHash, "secret-1") || !d.PasswordUpdated.Equal(now) ||
		len(d.PasswordHistory) != 1 || d.PasswordHistory[0] != d.PasswordHash {
		t.Errorf("prepared password: %+v", d)
	}
	if _, raw := d.Keys["my-custom-key"]; raw || len(d.Keys[keylens.KeyHashOf("my-custom-key")]) != 1 {
		t.Errorf("keys not filed by hash: %v", d.Keys)
	}
	bad := &keylens.Developer{Email: "not an email", Password: "secret-2"}
	if err := bad.PrepareUpdate(now); keylens.ErrorCode(err) != keylens.EINVALID || bad.PasswordHash != "" {
		t.Errorf("an invalid developer: %v, hash %q", err, bad.PasswordHash)
	}

	cur := &keylens.Developer{ID: "x", OrgID: "org", DateCreated: now.Add(-time.Hour), LastLoginDate: now.Add(-time.Minute),
		PasswordHash: d.PasswordHash, PasswordUpdated: now, PasswordHistory: d.PasswordHistory}
	keep := &keylens.Developer{Email: "b@example.com"}
	keep.MergeUpdate(cur)
	if keep.PasswordHash != cur.PasswordHash || keep.OrgID != "org" || !keep.DateCreated.Equal(cur.DateCreated) ||
		!keep.LastLoginDate.Equal(cur.LastLoginDate) || len(keep.PasswordHistory) != 1 {
		t.Errorf("server-kept members lost: %+v", keep)
	}
	change := &keylens.Developer{Email: "b@example.com", Password: "secret-3", OrgID: "other"}
	if err := change.PrepareUpdate(now); err != nil {
		t.Fatal(err)
	}
	change.MergeUpdate(cur)
	if change.OrgID != "other" || len(change.PasswordHistory) != 2 || change.PasswordHistory[1] != change.PasswordHash {
		t.Errorf("a new password and org: %+v", change)
	}
}

func TestDiffKeys(t *testing.T) {
	d := keylens.DiffKeys(
		map[string][]string{"gone": {"p"}, "same": {"p"}, "moved": {"p"}},
		map[string][]string{"same": {"p"}, "moved": {"q"}, "new2": {}, "new1": {"p"}})
	if fmt.Sprint(d.Removed, d.Added, d.Changed) != "[gone] [new1 new2] [moved]" {
		t.Errorf("diff %+v", d)
	}
}

func TestFieldNamesThatCollide(t *testing.T) {
	for _, names := range [][]string{{"Use case", "Use_case"}, {"Use case", "Use-case"}, {"Case", "case"}, {"a b", "a-b"}, {"x.y", "xy"}} {
		err := keylens.ValidateFieldNames("fields", names)
		if keylens.ErrorCode(err) != keylens.EINVALID || !strings.Contains(err.Error(), names[0]) || !strings.Contains(err.Error(), names[1]) {
			t.Errorf("%q: %v, want EINVALID naming both", names, err)
		}
	}
	for _, names := range [][]string{{"Use case", "Company"}, {"名前", "氏名"}, {"seats", "Seats count"}} {
		if err := keylens.ValidateFieldNames("fields", names); err != nil {
			t.Errorf("%q: %v", names, err)
		}
	}
	d := &keylens.Developer{Email: "c@example.com", Fields: map[string]string{"Use case": "a", "use_case": "b"}}
	if err := d.Validate(); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a developer with colliding fields: %v", err)
	}
	r := &keylens.KeyRequest{ByUser: "x", ApplyPolicies: []string{"p"}, Fields: map[string]any{"Plan": 1, "plan": 2}}
	if err := r.Validate(); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a key request with colliding fields: %v", err)
	}
}
