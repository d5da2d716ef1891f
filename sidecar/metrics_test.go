package sidecar

import (
	"testing"
	"time"
)

// TestBucketOf checks the bit-length bucket search against the plain
// linear one, at every bound, one either side, and at powers of two.
func TestBucketOf(t *testing.T) {
	linear := func(d time.Duration) int {
		b := 0
		for b < len(durationBounds) && d > durationBounds[b] {
			b++
		}
		return b
	}
	var ds []time.Duration
	for _, b := range durationBounds {
		ds = append(ds, b-1, b, b+1)
	}
	for n := range 63 {
		ds = append(ds, 1<<n-1, 1<<n, 1<<n+1)
	}
	ds = append(ds, -5, 0, 1, 1<<63-1)
	for _, d := range ds {
		if got, want := bucketOf(d), linear(max(d, 0)); got != want {
			t.Errorf("bucketOf(%d) = %d, want %d", d, got, want)
		}
	}
}
