package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// countingUsernames answers every Basic username as unknown, counting the
// lookups.
type countingUsernames struct{ n int }

func (c *countingUsernames) ResolveKey(context.Context, string) (*keylens.Credential, error) {
	return nil, keylens.Errorf(keylens.ENOTFOUND, "no key")
}
func (c *countingUsernames) ResolveBasicUser(context.Context, string) (*keylens.Credential, error) {
	c.n++
	return nil, keylens.Errorf(keylens.ENOTFOUND, "no key")
}
func (c *countingUsernames) ResolveToken(context.Context, string) (*keylens.Credential, error) {
	return nil, keylens.Errorf(keylens.ENOTFOUND, "no token")
}

// TestParseHitsBoundsUsernameLookups: a body naming more distinct
// possible Basic usernames than maxUsernameLookups is refused after that
// many lookups; key hashes and gateway-shaped keys need none and do not
// count.
func TestParseHitsBoundsUsernameLookups(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := func(n int, key func(i int) string) []byte {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"key":%q,"api_id":"api","timestamp":%d,"code":200}`, key(i), now.Unix())
		}
		b.WriteString("]")
		return []byte(b.String())
	}
	users := &countingUsernames{}
	if _, err := parseHitsOf(context.Background(), body(maxUsernameLookups, func(i int) string { return fmt.Sprint("user-", i) }), now, users, nil); err != nil {
		t.Fatalf("%d usernames: %v", maxUsernameLookups, err)
	}
	users.n = 0
	_, err := parseHitsOf(context.Background(), body(maxUsernameLookups+1, func(i int) string { return fmt.Sprint("user-", i) }), now, users, nil)
	var lookup lookupError
	if err == nil || errors.As(err, &lookup) {
		t.Errorf("%d usernames: %v, want a refusal of the body", maxUsernameLookups+1, err)
	}
	if users.n > maxUsernameLookups {
		t.Errorf("%d lookups, want at most %d", users.n, maxUsernameLookups)
	}
	users.n = 0
	if _, err := parseHitsOf(context.Background(), body(3*maxUsernameLookups, func(i int) string { return keylens.HashKey(fmt.Sprint("k", i)) }), now, users, nil); err != nil || users.n != 0 {
		t.Errorf("key hashes: %v, %d lookups", err, users.n)
	}
}

// BenchmarkParseHits: parseHits of a 10,000-element body of key hashes
// (570 kB): the hits package's Parse, then the series built, folded and
// checked.
//
//	go test -run=NONE -bench=ParseHits -count 5 ./sidecar/
func BenchmarkParseHits(b *testing.B) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var body strings.Builder
	body.WriteByte('[')
	for i := range hits.MaxPerRequest {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"key":"%016x","api_id":"api-%d","code":200,"count":1}`, uint64(i)*0x9e3779b97f4a7c15, i%10)
	}
	body.WriteByte(']')
	in := []byte(body.String())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if batch, err := parseHits(in, now); err != nil || len(batch.Series) != hits.MaxPerRequest {
			b.Fatalf("%d series, %v", len(batch.Series), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/hits.MaxPerRequest, "ns/element")
}
