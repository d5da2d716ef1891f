package cache

import (
	"encoding/binary"
	"hash/maphash"
)

// CredentialDigest is what the cache is keyed by: 128 bits of a keyed hash
// of a credential, two 64-bit hash/maphash values under two seeds drawn at
// random when the process starts. It is not an API key hash (the KeyID
// that Tyk and keylens store and send upstream): a digest is private to one
// process and never leaves it, and the cache never holds the credential
// itself.
//
// What the cache needs of it, and why this hash gives it:
//
//   - One credential must never be answered with another's identity, and
//     a hit is a digest match: nothing else is compared. Two credentials
//     share a digest by chance at odds of about 2⁻¹²⁸ a pair. To do better
//     than chance, a caller would have to find a credential whose digest
//     is that of a credential cached for someone else, without knowing the
//     seeds, the digests (which never leave the process) or that other
//     credential (if it knew it, it would hold the credential already).
//     maphash is not a cryptographic hash: inputs built to collide under
//     every seed may exist, but both sides of such a pair are the caller's
//     own, so at most one of its own credentials answers as another of its
//     own.
//   - The digest must not lead back to the credential: it never leaves the
//     process, and 128 bits of a 100-byte key leave the key's other bits
//     undetermined.
//   - Hash flooding: which shard and map slot a digest takes is
//     unpredictable without the seeds, and Go's maps hash their keys again
//     under a seed of their own.
//
// It replaced SipHash-2-4-128, a pseudorandom function, which costs about
// four times as much on the request path (the runtime hashes with the
// CPU's AES instructions where it has them).
type CredentialDigest [16]byte

var seed0, seed1 = maphash.MakeSeed(), maphash.MakeSeed()

// DigestOf returns the CredentialDigest of a credential.
func DigestOf(credential []byte) CredentialDigest {
	var d CredentialDigest
	binary.LittleEndian.PutUint64(d[:8], maphash.Bytes(seed0, credential))
	binary.LittleEndian.PutUint64(d[8:], maphash.Bytes(seed1, credential))
	return d
}

// DigestOfString is DigestOf for a string, without copying it.
func DigestOfString(credential string) CredentialDigest {
	var d CredentialDigest
	binary.LittleEndian.PutUint64(d[:8], maphash.String(seed0, credential))
	binary.LittleEndian.PutUint64(d[8:], maphash.String(seed1, credential))
	return d
}
