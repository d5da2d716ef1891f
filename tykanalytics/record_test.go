package tykanalytics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/hits"
	"github.com/keylens/keylens/tykanalytics/tyktest"
)

func fixtures(t testing.TB) []string {
	var out []string
	for _, f := range tyktest.Fixtures(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// fixtureTime is when the fixtures were recorded: 2026-12-01 11:11:26 UTC.
var fixtureTime = time.Date(2026, 12, 1, 11, 11, 26, 0, time.UTC)

// TestFixturesCountToTheirTotals: the sixteen real records count to the
// totals their README gives, key by key, API by API, status by status;
// requests with no session (APIKey 00000000) count per API only.
func TestFixturesCountToTheirTotals(t *testing.T) {
	recs := fixtures(t)
	if len(recs) != 16 {
		t.Fatalf("%d fixtures, want 16", len(recs))
	}
	var tally Tally
	NewDecoder().Count(recs, fixtureTime.Add(time.Hour), &tally)
	if len(tally.Rejected) != 0 {
		t.Fatalf("rejected: %+v", tally.Rejected)
	}
	type k struct {
		key, api string
		code     int
	}
	got := map[k]int64{}
	hour := fixtureTime.Unix() / 3600
	var hitsTotal, success, errs int64
	for _, s := range tally.Series {
		if s.Hour != hour {
			t.Errorf("series %+v: hour %d, want %d (2026-12-01T11Z)", s, s.Hour, hour)
		}
		if err := s.Validate(); err != nil {
			t.Error(err)
		}
		got[k{s.KeyHash, s.APIID, s.Code}] += s.Hits
		hitsTotal, success, errs = hitsTotal+s.Hits, success+s.Success, errs+s.Errors
	}
	want := map[k]int64{
		{"dd072c63751ba72b", "api-tokauth", 200}: 5,
		{"dd072c63751ba72b", "api-tokauth", 500}: 2,
		{"1d34cbfe7110d532", "api-tokauth", 200}: 3,
		{"1d34cbfe7110d532", "api-tokauth", 404}: 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("per key:\n got %v\nwant %v", got, want)
	}
	if hitsTotal != 11 || success != 8 || errs != 3 || tally.Counted != 11 {
		t.Errorf("key hits %d (success %d, errors %d, counted %d), want 11 (8, 3)", hitsTotal, success, errs, tally.Counted)
	}
	wantNoSession := map[APICode]int64{{"api-tokauth", 401}: 1, {"api-tokauth", 403}: 2, {"api-keyless", 200}: 2}
	if fmt.Sprint(tally.NoSession) != fmt.Sprint(wantNoSession) {
		t.Errorf("no session: %v, want %v", tally.NoSession, wantNoSession)
	}
	// Key A's latencies (RequestTime): 3+1+1+1+0 for its 200s, 1+1 for its 500s.
	for _, s := range tally.Series {
		if s.KeyHash == "dd072c63751ba72b" && s.Code == 200 && (s.LatencyUS != 6000 || s.LatencyCount != 5) {
			t.Errorf("key A's 200s: latency %d µs over %d hits, want 6000 over 5", s.LatencyUS, s.LatencyCount)
		}
	}
	if time.Unix(0, tally.Oldest).UTC().Format(time.RFC3339Nano) != "2026-12-01T11:11:26.031639994Z" ||
		time.Unix(0, tally.Newest).UTC().Format(time.RFC3339Nano) != "2026-12-01T11:11:26.449876314Z" {
		t.Errorf("oldest %v, newest %v", time.Unix(0, tally.Oldest).UTC(), time.Unix(0, tally.Newest).UTC())
	}
}

// TestFixtureFieldsDecoded: every member keylens reads, from one real record.
func TestFixtureFieldsDecoded(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tyktest.FixtureDir(t), "record-006.msgpack"))
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := NewDecoder().Decode(string(b), &rec); err != nil {
		t.Fatal(err)
	}
	want := Record{APIKey: "1d34cbfe7110d532", APIID: "api-tokauth", ResponseCode: 404, RequestTime: 1,
		TimeStamp: time.Unix(1796123486, 449876314)}
	if rec.APIKey != want.APIKey || rec.APIID != want.APIID || rec.ResponseCode != 404 || rec.RequestTime != 1 || !rec.TimeStamp.Equal(want.TimeStamp) {
		t.Errorf("decoded %+v, want %+v", rec, want)
	}
}

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func built(r tyktest.Request) string {
	if r.At.IsZero() {
		r.At = now.Add(-time.Minute)
	}
	if r.APIID == "" {
		r.APIID = "api-payments"
	}
	return string(tyktest.Encode(tyktest.NewRecord(r)))
}

