package cache

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

func TestDigestOf(t *testing.T) {
	a, b := []byte("Bearer 5e9d9544a1dcd60001d0ed20a9f8e2c1"), []byte("Bearer 5e9d9544a1dcd60001d0ed20a9f8e2c2")
	if DigestOf(a) != DigestOfString(string(a)) {
		t.Error("DigestOf and DigestOfString differ on one credential")
	}
	if DigestOf(a) == DigestOf(b) {
		t.Error("credentials one bit apart share a key")
	}
	// Two seeds: the halves are two different hashes.
	if d := DigestOf(a); [8]byte(d[:8]) == [8]byte(d[8:]) {
		t.Error("the digest's halves are one hash")
	}
	// Lengths and every byte count, short and long (past maphash's
	// 128-byte buffer), and no half collides on its own.
	seen := map[[8]byte]string{}
	for n := range 300 {
		for _, c := range []byte{'a', 'b'} {
			cred := make([]byte, n, n+1)
			for i := range cred {
				cred[i] = 'a'
			}
			cred = append(cred, c)
			d := DigestOf(cred)
			for _, half := range [][8]byte{[8]byte(d[:8]), [8]byte(d[8:])} {
				if other, ok := seen[half]; ok {
					t.Fatalf("%q and %s share half a digest", cred, other)
				}
				seen[half] = fmt.Sprintf("%q", cred)
			}
		}
	}
}

var sinkDigest CredentialDigest

// BenchmarkDigestOf compares the credential digest with the SHA-256 it
// replaced earlier, on a credential of the length an Authorization header
// usually carries, and on a Tyk base64-JSON key (116 bytes).
func BenchmarkDigestOf(b *testing.B) {
	for _, cred := range []string{"Bearer 5e9d9544a1dcd60001d0ed20a9f8e2c1a5d04e7c8b9b2e6f3a1d7c9e",
		"eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwiaCI6Im11cm11cjY0In0="} {
		c := []byte(cred)
		b.Run(fmt.Sprintf("maphash128/%dB", len(c)), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sinkDigest = DigestOf(c)
			}
		})
		b.Run(fmt.Sprintf("sha256/%dB", len(c)), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sinkSum = sha256.Sum256(c)
			}
		})
	}
}

var sinkSum [sha256.Size]byte
