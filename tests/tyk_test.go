package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keylens/keylens/tykanalytics"
	"github.com/keylens/keylens/tykanalytics/tyktest"
)

// Tyk analytics from Redis, end to end: a real redis-server, records
// written as the gateway writes them (tyktest's double of its purger, and
// the real records in testdata/tyk-analytics), the real binary consuming
// them.

// tykKeylens starts keylens serve consuming r's lists as consumer id, on
// store ("" for a fresh SQLite file).
func tykKeylens(t *testing.T, r *tyktest.Redis, store, id string, args ...string) *instance {
	t.Helper()
	return startKeylens(t, store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey},
		append([]string{"--tyk-redis", r.URL, "--tyk-consumer-id", id, "--tyk-poll-interval", "20ms"}, args...)...)
}

// drained reports whether every gateway list and id's processing list
// are empty: every record pushed has been committed.
func drained(t *testing.T, rdb *redis.Client, id string) bool {
	keys := tykanalytics.KeysFor(tyktest.AnalyticsKey, id)
	n, err := rdb.Exists(context.Background(), append(slices.Clone(keys.Lists), keys.Processing, keys.ChunkID)...).Result()
	return err == nil && n == 0
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// aggregate answers the aggregate endpoint for keys on D/M/YYYY day, one
// row per day.
func aggregate(t *testing.T, in *instance, keys, day string) []hitRow {
	t.Helper()
	r := in.do("GET", "/api/activity/keys/aggregate/"+keys+"/"+day+"/"+day+"?res=day&p=-1", "")
	if r.Status != 200 {
		t.Fatalf("aggregate: %d %s", r.Status, r.Body)
	}
	return decodeAs[hitList](t, r).Data
}

// TestTykFixturesFillTheAggregateEndpoint: the sixteen records a real
// gateway wrote, pushed to Redis, show in Tyk's aggregate endpoint and in
// the developer's usage exactly as their README totals them; the requests
// without a session show on /metrics per API only.
func TestTykFixturesFillTheAggregateEndpoint(t *testing.T) {
	files := tyktest.Fixtures(t)
	rs := tyktest.StartRedis(t)
	rdb := rs.Client(t)
	in := tykKeylens(t, rs, "", "e2e-fixtures")
	var recs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b)
	}
	gw := &tyktest.Gateway{Client: rdb, List: tyktest.AnalyticsKey}
	if err := gw.Push(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the records consumed", func() bool { return drained(t, rdb, "e2e-fixtures") })

	for _, tc := range []struct {
		keys                 string
		hits, success, error int64
	}{
		{"dd072c63751ba72b", 7, 5, 2},
		{"1d34cbfe7110d532", 4, 3, 1},
		{"dd072c63751ba72b,1d34cbfe7110d532,", 11, 8, 3},
		// Key A by its raw key, hashed as the gateway hashes it.
		{"eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImFhYWEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAxIiwiaCI6Im11cm11cjY0In0=", 7, 5, 2},
	} {
		rows := aggregate(t, in, tc.keys, "1/12/2026")
		if len(rows) != 1 {
			t.Fatalf("%s: %d rows, want 1: %+v", tc.keys, len(rows), rows)
		}
		r := rows[0]
		if r.Hits != tc.hits || r.Success != tc.success || r.Error != tc.error || r.ID.Day != 1 || r.ID.Month != 12 || r.ID.Year != 2026 || r.ID.Code != 200 {
			t.Errorf("%.20s: %+v, want %d hits (%d success, %d errors)", tc.keys, r, tc.hits, tc.success, tc.error)
		}
	}
	if rows := aggregate(t, in, "00000000", "1/12/2026"); len(rows) != 0 {
		t.Errorf("requests with no session counted as key 00000000: %+v", rows)
	}
	// Key B's hour: 2026-12-01 11:00 UTC.
	r := in.do("GET", "/api/activity/keys/1d34cbfe7110d532/1/12/2026/1/12/2026?res=hour", "")
	if rows := decodeAs[hitList](t, r).Data; len(rows) != 1 || rows[0].ID.Hour != 11 || rows[0].Hits != 4 {
		t.Errorf("key B by hour: %s", r.Body)
	}

	// A developer holding key A sees its usage.
	dev := wantEnvelope(t, in.do("POST", "/api/portal/developers",
		`{"email":"tyk@example.com","keys":{"dd072c63751ba72b":["pol-payments"]}}`), 200, "OK", "").Message
	u := decodeAs[hitList](t, in.do("GET", "/api/portal/developers/"+dev+"/usage?from=1/12/2026&to=1/12/2026", ""))
	if len(u.Data) != 1 || u.Data[0].Hits != 7 || u.Data[0].Error != 2 {
		t.Errorf("developer usage: %+v", u.Data)
	}

	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	for _, want := range []string{
		`keylens_tyk_analytics_no_session_hits_total{api_id="api-keyless",code="200"} 2`,
		`keylens_tyk_analytics_no_session_hits_total{api_id="api-tokauth",code="401"} 1`,
		`keylens_tyk_analytics_no_session_hits_total{api_id="api-tokauth",code="403"} 2`,
		`keylens_tyk_analytics_records_total{outcome="counted"} 11`,
		`keylens_tyk_analytics_records_total{outcome="no_session"} 5`,
		`keylens_key_hits_total{key_id="dd072c63751ba72b"} 7`,
		`keylens_tyk_analytics_redis_up 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `key_id="00000000"`) {
		t.Error("/metrics has a key series for requests with no session")
	}
}

// streamer is a gateway writing records while a test does its worst: it
// pushes batches to the gateway's lists, counting what Redis acknowledged.
type streamer struct {
	t      *testing.T
	gw     []*tyktest.Gateway
	keys   []string
	mu     sync.Mutex // held around a push: a test takes it to pause the stream
	pushed int64
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func startStreamer(t *testing.T, rdb *redis.Client, keys []string) *streamer {
	s := &streamer{t: t, keys: keys, stop: make(chan struct{}), done: make(chan struct{})}
	for _, l := range tyktest.Lists(tyktest.AnalyticsKey) {
		s.gw = append(s.gw, &tyktest.Gateway{Client: rdb, List: l})
	}
	go s.run()
	t.Cleanup(func() { s.finish() }) // a test that fails early stops it too
	return s
}

func (s *streamer) run() {
	defer close(s.done)
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			return
		default:
		}
		n := 1 + rand.IntN(200)
		recs := make([][]byte, n)
		for j := range recs {
			key := s.keys[rand.IntN(len(s.keys))]
			if rand.IntN(10) == 0 {
				key = "00000000" // no session: never a key's
			}
			recs[j] = tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: key, APIID: fmt.Sprint("api-", rand.IntN(3)),
				OrgID: "5e9d9544a1dcd60001d0ed20", Code: []int{200, 200, 201, 401, 403, 404, 500}[rand.IntN(7)],
				At: time.Now().Add(-time.Duration(rand.IntN(5000)) * time.Millisecond), Latency: time.Duration(rand.IntN(300)) * time.Millisecond,
				Path: fmt.Sprintf("/s/%d/%d", i, j)}))
		}
		s.mu.Lock()
		err := s.gw[rand.IntN(len(s.gw))].Push(context.Background(), recs...)
		if err == nil {
			for _, r := range recs {
				if rec, _ := tyktest.Decode(r); rec.APIKey != "00000000" {
					s.pushed++
				}
			}
		}
		s.mu.Unlock()
		if err != nil {
			s.t.Errorf("push: %v", err)
			return
		}
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	}
}

// count returns how many key records Redis took so far.
func (s *streamer) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushed
}

// finish stops the stream and returns how many key records Redis took.
func (s *streamer) finish() int64 {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return s.count()
}

// TestTykRecordsSurviveKill9: five rounds of keylens killed with SIGKILL
// at a random moment while records stream into the gateway's lists, and
// started again on the same store and consumer id: every record pushed is
// counted exactly once.
func TestTykRecordsSurviveKill9(t *testing.T) {
	rs := tyktest.StartRedis(t)
	rdb := rs.Client(t)
	keys := hashKeys("7c", 20)
	in := tykKeylens(t, rs, "", "e2e-kill9", "--tyk-chunk-size", "300")
	store := in.Store
	s := startStreamer(t, rdb, keys)
	for round := range 5 {
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond) // a random moment
		in.kill()
		in = tykKeylens(t, rs, store, "e2e-kill9", "--tyk-chunk-size", "300")
		t.Logf("round %d: killed and restarted with %d key records pushed so far", round, s.count())
	}
	pushed := s.finish()
	waitFor(t, 60*time.Second, "the records consumed", func() bool { return drained(t, rdb, "e2e-kill9") })
	if got := storedHits(t, in, keys); got != pushed {
		t.Errorf("stored %d hits, pushed %d key records: each must count exactly once", got, pushed)
	}
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	t.Logf("%d records counted exactly once across 5 kills; after the last start: %s", pushed, grepLines(metrics, "keylens_tyk_analytics_chunks_total"))
}

// TestTykConsumptionResumesAfterARedisRestart: Redis is restarted twice
// while records stream in; keylens resumes on its own and counts every
// record once.
func TestTykConsumptionResumesAfterARedisRestart(t *testing.T) {
	rs := tyktest.StartRedis(t)
	rdb := rs.Client(t)
	keys := hashKeys("7d", 10)
	in := tykKeylens(t, rs, "", "e2e-redis", "--tyk-chunk-size", "200")
	s := startStreamer(t, rdb, keys)
	for range 2 {
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		func() {
			s.mu.Lock() // the gateway would buffer meanwhile; the test's gateway just waits
			defer s.mu.Unlock()
			rs.Restart(t, 2*time.Second)
		}()
	}
	time.Sleep(300 * time.Millisecond) // more records after the last restart
	pushed := s.finish()
	waitFor(t, 60*time.Second, "the records consumed", func() bool { return drained(t, rdb, "e2e-redis") })
	if got := storedHits(t, in, keys); got != pushed {
		t.Errorf("stored %d hits, pushed %d key records", got, pushed)
	}
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	if !strings.Contains(metrics, "keylens_tyk_analytics_redis_up 1\n") || strings.Contains(metrics, `keylens_tyk_analytics_errors_total{op="redis"} 0`+"\n") {
		t.Errorf("/metrics should show Redis up again after counted failures:\n%s", grepLines(metrics, "keylens_tyk_analytics"))
	}
	t.Logf("%d key records counted exactly once across two Redis restarts; %s", pushed, grepLines(metrics, `keylens_tyk_analytics_errors_total{op="redis"}`))
}

// TestTykMalformedRecordsAreSetAside: truncated records, wrong types and
// huge strings go to the dead-letter list, byte for byte, and are counted
// as rejected; the stream around them is counted and never blocks.
func TestTykMalformedRecordsAreSetAside(t *testing.T) {
	rs := tyktest.StartRedis(t)
	rdb := rs.Client(t)
	in := tykKeylens(t, rs, "", "e2e-dlq", "--tyk-chunk-size", "4")
	at := time.Now().UTC().Add(-time.Minute)
	good := tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "7e000001", APIID: "api", Code: 200, At: at}))
	wrongType := tyktest.NewRecord(tyktest.Request{APIKey: "7e000001", APIID: "api", Code: 200, At: at})
	bad := [][]byte{
		good[:len(good)/2], // truncated
		[]byte(strings.Replace(string(good), "\xacResponseCode\xcc\xc8", "\xacResponseCode\xa3200", 1)),           // a string status
		append([]byte("\x83\xa6APIKey\xdb\x7f\xff\xff\xff"), "dd07"...),                                           // a 2 GB key claimed
		tyktest.Encode(func() tyktest.Record { r := wrongType; r.APIID = strings.Repeat("x", 1000); return r }()), // a huge API id
		[]byte("not msgpack at all"),
	}
	if string(bad[1]) == string(good) {
		t.Fatal("the status was not replaced")
	}
	var all [][]byte
	for _, b := range bad {
		all = append(all, good, b)
	}
	all = append(all, good)
	gw := &tyktest.Gateway{Client: rdb, List: tyktest.AnalyticsKey + "_3"}
	if err := gw.Push(context.Background(), all...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the records consumed", func() bool { return drained(t, rdb, "e2e-dlq") })
	if got := storedHits(t, in, []string{"7e000001"}); got != 6 {
		t.Errorf("stored %d hits, want the 6 good records", got)
	}
	dl, err := rdb.LRange(context.Background(), tykanalytics.KeysFor(tyktest.AnalyticsKey, "e2e-dlq").DeadLetter, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != len(bad) {
		t.Fatalf("dead-letter list holds %d records, want %d", len(dl), len(bad))
	}
	for i := range bad {
		if dl[i] != string(bad[i]) {
			t.Errorf("dead letter %d differs from the record pushed", i)
		}
	}
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	if !strings.Contains(metrics, `keylens_tyk_analytics_records_total{outcome="malformed"} 5`+"\n") {
		t.Errorf("/metrics:\n%s", grepLines(metrics, "keylens_tyk_analytics_records_total"))
	}
	// The stream goes on.
	if err := gw.Push(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "a record after the bad ones counted", func() bool { return storedHits(t, in, []string{"7e000001"}) == 7 })
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTykTwoSidecarsShareTheLists: two `keylens sidecar` processes beside
// the gateway, reading through the portal, consume the same lists with
// their own consumer ids while records stream in; the portal counts every
// record once.
func TestTykTwoSidecarsShareTheLists(t *testing.T) {
	rs := tyktest.StartRedis(t)
	rdb := rs.Client(t)
	in := startDefault(t)
	keys := hashKeys("7f", 8)
	for _, id := range []string{"node-a", "node-b"} {
		startLoneSidecar(t, "--portal", in.AdminURL, "--admin-key", in.Key,
			"--tyk-redis", rs.URL, "--tyk-consumer-id", id, "--tyk-chunk-size", "100", "--tyk-poll-interval", "10ms")
	}
	s := startStreamer(t, rdb, keys)
	time.Sleep(1500 * time.Millisecond) // records stream in meanwhile
	pushed := s.finish()
	waitFor(t, 60*time.Second, "the records consumed", func() bool {
		return drained(t, rdb, "node-a") && drained(t, rdb, "node-b")
	})
	if got := storedHits(t, in, keys); got != pushed {
		t.Errorf("stored %d hits, pushed %d key records", got, pushed)
	}
	var chunks []int64
	for _, id := range []string{"node-a", "node-b"} {
		n, err := rdb.Get(context.Background(), tykanalytics.KeysFor(tyktest.AnalyticsKey, id).Sequence).Int64()
		if err != nil || n == 0 {
			t.Errorf("%s took no chunk (%v)", id, err)
		}
		chunks = append(chunks, n)
	}
	t.Logf("%d key records counted once by two sidecars, which took %v chunks", pushed, chunks)
}