// encodeMap encodes members in the order given, as a msgpack map.
func encodeMap(t testing.TB, compact bool, kv ...any) string {
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	enc.UseCompactInts(compact)
	if err := enc.EncodeMapLen(len(kv) / 2); err != nil {
		t.Fatal(err)
	}
	for _, v := range kv {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestCountBuiltRecords: records built to the format docs/tyk-facts.md
// describes ("Analytics records") count as the hit pipeline counts a hit,
// whatever the integers' width, the members' order, or members keylens
// does not know.
func TestCountBuiltRecords(t *testing.T) {
	at := now.Add(-30 * time.Minute)
	rawKey := "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0="
	ts := tyktest.Time{Time: at}
	for _, tc := range []struct {
		name    string
		record  string
		key     string // "" for no session
		code    int
		latency int64 // µs, -1 for none
	}{
		{"hashed key", built(tyktest.Request{APIKey: "dd072c63751ba72b", Code: 200, At: at, Latency: 12 * time.Millisecond}), "dd072c63751ba72b", 200, 12000},
		{"hash_keys off: the raw key is hashed, never kept", built(tyktest.Request{APIKey: rawKey, Code: 503, At: at}), "cac572e018c60de0", 503, 0},
		{"401 with no session", built(tyktest.Request{APIKey: "00000000", Code: 401, At: at}), "", 401, 0},
		{"no session, hash_keys off", built(tyktest.Request{APIKey: "", Code: 200, At: at}), "", 200, 0},
		{"int64 integers, members reordered, unknown members", encodeMap(t, false,
			"Future", map[string]any{"Nested": []any{1, "x", map[string]any{"deep": nil}}},
			"RequestTime", int64(7), "ResponseCode", int64(403), "APIID", "api-payments",
			"TimeStamp", ts, "APIKey", "5a779526", "Bin", []byte{1, 2, 3}, 42, "an integer key"), "5a779526", 403, 7000},
		{"time as a msgpack timestamp extension", encodeMap(t, true,
			"APIKey", "5a779526", "APIID", "api-payments", "ResponseCode", 200, "TimeStamp", at, "RequestTime", -1), "5a779526", 200, -1},
		{"latency over a day is not a latency", encodeMap(t, true,
			"APIKey", "5a779526", "APIID", "api-payments", "ResponseCode", 200, "TimeStamp", ts, "RequestTime", int64(25*time.Hour/time.Millisecond)), "5a779526", 200, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally Tally
			NewDecoder().Count([]string{tc.record}, now, &tally)
			if len(tally.Rejected) != 0 {
				t.Fatalf("rejected: %v", tally.Rejected[0].Err)
			}
			if tc.key == "" {
				if len(tally.Series) != 0 || tally.NoSession[APICode{"api-payments", tc.code}] != 1 {
					t.Errorf("no session: series %+v, per API %v", tally.Series, tally.NoSession)
				}
				return
			}
			lat := time.Duration(tc.latency) * time.Microsecond
			if tc.latency < 0 {
				lat = -1
			}
			want := hits.Of(tc.key, "api-payments", at.UnixNano(), tc.code, 1, lat)
			if len(tally.Series) != 1 || tally.Series[0] != want {
				t.Errorf("series %+v, want %+v", tally.Series, want)
			}
		})
	}
}

// TestCountFolds: a chunk's hits of one series become one series.
func TestCountFolds(t *testing.T) {
	var recs []string
	for i := range 100 {
		recs = append(recs, built(tyktest.Request{APIKey: fmt.Sprintf("%016x", i%3), Code: 200 + i%2*200, Latency: time.Millisecond}))
	}
	var tally Tally
	NewDecoder().Count(recs, now, &tally)
	if len(tally.Series) != 6 || tally.Counted != 100 {
		t.Fatalf("%d series, %d counted", len(tally.Series), tally.Counted)
	}
	var n int64
	for _, s := range tally.Series {
		n += s.Hits
	}
	if n != 100 {
		t.Errorf("%d hits", n)
	}
}

// TestMalformedRecordsRejected: nothing that is not a countable record is
// counted, and nothing panics, recurses without end or allocates what a
// record claims rather than holds.
func TestMalformedRecordsRejected(t *testing.T) {
	good := built(tyktest.Request{APIKey: "dd072c63751ba72b", Code: 200})
	ts := tyktest.Time{Time: now}
	str32 := func(claimed uint32, have string) string {
		var b [5]byte
		b[0] = 0xdb
		binary.BigEndian.PutUint32(b[1:], claimed)
		return string(b[:]) + have
	}
	deep := strings.Repeat("\x91", 1<<20) + "\xc0" // a million nested arrays
	for _, tc := range []struct {
		name, record, reason string
	}{
		{"empty", "", RejectMalformed},
		{"nil", "\xc0", RejectMalformed},
		{"an array, not a map", "\x92\x01\x02", RejectMalformed},
		{"a string", "\xa3abc", RejectMalformed},
		{"trailing bytes", good + "\x00", RejectMalformed},
		{"two records glued", good + good, RejectMalformed},
		{"map claims 4 billion members", "\xdf\xff\xff\xff\xff\xa6APIKey", RejectMalformed},
		{"APIKey claims 4 GB", "\x81\xa6APIKey" + str32(1<<32-1, "dd07"), RejectMalformed},
		{"a skipped member claims 4 GB", "\x81\xa4Path" + str32(1<<32-1, "/"), RejectMalformed},
		{"TimeStamp extension claims 4 GB", "\x81\xa9TimeStamp\xc9\xff\xff\xff\xff\xffabc", RejectMalformed},
		{"TimeStamp array with a trailing member", "\x81\xa9TimeStamp\x93\x01\x02\x03", RejectMalformed},
		{"APIKey of 10,000 bytes", encodeMap(t, true, "APIKey", strings.Repeat("k", 10000), "APIID", "a", "ResponseCode", 200, "TimeStamp", ts), RejectMalformed},
		{"APIID of 300 bytes", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "APIID", strings.Repeat("a", 300), "ResponseCode", 200, "TimeStamp", ts), RejectMalformed},
		{"APIKey an integer", encodeMap(t, true, "APIKey", 5, "APIID", "a", "ResponseCode", 200, "TimeStamp", ts), RejectMalformed},
		{"ResponseCode a string", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", "200", "TimeStamp", ts), RejectMalformed},
		{"ResponseCode a float", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200.0, "TimeStamp", ts), RejectMalformed},
		{"TimeStamp three elements", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200, "TimeStamp", []int64{1, 2, 3}), RejectMalformed},
		{"TimeStamp of strings", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200, "TimeStamp", []string{"a", "b"}), RejectMalformed},
		{"TimeStamp not a time", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200, "TimeStamp", "yesterday"), RejectMalformed},
		{"nested a million deep", "\x81\xa4Geo" + deep, RejectMalformed},
		{"a random extension member", "\x81\xa3Ext\xc7\x03\x05abc", RejectUncountable}, // well formed, but no status
		{"no members", "\x80", RejectUncountable},
		{"status 0", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 0, "TimeStamp", ts), RejectUncountable},
		{"status 600", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 600, "TimeStamp", ts), RejectUncountable},
		{"status 2^40", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", int64(1)<<40+200, "TimeStamp", ts), RejectUncountable},
		{"no TimeStamp", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200), RejectUncountable},
		{"before 1970", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200, "TimeStamp", []int64{-5, 0}), RejectUncountable},
		{"two hours ahead", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200, "TimeStamp", tyktest.Time{Time: now.Add(2 * time.Hour)}), RejectUncountable},
		{"the year 10^11", encodeMap(t, true, "APIKey", "dd072c63751ba72b", "ResponseCode", 200, "TimeStamp", []int64{1 << 62, 0}), RejectUncountable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally Tally
			NewDecoder().Count([]string{good, tc.record, good}, now, &tally)
			if len(tally.Rejected) != 1 || tally.Rejected[0].Index != 1 || tally.Rejected[0].Reason != tc.reason {
				t.Fatalf("rejected %+v, want record 1 as %s", tally.Rejected, tc.reason)
			}
			want := ErrMalformed
			if tc.reason == RejectUncountable {
				want = ErrUncountable
			}
			if !errors.Is(tally.Rejected[0].Err, want) {
				t.Errorf("error %v, want %v", tally.Rejected[0].Err, want)
			}
			if tally.Counted != 2 {
				t.Errorf("the good records beside it: %d counted, want 2", tally.Counted)
			}
		})
	}
}

