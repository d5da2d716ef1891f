package identity_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keylens/keylens/identity"
)

func TestHeaders(t *testing.T) {
	id := &identity.Identity{
		DeveloperID: "dev1", Email: "ada@example.com", KeyID: "cac572e018c60de0", Policies: []string{"p1", "p2"},
		Fields:           map[string]string{"Company": "Acme\r\nX-Developer-Id: evil", "Use case": "x", "": "empty name", "$$$": "no token"},
		KeyRequestFields: map[string]any{"seats": 3.0, "trial": true, "tags": []any{"a", "b"}, "nothing": nil},
	}
	got := map[string]string{}
	var order []string
	for _, h := range id.Headers(identity.DefaultHeaderNames) {
		if _, dup := got[h.Name]; dup {
			t.Errorf("header %s twice", h.Name)
		}
		got[h.Name] = h.Value
		order = append(order, h.Name)
	}
	want := map[string]string{
		"X-Developer-Id": "dev1", "X-Developer-Email": "ada@example.com", "X-Key-Id": "cac572e018c60de0",
		"X-Developer-Policies": "p1,p2", "X-Developer-Field-Company": "Acme  X-Developer-Id: evil",
		"X-Developer-Field-Use-case": "x", "X-Key-Request-Field-seats": "3", "X-Key-Request-Field-trial": "true",
		"X-Key-Request-Field-tags": `["a","b"]`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("headers %v, want exactly %v", order, want)
	}
	for _, v := range got {
		if strings.ContainsAny(v, "\r\n") {
			t.Errorf("a value carries a line break: %q", v)
		}
	}
	if order[0] != "X-Developer-Id" || order[4] != "X-Developer-Field-Company" {
		t.Errorf("order %v is not fixed headers, then sorted fields", order)
	}
	// Renamed headers follow the configuration; an empty name is left out.
	names := identity.DefaultHeaderNames
	names.DeveloperID, names.FieldPrefix = "X-Dev", ""
	for _, h := range id.Headers(names) {
		if strings.HasPrefix(h.Name, "X-Developer-Field-") || h.Name == "X-Developer-Id" {
			t.Errorf("unexpected %s with renamed headers", h.Name)
		}
	}
}

func TestIsIdentityHeader(t *testing.T) {
	n := identity.DefaultHeaderNames
	for name, want := range map[string]bool{
		"X-Developer-Id": true, "x-developer-id": true, "X-DEVELOPER-FIELD-Anything": true, "x-key-request-field-x": true,
		"X-Developer-Assertion": true, "X-Key-Id": true, "X-Developer-Policies": true, "X-Developer-Email": true,
		"Authorization": false, "X-Developer": false, "X-Key-Idx": false, "X-Forwarded-For": false,
	} {
		if got := n.IsIdentityHeader(name); got != want {
			t.Errorf("IsIdentityHeader(%q) = %v", name, got)
		}
	}
}

func TestTokens(t *testing.T) {
	for in, want := range map[string][2]string{
		"Use case":      {"Use-case", "Use_case"},
		"App/Name!":     {"AppName", "AppName"},
		"snake_case-ok": {"snake-case-ok", "snake_case-ok"},
		"  ":            {"", "__"},
		"ünïcode":       {"ncode", "ncode"},
	} {
		if got := identity.HeaderToken(in); got != want[0] {
			t.Errorf("HeaderToken(%q) = %q, want %q", in, got, want[0])
		}
		if got := identity.MetaToken(in); got != want[1] {
			t.Errorf("MetaToken(%q) = %q, want %q", in, got, want[1])
		}
	}
}

func TestSanitizeValueCutsOnARuneBoundary(t *testing.T) {
	long := strings.Repeat("é", identity.MaxHeaderValue) // 2 bytes each
	got := identity.SanitizeValue(long)
	if len(got) > identity.MaxHeaderValue || !strings.HasSuffix(got, "é") {
		t.Errorf("cut to %d bytes, ending %q", len(got), got[len(got)-3:])
	}
}

func FuzzHeaders(f *testing.F) {
	f.Add("Company", "Acme\r\nEvil: 1", "Use case", "x\x00y")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		id := &identity.Identity{DeveloperID: v1, Fields: map[string]string{k1: v1}, KeyRequestFields: map[string]any{k2: v2}}
		for _, h := range id.Headers(identity.DefaultHeaderNames) {
			if strings.ContainsAny(h.Name, " \t\r\n:") || h.Name == "" {
				t.Fatalf("unsafe header name %q", h.Name)
			}
			for i := 0; i < len(h.Value); i++ {
				if c := h.Value[i]; c < 0x20 || c == 0x7f {
					t.Fatalf("control byte in %s: %q", h.Name, h.Value)
				}
			}
		}
	})
}

func TestHeadersWithin(t *testing.T) {
	id := &identity.Identity{DeveloperID: "dev", Email: "a@example.com", KeyID: "0123abcd", Policies: []string{"p"},
		Fields: map[string]string{}, KeyRequestFields: map[string]any{"Use case": "billing"}}
	for i := range 100 {
		id.Fields[fmt.Sprintf("f%03d", i)] = strings.Repeat("x", 4096)
	}
	hs, truncated := id.HeadersWithin(identity.DefaultHeaderNames, identity.DefaultMaxHeaderBytes)
	size := 0
	names := map[string]string{}
	for _, h := range hs {
		size += len(h.Name) + len(h.Value) + 4
		names[h.Name] = h.Value
	}
	if !truncated || size > identity.DefaultMaxHeaderBytes || names["X-Developer-Fields-Truncated"] != "true" {
		t.Errorf("100 fields of 4 KiB: truncated %v, %d bytes, marker %q", truncated, size, names["X-Developer-Fields-Truncated"])
	}
	for _, fixed := range []string{"X-Developer-Id", "X-Developer-Email", "X-Key-Id", "X-Developer-Policies"} {
		if names[fixed] == "" {
			t.Errorf("%s left out: the fixed headers always go", fixed)
		}
	}
	if names["X-Developer-Field-f000"] == "" || names["X-Developer-Field-f099"] != "" {
		t.Error("fields are not kept in name order up to the limit")
	}
	small := &identity.Identity{DeveloperID: "dev", Fields: map[string]string{"Company": "Acme"}}
	if hs, truncated := small.HeadersWithin(identity.DefaultHeaderNames, identity.DefaultMaxHeaderBytes); truncated || len(hs) != 2 {
		t.Errorf("a small identity: %v %v", hs, truncated)
	}
	if !identity.DefaultHeaderNames.IsIdentityHeader("x-developer-fields-truncated") {
		t.Error("a client-sent truncation marker is not stripped")
	}
}
