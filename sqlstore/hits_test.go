package sqlstore

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/hits"
)

// TestFoldHourlyAgreesWithFold: the sorted folds the store writes with sum
// exactly what the pipeline's Fold sums, hourly and daily, each row once.
func TestFoldHourlyAgreesWithFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var in []keylens.HitDelta
	for range 5000 {
		d := keylens.HitDelta{KeyHash: fmt.Sprint("k", rng.IntN(30)), APIID: fmt.Sprint("a", rng.IntN(4)),
			Hour: 480000 + int64(rng.IntN(72)), Code: 200 + 100*rng.IntN(4), Hits: int64(1 + rng.IntN(5)), LastHit: rng.Int64N(1e18)}
		d.Success = d.Hits / 2
		in = append(in, d)
	}
	for _, c := range []struct {
		name string
		per  int64
		got  func() []keylens.HitDelta
	}{
		{"hourly", 1, func() []keylens.HitDelta { return foldHourly(in) }},
		{"daily", 24, func() []keylens.HitDelta { return rollupDaily(foldHourly(in)) }},
	} {
		want := map[string]keylens.HitDelta{}
		for _, d := range hits.Fold(nil, in, c.per) {
			want[fmt.Sprint(d.KeyHash, d.Hour, d.APIID, d.Code)] = d
		}
		got := c.got()
		if len(got) != len(want) {
			t.Errorf("%s: %d rows, want %d", c.name, len(got), len(want))
		}
		for i, d := range got {
			if w := want[fmt.Sprint(d.KeyHash, d.Hour, d.APIID, d.Code)]; w != d {
				t.Errorf("%s row %d: %+v, want %+v", c.name, i, d, w)
				break
			}
			if i > 0 && cmp.Or(strings.Compare(got[i-1].KeyHash, d.KeyHash), cmp.Compare(got[i-1].Hour, d.Hour),
				strings.Compare(got[i-1].APIID, d.APIID), cmp.Compare(got[i-1].Code, d.Code)) >= 0 {
				t.Errorf("%s: rows %d and %d out of order", c.name, i-1, i)
				break
			}
		}
	}
}
