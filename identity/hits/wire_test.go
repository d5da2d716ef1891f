package hits

import (
	"fmt"
	"testing"
	"time"
)

// encodedBody returns the first body Encode writes for n series shaped as
// a busy gateway's: 16-character key hashes on ten APIs, three status
// codes, nanosecond times within the last hour, most series timed. The
// second result is the number of elements it holds (a body stops at
// MaxBody bytes).
func encodedBody(tb testing.TB, n int) ([]byte, int) {
	series := make([]Series, n)
	for i := range series {
		s := &series[i]
		code := []int{200, 200, 200, 404, 500}[i%5]
		at := now.Add(-time.Duration(i) * 357_913_941 % time.Hour).UnixNano()
		*s = Of(fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15), fmt.Sprint("api-payments-", i%10), at, code, int64(1+i%3), -1)
		if i%4 != 0 {
			*s = Of(s.KeyHash, s.APIID, at, code, s.Hits, time.Duration(i%997)*time.Millisecond/7)
		}
	}
	var body []byte
	var elements int
	err := Encode(series, func(b []byte, _ int64) error {
		if body == nil {
			body = append([]byte(nil), b...)
			for _, c := range b {
				if c == '{' {
					elements++
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return body, elements
}

// minimalBody is n elements of key, api_id, code and count only: a
// 10,000-element body of about 570 kB, the shape of the HTTP flood tests.
func minimalBody(n int) []byte {
	body := []byte{'['}
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"key":"%016x","api_id":"api-%d","code":200,"count":1}`, uint64(i)*0x9e3779b97f4a7c15, i%10)
	}
	return append(body, ']')
}

// BenchmarkParse: Parse of one full body as Encode writes it (the plugin's
// Batcher: every member, nanosecond times, so MaxBody holds about 8,000
// elements), and of 10,000 minimal elements; reported per element too.
//
//	cd identity && go test -run=NONE -bench=Parse -count 5 ./hits/
func BenchmarkParse(b *testing.B) {
	encoded, n := encodedBody(b, MaxPerRequest)
	for _, bc := range []struct {
		name     string
		body     []byte
		elements int
	}{{"encoded", encoded, n}, {"minimal", minimalBody(MaxPerRequest), MaxPerRequest}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for range b.N {
				if in, err := Parse(bc.body, now); err != nil || len(in) != bc.elements {
					b.Fatalf("%d hits, %v", len(in), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bc.elements), "ns/element")
		})
	}
}
