package keylens

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strings"

	"github.com/TykTechnologies/murmur3"
)

// Key hash algorithms, named as in Tyk's hash_key_function setting and in the
// "h" field of generated keys.
const (
	HashMurmur32  = "murmur32"
	HashMurmur64  = "murmur64"
	HashMurmur128 = "murmur128"
	HashSHA256    = "sha256"

	// DefaultHashAlgorithm is what Tyk writes into generated keys when the
	// configured algorithm is unknown, and what keylens uses unless told.
	DefaultHashAlgorithm = HashMurmur64
)

// ValidHashAlgorithm reports whether name is one of the four algorithms a Tyk
// gateway can hash with.
func ValidHashAlgorithm(name string) bool {
	switch name {
	case HashMurmur32, HashMurmur64, HashMurmur128, HashSHA256:
		return true
	}
	return false
}

// GenerateKey returns a new raw key in Tyk's format for org: the standard
// base64 of {"org":ORG,"id":ID,"h":ALGO}, with ID 32 random hex characters.
// An unknown algorithm is replaced by DefaultHashAlgorithm, as Tyk does.
func GenerateKey(org, algo string) string {
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand documents this since Go 1.24)
	return KeyFor(org, hex.EncodeToString(id[:]), algo)
}

// KeyFor returns the Tyk key of (org, id) hashed with algo. The JSON is
// assembled verbatim, without escaping, exactly as the gateway assembles it:
// the key of a basic-auth user is KeyFor(org, username, algo), and any other
// spelling would hash differently from the gateway's. An empty algo gives a
// legacy key, org+id.
func KeyFor(org, id, algo string) string {
	if algo == "" {
		return org + id
	}
	if !ValidHashAlgorithm(algo) {
		algo = DefaultHashAlgorithm
	}
	return base64.StdEncoding.EncodeToString([]byte(`{"org":"` + org + `","id":"` + id + `","h":"` + algo + `"}`))
}

// KeyHashAlgorithm returns the "h" field of a Tyk base64-JSON key, or "" for a
// legacy or custom key (and for anything that does not decode).
func KeyHashAlgorithm(key string) string {
	if !strings.HasPrefix(key, "ey") {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return ""
	}
	return topLevelString(raw, "h")
}

// KeyOrg returns the org id a key carries: the "org" field of a base64-JSON
// key, or the 24 hex characters that start a legacy key; "" otherwise.
func KeyOrg(key string) string {
	if strings.HasPrefix(key, "ey") {
		if raw, err := base64.StdEncoding.DecodeString(key); err == nil {
			if org := topLevelString(raw, "org"); org != "" {
				return org
			}
		}
	}
	if len(key) > 24 && isHex(key[:24]) {
		return key[:24]
	}
	return ""
}

// KeyID returns the "id" field of a Tyk base64-JSON key: the name under
// which the gateway's key API creates exactly that key for its org; "" for
// any other key.
func KeyID(key string) string {
	if !strings.HasPrefix(key, "ey") {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return ""
	}
	return topLevelString(raw, "id")
}

// topLevelString returns the first string value of name at the top level of
// the JSON object doc; "" when absent, not a string, or not reached before a
// syntax error. Keys match exactly (encoding/json's struct decoding would
// also match "H", which the gateway does not).
func topLevelString(doc []byte, name string) string {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if k == name {
			v, err := dec.Token()
			if err != nil {
				return ""
			}
			s, _ := v.(string)
			return s
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// HashKey returns the hash under which a Tyk gateway stores key: the hex
// digest of the whole key with the key's own algorithm (KeyHashAlgorithm),
// murmur32 when it names none or one unknown.
func HashKey(key string) string {
	return HashKeyWith(key, KeyHashAlgorithm(key))
}

// HashKeyWith returns the lowercase hex digest of key under algo; an empty or
// unknown algo means murmur32, as in the gateway.
func HashKeyWith(key, algo string) string {
	var h hash.Hash
	switch algo {
	case HashSHA256:
		h = sha256.New()
	case HashMurmur64:
		h = murmur3.New64()
	case HashMurmur128:
		h = murmur3.New128()
	default:
		h = murmur3.New32()
	}
	_, _ = h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

// IsKeyHash reports whether s has the shape of a key hash: lowercase hex of
// one of the four digest lengths.
func IsKeyHash(s string) bool {
	switch len(s) {
	case 8, 16, 32, 64:
		return isLowerHex(s)
	}
	return false
}

// KeyHashOf is the one rule that turns a key reference into the hash keylens
// files, resolves and counts the key under: a reference with the shape of
// a key hash (IsKeyHash) is one; anything else (a raw Tyk key, a legacy
// key, a custom key id) is a raw key, hashed as the gateway hashes it
// (HashKey). Raw keys therefore never reach storage. (A custom raw key of
// 8, 16, 32 or 64 lowercase hex characters reads as a hash: send its hash.)
func KeyHashOf(ref string) string {
	if IsKeyHash(ref) {
		return ref
	}
	return HashKey(ref)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
