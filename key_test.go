package keylens_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/keylens/keylens"
)

const (
	legacyKey = "5e9d9544a1dcd60001d0ed20d47239e128754c0c9148363286b8ed46"
	jsonKey   = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0="
)

// The test vectors of docs/tyk-facts.md ("Keys and hashing"), computed with
// a real Tyk gateway build.
var hashVectors = []struct {
	key                                   string
	murmur32, murmur64, murmur128, sha256 string
}{
	{"abc", "00000000", "b4963f3f3fad7867", "b4963f3f3fad78673ba2744126ca2d52",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{legacyKey, "4beaa90b", "e6e93940e9920bcb", "e6e93940e9920bcb0fec11f0d2abf04c",
		"4c338b1671a3a96faee3b6b8d6d94fae42a474e9171994c517165ba6941ca618"},
	{jsonKey, "5a779526", "cac572e018c60de0", "cac572e018c60de048ec4d9079aa9366",
		"ad9adce693ee298021009db62463c3ae2272c8700dad62ab2514095488935c9a"},
}

func TestHashKeyWith_TykVectors(t *testing.T) {
	for _, v := range hashVectors {
		for algo, want := range map[string]string{
			keylens.HashMurmur32:  v.murmur32,
			keylens.HashMurmur64:  v.murmur64,
			keylens.HashMurmur128: v.murmur128,
			keylens.HashSHA256:    v.sha256,
		} {
			if got := keylens.HashKeyWith(v.key, algo); got != want {
				t.Errorf("HashKeyWith(%.12q…, %s) = %s, want %s", v.key, algo, got, want)
			}
		}
	}
}

func TestHashKey_UsesTheKeysOwnAlgorithm(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{"plain string is murmur32", "abc", "00000000"},
		{"legacy key is murmur32", legacyKey, "4beaa90b"},
		{"base64 JSON key uses its h", jsonKey, "cac572e018c60de0"},
		{"empty algorithm falls back to murmur32", b64(`{"org":"o","id":"i","h":""}`), keylens.HashKeyWith(b64(`{"org":"o","id":"i","h":""}`), "murmur32")},
		{"unknown algorithm falls back to murmur32", b64(`{"org":"o","id":"i","h":"md5"}`), keylens.HashKeyWith(b64(`{"org":"o","id":"i","h":"md5"}`), "murmur32")},
		{"truncated base64 is murmur32", jsonKey[:len(jsonKey)-3], keylens.HashKeyWith(jsonKey[:len(jsonKey)-3], "murmur32")},
		{"h matches case-sensitively", b64(`{"org":"o","H":"sha256"}`), keylens.HashKeyWith(b64(`{"org":"o","H":"sha256"}`), "murmur32")},
		{"h nested in an object is not top level", b64(`{"x":{"h":"sha256"},"org":"o"}`), keylens.HashKeyWith(b64(`{"x":{"h":"sha256"},"org":"o"}`), "murmur32")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keylens.HashKey(tt.key); got != tt.want {
				t.Errorf("HashKey = %s, want %s", got, tt.want)
			}
		})
	}
	// The sha256 case must actually differ from murmur32, or the
	// case-sensitivity test above proves nothing.
	if k := b64(`{"org":"o","h":"sha256"}`); len(keylens.HashKey(k)) != 64 {
		t.Errorf("HashKey of a sha256 key has length %d, want 64", len(keylens.HashKey(k)))
	}
}

func TestKeyFor_MatchesTheGatewaysKey(t *testing.T) {
	got := keylens.KeyFor("5e9d9544a1dcd60001d0ed20", "d47239e128754c0c9148363286b8ed46", "murmur64")
	if got != jsonKey {
		t.Fatalf("KeyFor = %s, want %s", got, jsonKey)
	}
	if got := keylens.KeyFor("5e9d9544a1dcd60001d0ed20", "d47239e128754c0c9148363286b8ed46", ""); got != legacyKey {
		t.Errorf("legacy KeyFor = %s, want %s", got, legacyKey)
	}
	if got := keylens.KeyHashAlgorithm(keylens.KeyFor("o", "i", "crc32")); got != keylens.DefaultHashAlgorithm {
		t.Errorf("unknown algorithm written as %q, want %q", got, keylens.DefaultHashAlgorithm)
	}
}

