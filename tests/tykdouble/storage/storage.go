// Package storage doubles github.com/TykTechnologies/tyk/storage: the
// hashing under which the gateway stores a key (hashed keys on). Written
// from the gateway's documented behaviour (keylens's docs/tyk-facts.md,
// "Keys and hashing"), with the very murmur3 module the gateway uses; it
// holds no gateway code.
package storage

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strings"

	"github.com/TykTechnologies/murmur3"
)

// Hash algorithms a key can name in its "h" field.
const (
	HashSha256    = "sha256"
	HashMurmur32  = "murmur32"
	HashMurmur64  = "murmur64"
	HashMurmur128 = "murmur128"
)

// HashKey returns the name under which the gateway stores key: its hash
// when hashKey (the gateway's hash_keys) is set, else the key itself.
func HashKey(in string, hashKey bool) string {
	if !hashKey {
		return in
	}
	return HashStr(in)
}

// HashStr returns the lowercase hex digest of the whole of in, with the
// algorithm a base64-JSON key names in "h", murmur32 for any other key or
// an unknown algorithm.
func HashStr(in string) string {
	var h hash.Hash
	switch algorithmOf(in) {
	case HashSha256:
		h = sha256.New()
	case HashMurmur64:
		h = murmur3.New64()
	case HashMurmur128:
		h = murmur3.New128()
	default:
		h = murmur3.New32()
	}
	_, _ = h.Write([]byte(in))
	return hex.EncodeToString(h.Sum(nil))
}

func algorithmOf(key string) string {
	if !strings.HasPrefix(key, "ey") {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	h, _ := m["h"].(string)
	return h
}

// GenerateToken returns the key the gateway forms for org and keyID: with
// hashAlgorithm set, the standard base64 of the JSON
// {"org":ORG,"id":ID,"h":ALGO} written verbatim; without, org + keyID.
func GenerateToken(orgID, keyID, hashAlgorithm string) string {
	if hashAlgorithm == "" {
		return orgID + keyID
	}
	switch hashAlgorithm {
	case HashSha256, HashMurmur32, HashMurmur64, HashMurmur128:
	default:
		hashAlgorithm = HashMurmur64 // what the gateway writes for an unknown one
	}
	return base64.StdEncoding.EncodeToString([]byte(`{"org":"` + orgID + `","id":"` + keyID + `","h":"` + hashAlgorithm + `"}`))
}
