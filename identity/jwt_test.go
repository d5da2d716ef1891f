package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestIsJWT(t *testing.T) {
	long := `{"alg":"RS256","x5c":["` + strings.Repeat("A", 2000) + `"]}` // past the stack buffer
	for _, c := range []struct {
		name  string
		token string
		want  bool
	}{
		{"HS256 token", b64(`{"alg":"HS256","typ":"JWT"}`) + "." + b64(`{"sub":"x"}`) + ".c2ln", true},
		{"alg after other members", b64(` { "kid" : "k1", "x":{"alg":1,"y":[1,{"z":"}"}]}, "alg" : "EdDSA" } `) + ".e30.", true},
		{"a string with escapes before alg", b64(`{"kid":"a\"b\\","alg":"ES256"}`) + "..", true},
		{"the last alg counts", b64(`{"alg":1,"alg":"HS256"}`) + ".a.b", true},
		{"a long header", b64(long) + ".a.b", true},
		{"a header past the bound", b64(`{"alg":"RS256","x5c":["`+strings.Repeat("A", 13<<10)+`"]}`) + ".a.b", false},
		{"an API key with two dots", "abc.def.ghi", false},
		{"a Tyk key with two dots", "eyJvcmciOiJ4In0.eyJ.x", false},
		{"one dot", b64(`{"alg":"HS256"}`) + ".e30", false},
		{"three dots", b64(`{"alg":"HS256"}`) + ".e30.a.b", false},
		{"no header", ".e30.c2ln", false},
		{"alg not a string", b64(`{"alg":256}`) + ".e30.x", false},
		{"alg null", b64(`{"alg":null}`) + ".e30.x", false},
		{"alg only nested", b64(`{"h":{"alg":"HS256"}}`) + ".e30.x", false},
		{"alg in another case", b64(`{"ALG":"HS256"}`) + ".e30.x", false},
		{"an array", b64(`["alg","HS256"]`) + ".e30.x", false},
		{"a string", b64(`"alg"`) + ".e30.x", false},
		{"invalid JSON", b64(`{"alg":"HS256"`) + ".e30.x", false},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte(`{"alg":"HS2"}`)) + ".e30.x", false},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(b64(`{"alg":"HS256","k":"??>>"}`)) + ".e30.x", false},
		{"a newline in base64", "eyJhbGciOiJIUzI1\nNiJ9.e30.x", false},
		{"non-zero trailing bits", "eyJhbGciOiJIUzI1NiJ9"[:19] + "z.e30.x", false},
	} {
		if got := IsJWT([]byte(c.token)); got != c.want {
			t.Errorf("%s: IsJWT(%q) = %v, want %v", c.name, c.token, got, c.want)
		}
		if got := IsJWTString(c.token); got != c.want {
			t.Errorf("%s: IsJWTString = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestIsJWTAllocatesNothing(t *testing.T) {
	tok := b64(`{"alg":"HS256","typ":"JWT","kid":"`+strings.Repeat("k", 200)+`"}`) + ".e30.c2ln"
	if n := testing.AllocsPerRun(100, func() { IsJWTString(tok) }); n != 0 {
		t.Errorf("IsJWTString allocates %v times", n)
	}
}

// isJWTReference is the rule written with the standard library's
// decoders: what IsJWT must answer for every input.
func isJWTReference(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || strings.ContainsAny(parts[0], "\r\n") {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h map[string]json.RawMessage
	if json.Unmarshal(raw, &h) != nil || h == nil {
		return false
	}
	alg, ok := h["alg"]
	return ok && len(alg) > 0 && alg[0] == '"'
}

func FuzzIsJWT(f *testing.F) {
	for _, s := range []string{
		b64(`{"alg":"HS256"}`) + ".e30.c2ln", "abc.def.ghi", b64(`{"a":[{"alg":"x"}],"alg":"y"}`) + "..",
		b64(`{"alg":"x","alg":2}`) + ".a.b", b64(`{}`) + ".a.b", "..", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		got := IsJWT([]byte(token))
		if got != IsJWTString(token) {
			t.Fatalf("string and []byte disagree on %q", token)
		}
		// Member names are compared as written by IsJWT and unescaped by
		// encoding/json, so a name spelling "alg" with \u escapes is
		// beyond the reference (other escapes cannot spell it), and so is
		// a header beyond IsJWT's bound.
		if first, _, _ := strings.Cut(token, "."); bytes.Contains(decodeLoose(first), []byte(`\u`)) || len(first) > maxJOSEHeader {
			return
		}
		if want := isJWTReference(token); got != want {
			t.Fatalf("IsJWT(%q) = %v, the reference says %v", token, got, want)
		}
	})
}

func decodeLoose(s string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return b
}

func BenchmarkIsJWT(b *testing.B) {
	for name, tok := range map[string]string{
		"an API key":          "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0=",
		"a JWT":               b64(`{"alg":"HS256","typ":"JWT","kid":"d47239e128754c0c9148363286b8ed46"}`) + "." + b64(`{"sub":"x","exp":1767225600}`) + ".c2lnbmF0dXJl",
		"a key with two dots": "abc.def.ghi",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				IsJWTString(tok)
			}
		})
	}
}
