package hits

import (
	"fmt"
	"math"
	"reflect"
	"strings"
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

// diffHits describes how got differs from want, "" if in nothing: the same
// members, pointers nil in both or to equal values (times deeply equal,
// latencies to the bit, so -0 is not 0).
func diffHits(got, want []Hit) string {
	if (got == nil) != (want == nil) || len(got) != len(want) {
		return fmt.Sprintf("%d hits (nil %t), want %d (nil %t)", len(got), got == nil, len(want), want == nil)
	}
	for i := range want {
		g, w := &got[i], &want[i]
		switch {
		case g.Key != w.Key || g.APIID != w.APIID || g.Code != w.Code:
		case (g.Time == nil) != (w.Time == nil) || g.Time != nil && !reflect.DeepEqual(*g.Time, *w.Time):
		case (g.Count == nil) != (w.Count == nil) || g.Count != nil && *g.Count != *w.Count:
		case (g.LatencyMS == nil) != (w.LatencyMS == nil) ||
			g.LatencyMS != nil && math.Float64bits(*g.LatencyMS) != math.Float64bits(*w.LatencyMS):
		default:
			continue
		}
		return fmt.Sprintf("hit %d: %s, want %s", i, showHit(g), showHit(w))
	}
	return ""
}

func showHit(h *Hit) string {
	s := fmt.Sprintf("{Key:%q APIID:%q Code:%d", h.Key, h.APIID, h.Code)
	if h.Time != nil {
		s += fmt.Sprintf(" Time:%v (%#v)", *h.Time, *h.Time)
	}
	if h.Count != nil {
		s += fmt.Sprintf(" Count:%d", *h.Count)
	}
	if h.LatencyMS != nil {
		s += fmt.Sprintf(" LatencyMS:%v (%#x)", *h.LatencyMS, math.Float64bits(*h.LatencyMS))
	}
	return s + "}"
}

// decodeSeeds are bodies for FuzzDecode to start from: what Encode writes,
// and the edges of what decodeFast reads and what it leaves to
// encoding/json.
func decodeSeeds(tb testing.TB) []string {
	body, _ := encodedBody(tb, 5)
	seeds := []string{string(body)}
	for _, member := range []string{
		// The shape, spaced out, in another order, with nulls.
		"\n\t\"key\" : \"k\" ,\r \"code\":\n200 ",
		`"count":3,"latency_ms":1.5,"time":"2026-11-23T12:00:00Z","code":200,"api_id":"a","key":"k"`,
		`"key":null,"api_id":null,"code":null,"time":null,"count":null,"latency_ms":null`,
		`"key":"k","code":200,"count":null,"time":null,"latency_ms":null`,
		// Duplicates: the last wins, null leaves a string or code as it was.
		`"key":"k","code":200,"code":404,"key":"j"`,
		`"key":"k","key":null,"code":200,"code":null`,
		`"key":"k","code":200,"time":"2026-11-23T12:00:00Z","time":null,"count":2,"count":null,"count":3`,
		`"key":"k","code":200,"latency_ms":1,"latency_ms":null`, `"key":"k","code":200,"count":2,"count":null`,
		// Members of other names, skipped, nested.
		`"key":"k","code":200,"x":{"a":[1,-2.5e3,{"b":null,"c":[true,false]}],"d":"e"},"y":[[[[]]]],"z":{}`,
		`"key":"k","code":200,"x":"\u0041\n"`,
		`"key":"k","code":200,"keys":1,"api":2,"codes":3,"Times":4`,
		// Escapes and case variants of names: encoding/json's.
		`"k\u0065y":"k","code":200`, `"key":"k\u0041","code":200`, `"key":"k\"\\\/\b\f\n\r\t","code":200`,
		`"KEY":"k","Code":200`, `"key":"k","API_ID":"a","code":200,"COUNT":2,"Latency_MS":1,"TIME":null`,
		"\"\u212aey\":\"k\",\"code\":200", "\"api_\u017fd\":\"a\",\"key\":\"k\",\"code\":200", // Kelvin sign, long s
		// Strings: non-ASCII, invalid UTF-8, control characters.
		"\"key\":\"kä€😀\",\"api_id\":\"ä\",\"code\":200", "\"key\":\"k\xff\",\"code\":200", "\"key\":\"k\xed\xa0\x80\",\"code\":200",
		"\"key\":\"k\x01\",\"code\":200", "\"key\":\"k\",\"code\":200,\"x\":\"\xff\"",
		// Numbers: exponents, fractions, negative zero, huge, leading zeros.
		`"key":"k","code":2e2`, `"key":"k","code":200.0`, `"key":"k","code":-0`, `"key":"k","code":0200`,
		`"key":"k","code":200,"count":-0`, `"key":"k","code":200,"count":1e3`, `"key":"k","code":200,"count":999999999999999999`,
		`"key":"k","code":200,"count":9223372036854775807`, `"key":"k","code":200,"count":-9223372036854775808`,
		`"key":"k","code":200,"count":99999999999999999999`, `"key":"k","code":200,"count":9999999999999999999`,
		`"key":"k","code":123456789012345678`,
		`"key":"k","code":200,"latency_ms":-0`, `"key":"k","code":200,"latency_ms":-0.0e5`, `"key":"k","code":200,"latency_ms":1E2`,
		`"key":"k","code":200,"latency_ms":1.5e-3`, `"key":"k","code":200,"latency_ms":1e400`, `"key":"k","code":200,"latency_ms":1e-400`,
		`"key":"k","code":200,"latency_ms":0.1428571428571428571`, `"key":"k","code":200,"latency_ms":01.5`,
		`"key":"k","code":200,"latency_ms":123456789012.345`, `"key":"k","code":200,"latency_ms":0.000000000000001`,
		`"key":"k","code":200,"latency_ms":7432.1254458831843`, // its nearest float64 is not float64(74321254458831843) / 1e13
		`"key":"k","code":200,"latency_ms":.5`, `"key":"k","code":200,"latency_ms":1.`, `"key":"k","code":200,"latency_ms":-`,
		// Times: what Encode writes and what only time.Time reads, or refuses.
		`"key":"k","code":200,"time":"2026-11-23T12:00:00.123456789Z"`, `"key":"k","code":200,"time":"2026-11-23T12:00:00.1Z"`,
		`"key":"k","code":200,"time":"2026-11-23T12:00:00.1234567891234Z"`, `"key":"k","code":200,"time":"2026-11-23T12:00:00.1234567891Z"`,
		`"key":"k","code":200,"time":"2026-11-2:T12:00:00Z"`, `"key":"k","code":200,"time":"2026-11-23T12:00:1:Z"`, `"key":"k","code":200,"time":"2026-11-23T13:00:00+01:00"`,
		`"key":"k","code":200,"time":"2026-11-23T12:00:00-00:00"`, `"key":"k","code":200,"time":"2026-11-23t12:00:00z"`,
		`"key":"k","code":200,"time":"2024-02-29T00:00:00Z"`, `"key":"k","code":200,"time":"2026-02-29T00:00:00Z"`,
		`"key":"k","code":200,"time":"2026-04-31T00:00:00Z"`, `"key":"k","code":200,"time":"2026-11-23T24:00:00Z"`,
		`"key":"k","code":200,"time":"2026-11-23T12:00:60Z"`, `"key":"k","code":200,"time":"2026-11-23T12:00:00.Z"`,
		`"key":"k","code":200,"time":"2026-11-23T12:00:00,5Z"`, `"key":"k","code":200,"time":"2026-11-23 12:00:00Z"`,
		`"key":"k","code":200,"time":"2026-11-23T2:00:00Z"`, `"key":"k","code":200,"time":"+026-11-23T12:00:00Z"`,
		`"key":"k","code":200,"time":"2026-11-23T12:00:00\u005a"`, `"key":"k","code":200,"time":"1970-01-01T00:00:00Z"`,
		`"key":"k","code":200,"time":1`, `"key":"k","code":200,"time":{}`, `"key":"k","code":200,"time":"null"`,
		// Values of the wrong type.
		`"key":1,"code":200`, `"key":"k","code":"200"`, `"key":"k","code":true`, `"key":["k"],"code":200`,
		`"key":"k","code":200,"count":"1"`, `"key":"k","code":200,"latency_ms":"1"`, `"key":{},"code":200`,
	} {
		seeds = append(seeds, "[{"+member+"}]")
	}
	return append(seeds,
		``, `[]`, `[ ]`, `[{}]`, `[null]`, `[1]`, `["k"]`, `[[]]`, `{}`, `[{"key":"k","code":200},{"key":"j","code":404}]`,
		// Times of one minute and of others.
		`[{"key":"k","code":200,"time":"2026-11-23T12:00:01Z"},{"key":"k","code":200,"time":"2026-11-23T12:00:02.5Z"},`+
			`{"key":"k","code":200,"time":"2026-11-23T12:01:02Z"},{"key":"k","code":200,"time":"2026-11-22T12:01:02Z"},`+
			`{"key":"k","code":200,"time":"2026-11-22T12:01:62Z"},{"key":"k","code":200,"time":"2026-11-22T12:01:02"}]`,
		// api_ids alike in length and last byte, which share a slot of
		// the decoder's api_ids.
		`[{"key":"k","api_id":"ab","code":200},{"key":"k","api_id":"cb","code":200},{"key":"k","api_id":"ab","code":200}]`,
		// Whitespace around the array and data after it.
		` [{"key":"k","code":200}] `, "\xef\xbb\xbf[]", `[] x`, `[]]`, `[]}`, `[],[]`, `[][]`, `[{"key":"k","code":200}]]`,
		// Bad syntax.
		`[`, `[{`, `[{"key"`, `[{"key":"k"`, `[{"key":"k" "code":200}]`, `[{"key":"k",}]`, `[{"key":"k","code":200},]`,
		`[{"key":"k","code":200}`, `[{"key":"k","code":200]`, `[{"key":"k","code":nul}]`, `[{"key":"k","code":200,"x":tru}]`,
		`[{"key":"k","code":200,"x":[1,]}]`, `[{"key":"k","code":200,"x":{"a"}}]`, `[{"key":"k","code":200,"x":{"a":1,}}]`,
		`[{"key":"k","code":200,"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}]`,
		`[{"key":"k","code":200,"x":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}]`,
		"[{\"key\":\"k\",\"code\":200}\x00]",
	)
}

// FuzzDecode: the fast decoder agrees with encoding/json on every body
// it reads (encoding/json takes it, to the same hits), and Parse with it
// agrees with Parse through encoding/json alone on every body: the same
// hits, or the same error.
//
//	cd identity && go test -run=NONE -fuzz=FuzzDecode -fuzztime=1m ./hits/
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if fast, ok := decodeFast(body); ok {
			want, err := decodeJSON(body)
			if err != nil {
				t.Fatalf("decodeFast read %q, which encoding/json refuses: %v", body, err)
			}
			if d := diffHits(fast, want); d != "" {
				t.Fatalf("decodeFast read %q to %s", body, d)
			}
		}
		got, err := Parse(body, now)
		want, wantErr := parse(body, now, decodeJSON)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("Parse(%q): %v, through encoding/json %v", body, err, wantErr)
		}
		if d := diffHits(got, want); d != "" {
			t.Fatalf("Parse(%q): %s", body, d)
		}
	})
}

