package sidecar

import (
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/hits"
)

// TestParseHitsChecksSums: elements fine alone whose series sum past what a
// series may add are refused at the edge, as a batch the store would not
// take: nothing behind parseHits checks again.
func TestParseHitsChecksSums(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	one := `{"key":"add2b342","api_id":"a","code":200,"latency_ms":1000000,"count":1000000000}`
	if _, err := parseHits([]byte("["+one+"]"), now); err != nil {
		t.Fatalf("one element: %v", err)
	}
	if b, err := parseHits([]byte("["+one+","+one+"]"), now); err == nil {
		t.Fatalf("two elements summing past the latency bound were accepted: %+v", b.Series)
	}
}

// FuzzParseHits: whatever a POST /hits body holds, parsing never panics,
// and what it accepts is fit to record: key hashes only, real status
// codes, sane times and counts.
func FuzzParseHits(f *testing.F) {
	for _, s := range []string{
		`[{"key":"add2b342","api_id":"a","code":200}]`,
		`[{"key":"eyJvcmciOiJvIiwiaWQiOiJpIiwiaCI6Im11cm11cjY0In0=","code":404,"time":"2017-08-09T12:31:02Z","latency_ms":1.5,"count":3}]`,
		`[]`, `[{}]`, `{"key":"k"}`, `[{"key":"k","code":200}] x`, `[{"key":"k","code":1e3}]`, "\x00", `[{"key":"k","code":200,"time":null}]`,
	} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body string) {
		b, err := parseHits([]byte(body), now)
		if err != nil {
			return
		}
		if err := b.Validate(); err != nil && len(b.Series) > 0 { // an empty body is answered without the store
			t.Fatalf("accepted %q, which the store would refuse: %v", body, err)
		}
		for _, s := range b.Series {
			if !keylens.IsKeyHash(s.KeyHash) || s.Hour > hits.HourOf(now.Add(hits.Skew).UnixNano()) {
				t.Fatalf("accepted %+v from %q", s, body)
			}
		}
	})
}