// TestTruncatedAnywhere: a real record cut at any byte is rejected.
func TestTruncatedAnywhere(t *testing.T) {
	d := NewDecoder()
	var rec Record
	for _, f := range fixtures(t)[:3] {
		for i := range len(f) {
			if err := d.Decode(f[:i], &rec); !errors.Is(err, ErrMalformed) {
				t.Fatalf("cut at %d of %d: %v", i, len(f), err)
			}
		}
	}
}

// TestCountAllocatesLittle: in steady state a chunk costs its series, not
// an allocation per record.
func TestCountAllocatesLittle(t *testing.T) {
	recs := benchChunk(t, 1000)
	d := NewDecoder()
	var tally Tally
	d.Count(recs, now, &tally)
	allocs := testing.AllocsPerRun(20, func() { d.Count(recs, now, &tally) })
	if allocs > 20 {
		t.Errorf("%.0f allocations for a chunk of 1000 records", allocs)
	}
}

// benchChunk is n real-shaped records: the fixtures' layout, 200 keys on
// 4 APIs, statuses 200/404/500, over the last hour.
func benchChunk(t testing.TB, n int) []string {
	out := make([]string, n)
	for i := range out {
		r := tyktest.NewRecord(tyktest.Request{APIKey: keylens.HashKeyWith(fmt.Sprint("key", i%200), keylens.HashMurmur64),
			APIID: fmt.Sprint("api-", i%4), OrgID: "5e9d9544a1dcd60001d0ed20", Code: []int{200, 200, 200, 404, 500}[i%5],
			At: now.Add(-time.Duration(i) * time.Second), Latency: time.Duration(i%50) * time.Millisecond, Path: fmt.Sprintf("/r%d/ok", i)})
		r.UserAgent, r.Tags = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
			append([]string{"pol-pol-payments"}, r.Tags...)
		out[i] = string(tyktest.Encode(r))
	}
	return out
}