// TestDecodeFastReads: what writers send is read by decodeFast, not left
// to encoding/json: bodies as Encode writes them, and the variations a
// writer of its own might make.
func TestDecodeFastReads(t *testing.T) {
	encoded, _ := encodedBody(t, MaxPerRequest)
	for _, body := range []string{
		string(encoded),
		string(minimalBody(100)),
		`[]`,
		`[ { "key" : "k" , "api_id" : "a" , "code" : 200 } ,` + "\n\t" + `{"key":"j","code":404} ]`,
		`[{"latency_ms":0.5,"count":2,"time":"2026-11-23T12:00:00.5+01:00","code":500,"api_id":"ä","key":"k"}]`,
		`[{"key":"k","code":200,"time":null,"count":null,"latency_ms":null,"gateway":{"id":"g1","tags":["a",1,true,null]}}]`,
	} {
		got, ok := decodeFast([]byte(body))
		if !ok {
			t.Errorf("decodeFast left %.80q to encoding/json", body)
			continue
		}
		want, err := decodeJSON([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if d := diffHits(got, want); d != "" {
			t.Errorf("%.80q: %s", body, d)
		}
	}
}

// TestParseCopiesStrings: the hits Parse returns hold no part of the body,
// which the server reuses for the next request.
func TestParseCopiesStrings(t *testing.T) {
	body, _ := encodedBody(t, 100)
	in, err := Parse(body, now)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Parse(append([]byte(nil), body...), now)
	for i := range body {
		body[i] = 'x'
	}
	if d := diffHits(in, want); d != "" {
		t.Errorf("after the body was overwritten: %s", d)
	}
}
