package sqlstore

import "math/bits"

// A log row's key filter (hit_log.keys): a Bloom filter of the keys its
// series name, so that a query reads the rows that may hold its keys and
// leaves the others unread. With ten bits and seven probes a series, a
// row without the key is read about once in a hundred; a row with it is
// always read. The filter is stored, so its hash (FNV-1a, mixed) and
// layout never change within a version:
//
//	version byte (keyFilterVersion) | bits, bit i in byte i/8
//
// A row without a filter, or with one of a version this code does not
// know, is read.
const (
	keyFilterVersion = 1
	keyFilterBits    = 10 // a series
	keyFilterProbes  = 7
)

// newKeyFilter returns an empty filter sized for n series.
func newKeyFilter(n int) []byte {
	f := make([]byte, 1+max(8, (n*keyFilterBits+7)/8))
	f[0] = keyFilterVersion
	return f
}

// keyProbes is where a key's probes start and how they step (double
// hashing).
type keyProbes struct{ start, step uint64 }

// probesOf hashes key.
func probesOf(key string) keyProbes {
	x := uint64(14695981039346656037) // FNV-1a
	for i := range len(key) {
		x ^= uint64(key[i])
		x *= 1099511628211
	}
	// FNV's high bits mix poorly: a finalizer (splitmix64's) spreads them.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return keyProbes{start: x, step: bits.RotateLeft64(x, 32) | 1}
}

// addKey sets key's bits in filter f.
func addKey(f []byte, key string) {
	m := uint64(len(f)-1) * 8
	p := probesOf(key)
	for range keyFilterProbes {
		i := p.start % m
		f[1+i/8] |= 1 << (i % 8)
		p.start += p.step
	}
}

// in reports whether the row of filter f may hold series of the key of
// p: false only when it certainly holds none.
func (p keyProbes) in(f []byte) bool {
	if len(f) < 2 || f[0] != keyFilterVersion {
		return true
	}
	m := uint64(len(f)-1) * 8
	for range keyFilterProbes {
		i := p.start % m
		if f[1+i/8]&(1<<(i%8)) == 0 {
			return false
		}
		p.start += p.step
	}
	return true
}
