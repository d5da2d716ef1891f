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
// whole, and a key filter keeps exactly its
// key's records.
func TestHitLogRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	in := randomSeries(rng, 2000)
	in = append(in, keylens.HitDelta{}) // empty key and API
	data := appendHitLog([]byte{hitLogVersion}, in)
	var fromBytes []keylens.HitDelta
	if err := scanHitLog(data, nil, func(key, api []byte, d *keylens.HitDelta) {
		d.KeyHash, d.APIID = string(key), string(api)
		fromBytes = append(fromBytes, *d)
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromBytes, in) {
		t.Fatalf("round trip differs: %d series back of %d", len(fromBytes), len(in))
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

// TestLogFoldFoldsAsItGoes: a compaction's fold, summing each series as
// it reads it, sums what one fold of everything sums, holds the distinct
// series rather than all those logged, and stops taking rows at its limits.
func TestLogFoldFoldsAsItGoes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	f := &logFold{limits: compactLimits{logSeries: 1 << 30, distinct: 400}}
	var all []keylens.HitDelta
	for seq := int64(1); seq <= 40; seq++ {
		var row []keylens.HitDelta
		for range 50 {
			d := keylens.HitDelta{KeyHash: fmt.Sprint("k", rng.IntN(20)), APIID: fmt.Sprint("a", rng.IntN(2)), Hour: 480000 + int64(rng.IntN(3)),
				Code: 200, Hits: 1 + rng.Int64N(3), LastHit: rng.Int64N(1e18)}
			row = append(row, d)
		}
		all = append(all, row...)
		f.add(seq, appendHitLog([]byte{hitLogVersion}, row))
		if len(f.rows) > 120 { // 120 distinct at most: 20 keys, 2 APIs, 3 hours
			t.Fatalf("after row %d the fold holds %d series", seq, len(f.rows))
		}
	}
	if !slices.Equal(f.hourly(), foldHourly(all)) || f.series != len(all) || f.last != 40 || len(f.seqs) != 40 {
		t.Errorf("the fold took %d series, through %d, and sums differently from one fold", f.series, f.last)
	}
	if f.full() {
		t.Error("full with 120 distinct series of a limit of 400")
	}
	f.limits.distinct = len(f.rows)
	if !f.full() {
		t.Error("not full at its limit of distinct series")
	}
	f.limits.distinct, f.limits.logSeries = 400, len(all)
	if !f.full() {
		t.Error("not full at its limit of logged series")
	}
}

// TestKeyFilter: a filter holds every key added to it, refuses about one
// in a hundred of the others, and one it cannot read refuses nothing.
func TestKeyFilter(t *testing.T) {
	const n = 10000
	f := newKeyFilter(n)
	for i := range n {
		addKey(f, fmt.Sprintf("%08x", i))
	}
	for i := range n {
		if !probesOf(fmt.Sprintf("%08x", i)).in(f) {
			t.Fatalf("key %08x added and refused", i)
		}
	}
	wrong := 0
	for i := range 10 * n {
		if probesOf(fmt.Sprintf("x%07x", i)).in(f) {
			wrong++
		}
	}
	if rate := float64(wrong) / (10 * n); rate > 0.02 {
		t.Errorf("%.2f%% of keys never added may be held; want about 1%%", 100*rate)
	}
	for _, bad := range [][]byte{nil, {}, {keyFilterVersion}, {keyFilterVersion + 1, 0, 0}} {
		if !probesOf("k").in(bad) {
			t.Errorf("filter %v refuses a key", bad)
		}
	}
}