// BenchmarkDecodeCount decodes and counts chunks of 1000 records of the
// real records' shape (some 900 bytes each), reporting records/s.
func BenchmarkDecodeCount(b *testing.B) {
	recs := benchChunk(b, 1000)
	size := 0
	for _, r := range recs {
		size += len(r)
	}
	d := NewDecoder()
	var tally Tally
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d.Count(recs, now, &tally)
	}
	b.ReportMetric(float64(b.N)*float64(len(recs))/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(0, "ns/op")
}

// FuzzDecodeRecord: any bytes decode to a record or an ErrMalformed, never
// a panic; whatever counts passes the hit pipeline's validation.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range fixtures(f)[:4] {
		f.Add([]byte(r))
	}
	f.Add([]byte(built(tyktest.Request{APIKey: "", Code: 401})))
	f.Add([]byte("\x81\xa6APIKey\xdb\xff\xff\xff\xffx"))
	f.Add([]byte("\x81\xa3Geo\x91\x91\x91\xc0"))
	d := NewDecoder()
	var tally Tally
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec Record
		err := d.Decode(string(b), &rec)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
		if err == nil && (len(rec.APIKey) > hits.MaxKey || len(rec.APIID) > hits.MaxAPIID) {
			t.Fatalf("oversized members decoded: %d, %d bytes", len(rec.APIKey), len(rec.APIID))
		}
		d.Count([]string{string(b)}, now, &tally)
		if len(tally.Rejected)+tally.Counted > 1 {
			t.Fatalf("one record: %d rejected, %d counted", len(tally.Rejected), tally.Counted)
		}
		batch := hits.Batch{ID: "fuzz", Series: tally.Series}
		if err := batch.Validate(); err != nil && len(tally.Series) > 0 { // a chunk with no series is not committed
			t.Fatalf("a counted record makes an invalid batch: %v", err)
		}
	})
}
