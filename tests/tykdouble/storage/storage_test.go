package storage_test

import (
	"testing"

	"github.com/TykTechnologies/tyk/storage"
)

// The test vectors of keylens's docs/tyk-facts.md ("Keys and hashing"),
// computed with a real gateway.
func TestHashStrMatchesTheGateway(t *testing.T) {
	for key, want := range map[string]string{
		"abc": "00000000",
		"5e9d9544a1dcd60001d0ed20d47239e128754c0c9148363286b8ed46":                                                                 "4beaa90b",
		"eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0=": "cac572e018c60de0",
	} {
		if got := storage.HashStr(key); got != want {
			t.Errorf("HashStr(%.20s…) = %s, want %s", key, got, want)
		}
	}
	if storage.HashKey("abc", false) != "abc" {
		t.Error("with hashing off a key is its own name")
	}
}

// The generated key of docs/tyk-facts.md: org, id and murmur64 give its
// third test vector.
func TestGenerateTokenMatchesTheGateway(t *testing.T) {
	got := storage.GenerateToken("5e9d9544a1dcd60001d0ed20", "d47239e128754c0c9148363286b8ed46", storage.HashMurmur64)
	if got != "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0=" {
		t.Errorf("GenerateToken = %s", got)
	}
	if storage.GenerateToken("org", "id", "") != "orgid" {
		t.Error("without a hash function the key is org + id")
	}
}
