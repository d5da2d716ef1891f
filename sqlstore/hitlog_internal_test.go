package sqlstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/keylens/keylens"
)

// randomSeries returns n series with every member set, some negative or
// at the extremes of int64, so that a round trip checks each bit.
func randomSeries(rng *rand.Rand, n int) []keylens.HitDelta {
	out := make([]keylens.HitDelta, n)
	edge := []int64{0, 1, -1, 1 << 62, -1 << 63, 1<<63 - 1}
	v := func() int64 {
		if rng.IntN(4) == 0 {
			return edge[rng.IntN(len(edge))]
		}
		return rng.Int64N(1<<uint(rng.IntN(62)+1)) - rng.Int64N(2)
	}
	for i := range out {
		out[i] = keylens.HitDelta{KeyHash: fmt.Sprintf("%016x", rng.Uint64())[:rng.IntN(16)+1], APIID: fmt.Sprint("api", rng.IntN(3))[:rng.IntN(4)+1],
			Hour: v(), Code: int(v()), Hits: v(), Success: v(), Errors: v(), LastHit: v(), LatencyUS: v(), LatencyCount: v()}
	}
	return out
}

// TestHitLogRoundTrip: what appendHitLog writes, scanHitLog reads back
// whole, from a string or from bytes, and a key filter keeps exactly its
// key's records.
func TestHitLogRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	in := randomSeries(rng, 2000)
	in = append(in, keylens.HitDelta{}) // empty key and API
	data := appendHitLog([]byte{hitLogVersion}, in)
	var fromString, fromBytes []keylens.HitDelta
	if err := scanHitLog(string(data), nil, func(key, api string, d *keylens.HitDelta) {
		d.KeyHash, d.APIID = key, api
		fromString = append(fromString, *d)
	}); err != nil {
		t.Fatal(err)
	}
	if err := scanHitLog(data, nil, func(key, api []byte, d *keylens.HitDelta) {
		d.KeyHash, d.APIID = string(key), string(api)
		fromBytes = append(fromBytes, *d)
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromString, in) || !slices.Equal(fromBytes, in) {
		t.Fatalf("round trip differs: %d and %d series back of %d", len(fromString), len(fromBytes), len(in))
	}
	want := in[7].KeyHash
	var kept int
	scanHitLog(data, func(key []byte) bool { return string(key) == want }, func(key, _ []byte, _ *keylens.HitDelta) {
		if string(key) != want {
			t.Errorf("filter kept %q", key)
		}
		kept++
	})
	if n := len(slices.DeleteFunc(slices.Clone(in), func(d keylens.HitDelta) bool { return d.KeyHash != want })); kept != n {
		t.Errorf("filter kept %d records of %q, want %d", kept, want, n)
	}
}

// FuzzScanHitLog: a hit_log row damaged in any way is an error, never a
// panic or a read past its end; and valid rows read back what was written.
func FuzzScanHitLog(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	f.Add(appendHitLog([]byte{hitLogVersion}, randomSeries(rng, 3)))
	f.Add([]byte{hitLogVersion, 0x80})
	f.Add([]byte{hitLogVersion, 1, 'k', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []keylens.HitDelta
		err := scanHitLog(data, nil, func(key, api []byte, d *keylens.HitDelta) {
			d.KeyHash, d.APIID = string(key), string(api)
			got = append(got, *d)
		})
		if err != nil {
			return
		}
		// What was read encodes back to the same bytes when the row
		// used minimal varints (as appendHitLog writes).
		if again := appendHitLog([]byte{hitLogVersion}, got); len(again) == len(data) && string(again) != string(data) {
			t.Errorf("re-encoding %x gives %x", data, again)
		}
	})
}