func TestGenerateKey(t *testing.T) {
	a := keylens.GenerateKey("5e9d9544a1dcd60001d0ed20", "sha256")
	b := keylens.GenerateKey("5e9d9544a1dcd60001d0ed20", "sha256")
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	if got := keylens.KeyOrg(a); got != "5e9d9544a1dcd60001d0ed20" {
		t.Errorf("KeyOrg = %q", got)
	}
	if got := keylens.KeyHashAlgorithm(a); got != "sha256" {
		t.Errorf("KeyHashAlgorithm = %q", got)
	}
	raw, _ := base64.StdEncoding.DecodeString(a)
	if !strings.HasPrefix(string(raw), `{"org":"5e9d9544a1dcd60001d0ed20","id":"`) || len(raw) != len(`{"org":"5e9d9544a1dcd60001d0ed20","id":"","h":"sha256"}`)+32 {
		t.Errorf("generated key decodes to %s", raw)
	}
	if len(keylens.HashKey(a)) != 64 {
		t.Errorf("hash of a sha256 key is %q", keylens.HashKey(a))
	}
}

func TestKeyOrg(t *testing.T) {
	for key, want := range map[string]string{
		jsonKey:   "5e9d9544a1dcd60001d0ed20",
		legacyKey: "5e9d9544a1dcd60001d0ed20",
		"abc":     "",
		"zz9d9544a1dcd60001d0ed20d47239e128754c0c9148363286b8ed46": "",
	} {
		if got := keylens.KeyOrg(key); got != want {
			t.Errorf("KeyOrg(%.12s…) = %q, want %q", key, got, want)
		}
	}
}

// KeyID is the id the gateway's key API forms the key from: the third test
// vector of docs/tyk-facts.md is KeyFor(its org, this id, murmur64).
func TestKeyID(t *testing.T) {
	if got := keylens.KeyID(jsonKey); got != "d47239e128754c0c9148363286b8ed46" {
		t.Errorf("KeyID = %q", got)
	}
	if keylens.KeyFor("5e9d9544a1dcd60001d0ed20", keylens.KeyID(jsonKey), "murmur64") != jsonKey {
		t.Error("KeyFor(org, KeyID(key), h) is not the key")
	}
	for _, k := range []string{legacyKey, "abc", "eyNotBase64!"} {
		if got := keylens.KeyID(k); got != "" {
			t.Errorf("KeyID(%q) = %q, want none", k, got)
		}
	}
}

func TestKeyHashOf_NeverKeepsARawKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{jsonKey, "cac572e018c60de0"},
		{legacyKey, "4beaa90b"},
		{"cac572e018c60de0", "cac572e018c60de0"},
		{"my-custom-key-id", keylens.HashKeyWith("my-custom-key-id", "murmur32")},
		{"eyNotBase64!", keylens.HashKeyWith("eyNotBase64!", "murmur32")},
		{"CAC572E018C60DE0", keylens.HashKeyWith("CAC572E018C60DE0", "murmur32")},
	}
	for _, tt := range tests {
		if got := keylens.KeyHashOf(tt.in); got != tt.want {
			t.Errorf("KeyHashOf(%.12s…) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for s, want := range map[string]bool{"cac572e018c60de0": true, "CAC572E018C60DE0": false, "abc": false, "4beaa90b": true} {
		if got := keylens.IsKeyHash(s); got != want {
			t.Errorf("IsKeyHash(%q) = %v", s, got)
		}
	}
}

func FuzzHashKey(f *testing.F) {
	for _, v := range hashVectors {
		f.Add(v.key)
	}
	f.Add(b64(`{"org":"o","id":"i","h":"sha256"`))
	f.Add("ey")
	f.Fuzz(func(t *testing.T, key string) {
		h := keylens.HashKey(key)
		switch len(h) {
		case 8, 16, 32, 64:
		default:
			t.Fatalf("HashKey(%q) = %q: not a digest length", key, h)
		}
		if !keylens.IsKeyHash(h) {
			t.Fatalf("HashKey(%q) = %q is not lowercase hex", key, h)
		}
		if id := keylens.KeyHashOf(key); !keylens.IsKeyHash(key) && id != h {
			t.Fatalf("KeyHashOf(%q) = %q, want its hash %q", key, id, h)
		}
		_ = keylens.KeyOrg(key)
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
