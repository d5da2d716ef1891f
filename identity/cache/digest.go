package cache

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// CredentialDigest is what the cache is keyed by: SipHash-2-4 with
// 128-bit output (Aumasson and Bernstein) of a credential, under a secret
// drawn at random when the process starts. It is not an API key hash (the
// KeyID that Tyk and keylens store and send upstream): a digest is private
// to one process and never leaves it.
//
// SipHash is a pseudorandom function: without the process's secret, which
// never leaves memory, nobody can make two credentials share a digest
// except by chance, at odds of 2⁻¹²⁸ per pair, so a credential can never
// be answered with another's cached identity. It costs about a third of a
// SHA-256 of a typical credential, on the path of every request. Digests
// mean nothing outside the process that made them, and the cache never
// holds the credential itself.
type CredentialDigest [16]byte

var sipK0, sipK1 = randomSipKey()

func randomSipKey() (uint64, uint64) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// No randomness, no secret key: refuse to run rather than key
		// the cache predictably.
		panic("keylens cache: no random key: " + err.Error())
	}
	return binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
}

// DigestOf returns the CredentialDigest of a credential.
func DigestOf(credential []byte) CredentialDigest { return sipHash128(sipK0, sipK1, credential) }

// DigestOfString is DigestOf for a string, without copying it.
func DigestOfString(credential string) CredentialDigest {
	return sipHash128(sipK0, sipK1, unsafe.Slice(unsafe.StringData(credential), len(credential)))
}

// sipHash128 is SipHash-2-4 with 128-bit output, as the reference
// implementation computes it: the two 64-bit halves little-endian.
func sipHash128(k0, k1 uint64, m []byte) CredentialDigest {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d ^ 0xee
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573

	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}

	n := len(m)
	for ; len(m) >= 8; m = m[8:] {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		round()
		round()
		v0 ^= w
	}
	// The last word: the remaining bytes, and the length's low byte on top.
	last := uint64(n) << 56
	for i := len(m) - 1; i >= 0; i-- {
		last |= uint64(m[i]) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last

	var k CredentialDigest
	v2 ^= 0xee
	round()
	round()
	round()
	round()
	binary.LittleEndian.PutUint64(k[:8], v0^v1^v2^v3)
	v1 ^= 0xdd
	round()
	round()
	round()
	round()
	binary.LittleEndian.PutUint64(k[8:], v0^v1^v2^v3)
	return k
}
