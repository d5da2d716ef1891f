package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

func testHits(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t0 := time.Date(2017, 8, 9, 12, 31, 2, 0, time.UTC)
	hour := t0.Unix() / 3600
	delta := func(key, api string, h int64, code int, hits int64) keylens.HitDelta {
		d := keylens.HitDelta{KeyHash: key, APIID: api, Hour: h, Code: code, Hits: hits, LastHit: h * 3600e9}
		switch {
		case code < 300:
			d.Success = hits
		case code >= 400:
			d.Errors = hits
		}
		return d
	}
	query := func(t *testing.T, s Store, q keylens.HitQuery) string {
		t.Helper()
		if q.From.IsZero() {
			q.From, q.To = t0.AddDate(0, 0, -40), t0.AddDate(0, 0, 40)
		}
		rows, err := s.QueryHits(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s c%d %d/%d/%d", r.Period.Format(time.DateTime), r.Code, r.Hits, r.Success, r.Errors))
		}
		return strings.Join(out, "; ")
	}

	t.Run("AddsUpAndFolds", func(t *testing.T) {
		s := newStore(t)
		if err := addBatch(ctx, s, "", []keylens.HitDelta{
			delta("k1", "a", hour, 200, 5), delta("k1", "a", hour, 500, 1), delta("k1", "b", hour+1, 200, 2),
			delta("k2", "a", hour, 200, 3), delta("k3", "a", hour, 200, 100), delta("k1", "a", hour+24*30, 404, 4),
		}); err != nil {
			t.Fatal(err)
		}
		if err := addBatch(ctx, s, "", []keylens.HitDelta{delta("k1", "a", hour, 200, 1)}); err != nil {
			t.Fatal(err)
		}
		keys := []string{"k1", "k2"}
		cases := []struct {
			name string
			q    keylens.HitQuery
			want string
		}{
			{"hour", keylens.HitQuery{Keys: keys, Res: keylens.ResHour},
				"2017-08-09 12:00:00 c200 10/9/1; 2017-08-09 13:00:00 c200 2/2/0; 2017-09-08 12:00:00 c404 4/0/4"},
			{"day", keylens.HitQuery{Keys: keys, Res: keylens.ResDay},
				"2017-08-09 00:00:00 c200 12/11/1; 2017-09-08 00:00:00 c404 4/0/4"},
			{"month", keylens.HitQuery{Keys: keys, Res: keylens.ResMonth},
				"2017-08-01 00:00:00 c200 12/11/1; 2017-09-01 00:00:00 c404 4/0/4"},
			{"by code", keylens.HitQuery{Keys: keys, Res: keylens.ResDay, ByCode: true},
				"2017-08-09 00:00:00 c200 11/11/0; 2017-08-09 00:00:00 c500 1/0/1; 2017-09-08 00:00:00 c404 4/0/4"},
			{"api filter", keylens.HitQuery{Keys: keys, Res: keylens.ResDay, APIIDs: []string{"b", "nope"}},
				"2017-08-09 00:00:00 c200 2/2/0"},
			{"one key", keylens.HitQuery{Keys: []string{"k2"}, Res: keylens.ResHour}, "2017-08-09 12:00:00 c200 3/3/0"},
			{"no such key", keylens.HitQuery{Keys: []string{"k9"}, Res: keylens.ResDay}, ""},
			{"to is exclusive", keylens.HitQuery{Keys: keys, Res: keylens.ResHour,
				From: t0.Truncate(time.Hour), To: t0.Truncate(time.Hour).Add(time.Hour)}, "2017-08-09 12:00:00 c200 10/9/1"},
		}
		for _, c := range cases {
			if got := query(t, s, c.q); got != c.want {
				t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
			}
		}
		rows, _ := s.QueryHits(ctx, keylens.HitQuery{Keys: keys, Res: keylens.ResDay, From: t0.AddDate(0, 0, -1), To: t0.AddDate(0, 0, 1)})
		if len(rows) != 1 || !rows[0].LastHit.Equal(time.Unix((hour+1)*3600, 0)) {
			t.Errorf("last hit: %+v", rows)
		}
	})

	t.Run("OneSeriesTwiceInABatch", func(t *testing.T) {
		s := newStore(t)
		d := delta("k1", "a", hour, 200, 3)
		if err := addBatch(ctx, s, "", []keylens.HitDelta{d, delta("k1", "a", hour+1, 200, 2), d}); err != nil {
			t.Fatal(err)
		}
		if got := query(t, s, keylens.HitQuery{Keys: []string{"k1"}, Res: keylens.ResHour}); got != "2017-08-09 12:00:00 c200 6/6/0; 2017-08-09 13:00:00 c200 2/2/0" {
			t.Errorf("hourly: %s", got)
		}
		if got := query(t, s, keylens.HitQuery{Keys: []string{"k1"}, Res: keylens.ResDay}); got != "2017-08-09 00:00:00 c200 8/8/0" {
			t.Errorf("daily: %s", got)
		}
	})

	t.Run("BatchAppliedOnce", func(t *testing.T) {
		s := newStore(t)
		d := []keylens.HitDelta{delta("k1", "a", hour, 200, 5)}
		for range 3 {
			if err := addBatch(ctx, s, "writer-1", d); err != nil {
				t.Fatal(err)
			}
		}
		if err := addBatch(ctx, s, "writer-2", d); err != nil {
			t.Fatal(err)
		}
		if got := query(t, s, keylens.HitQuery{Keys: []string{"k1"}, Res: keylens.ResDay}); got != "2017-08-09 00:00:00 c200 10/10/0" {
			t.Errorf("two batches sent five times: %s", got)
		}
	})

	t.Run("BatchesInOneCall", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.AddHits(ctx, []keylens.HitBatch{{ID: "seen", Series: []keylens.HitDelta{delta("k1", "a", hour, 200, 1)}}}); err != nil {
			t.Fatal(err)
		}
		applied, err := s.AddHits(ctx, []keylens.HitBatch{
			{ID: "new", Series: []keylens.HitDelta{delta("k1", "a", hour, 200, 10)}},
			{ID: "seen", Series: []keylens.HitDelta{delta("k1", "a", hour, 200, 100)}},
			{ID: "", Series: []keylens.HitDelta{delta("k1", "a", hour, 200, 1000)}},
			{ID: "new", Series: []keylens.HitDelta{delta("k1", "a", hour, 200, 10000)}},
			{ID: "other", Series: []keylens.HitDelta{delta("k2", "a", hour, 404, 3)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(applied) != "[true false true false true]" {
			t.Errorf("applied %v, want [true false true false true]", applied)
		}
		if got := query(t, s, keylens.HitQuery{Keys: []string{"k1", "k2"}, Res: keylens.ResDay, ByCode: true}); got != "2017-08-09 00:00:00 c200 1011/1011/0; 2017-08-09 00:00:00 c404 3/0/3" {
			t.Errorf("batches in one call: %s", got)
		}
	})

	t.Run("WideBatch", func(t *testing.T) {
		// More series than one statement holds, each twice.
		s := newStore(t)
		var b keylens.HitBatch
		for i := range 2345 {
			b.Series = append(b.Series, delta(fmt.Sprintf("key-%04d", i), "a", hour+int64(i%3), 200+i%2, 1))
		}
		b.Series = append(b.Series, b.Series...)
		if _, err := s.AddHits(ctx, []keylens.HitBatch{b}); err != nil {
			t.Fatal(err)
		}
		keys := []string{"key-0000", "key-1001", "key-2344"}
		if got := query(t, s, keylens.HitQuery{Keys: keys, Res: keylens.ResHour, ByCode: true}); got != "2017-08-09 12:00:00 c200 2/2/0; 2017-08-09 13:00:00 c200 2/2/0; 2017-08-09 14:00:00 c201 2/2/0" {
			t.Errorf("wide batch: %s", got)
		}
		var all []string
		for i := range 2345 {
			all = append(all, fmt.Sprintf("key-%04d", i))
		}
		if got := query(t, s, keylens.HitQuery{Keys: all, Res: keylens.ResMonth}); got != "2017-08-01 00:00:00 c200 4690/4690/0" {
			t.Errorf("wide batch, all keys: %s", got)
		}
	})

	t.Run("ConcurrentWritersAddUp", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					if err := addBatch(ctx, s, fmt.Sprintf("w%d-%d", w, i), []keylens.HitDelta{
						delta("k1", "a", hour, 200, 3), delta("k2", "a", hour, 200, 1)}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if got := query(t, s, keylens.HitQuery{Keys: []string{"k1", "k2"}, Res: keylens.ResDay}); got != "2017-08-09 00:00:00 c200 400/400/0" {
			t.Errorf("4 writers x 25 batches x 4 hits: %s", got)
		}
	})

	t.Run("RejectsBadQueries", func(t *testing.T) {
		s := newStore(t)
		// Hit batches are validated where they enter keylens
		// (keylens.ValidateHits), not by the store.
		for name, q := range map[string]keylens.HitQuery{
			"res":           {Keys: []string{"k"}, Res: "week", From: t0, To: t0},
			"from after to": {Keys: []string{"k"}, Res: keylens.ResDay, From: t0.Add(time.Hour), To: t0},
		} {
			if _, err := s.QueryHits(ctx, q); keylens.ErrorCode(err) != keylens.EINVALID {
				t.Errorf("query %s: %v, want EINVALID", name, err)
			}
		}
	})
}

// addBatch applies one batch of deltas under id.
func addBatch(ctx context.Context, s Store, id string, deltas []keylens.HitDelta) error {
	_, err := s.AddHits(ctx, []keylens.HitBatch{{ID: id, Series: deltas}})
	return err
}
