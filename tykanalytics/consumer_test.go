package tykanalytics

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/identity/hits"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/tykanalytics/tyktest"
)

// The consumer against a real redis-server and a real store (SQLite,
// through the committer).

type rig struct {
	t         *testing.T
	redis     *tyktest.Redis
	rdb       *redis.Client
	db        *sqlstore.DB
	committer *analytics.Committer
	store     keylens.HitWriter // what consumers commit to: the committer, or a wrapper of it
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, redis: tyktest.StartRedis(t)}
	r.rdb = r.redis.Client(t)
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "keylens.db"))
	if err != nil {
		t.Fatal(err)
	}
	r.db = db
	r.committer = analytics.NewCommitter(db, analytics.CommitterOptions{})
	r.store = r.committer
	t.Cleanup(func() {
		_ = r.committer.Close(context.Background())
		db.Close()
	})
	return r
}

// consumer starts a consumer named id, stopped when the test ends.
func (r *rig) consumer(id string, o Options) (*Consumer, *prometheus.Registry) {
	r.t.Helper()
	reg := prometheus.NewRegistry()
	o.Redis, o.Store, o.ConsumerID, o.Metrics = r.rdb, r.store, id, NewMetrics(reg)
	if o.PollInterval == 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	c, err := New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	c.Start()
	r.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, reg
}

func (r *rig) push(list string, records ...[]byte) {
	r.t.Helper()
	g := &tyktest.Gateway{Client: r.rdb, List: list}
	if err := g.Push(context.Background(), records...); err != nil {
		r.t.Fatal(err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drained: every gateway list and the consumer's processing list are
// empty.
func (r *rig) drained(keys Keys) bool {
	for _, l := range append(slices.Clone(keys.Lists), keys.Processing, keys.ChunkID) {
		if n, err := r.rdb.Exists(context.Background(), l).Result(); err != nil || n != 0 {
			return false
		}
	}
	return true
}

// stored sums the hits of keys stored on the day of at, by status.
func (r *rig) stored(at time.Time, keys ...string) map[int]int64 {
	r.t.Helper()
	day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	rows, err := r.db.QueryHits(context.Background(), keylens.HitQuery{Keys: keys, From: day, To: day.AddDate(0, 0, 1),
		Res: keylens.ResDay, ByCode: true})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[int]int64{}
	for _, row := range rows {
		out[row.Code] += row.Hits
	}
	return out
}

func total(m map[int]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestConsumerCountsTheFixtures: the sixteen real records, pushed as the
// gateway pushes them, are stored to their README's totals; the requests
// with no session show on /metrics per API only.
func TestConsumerCountsTheFixtures(t *testing.T) {
	recs := fixtures(t)
	r := newRig(t)
	var raw [][]byte
	for _, s := range recs {
		raw = append(raw, []byte(s))
	}
	r.push(DefaultAnalyticsKey, raw...)
	c, reg := r.consumer("fixtures", Options{})
	eventually(t, 10*time.Second, "the records consumed", func() bool { return r.drained(c.Keys()) })
	if got := r.stored(fixtureTime, "dd072c63751ba72b"); fmt.Sprint(got) != "map[200:5 500:2]" {
		t.Errorf("key A: %v, want 5×200, 2×500", got)
	}
	if got := r.stored(fixtureTime, "1d34cbfe7110d532"); fmt.Sprint(got) != "map[200:3 404:1]" {
		t.Errorf("key B: %v, want 3×200, 1×404", got)
	}
	if got := r.stored(fixtureTime, NoSessionKey); len(got) != 0 {
		t.Errorf("no-session requests stored as a key: %v", got)
	}
	for _, tc := range []struct {
		api, code string
		want      float64
	}{{"api-tokauth", "401", 1}, {"api-tokauth", "403", 2}, {"api-keyless", "200", 2}} {
		if got := testutil.ToFloat64(c.m.noSession.WithLabelValues(tc.api, tc.code)); got != tc.want {
			t.Errorf("no-session %s %s: %v, want %v", tc.api, tc.code, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(c.m.records.WithLabelValues(OutcomeCounted)); got != 11 {
		t.Errorf("records counted: %v, want 11", got)
	}
	if n, err := testutil.GatherAndCount(reg, "keylens_tyk_analytics_list_length"); err != nil || n != 11 {
		t.Errorf("list length series: %d (%v), want 11", n, err)
	}
}

// recordingStore notes the hits of every batch the store applies, by API
// id (one a record in TestConsumersShareTheLists), and the chunks each
// consumer committed.
type recordingStore struct {
	keylens.HitWriter
	mu       sync.Mutex
	byAPI    map[string]int64
	byWorker map[string]int
}

func (s *recordingStore) AddHits(ctx context.Context, b []keylens.HitBatch) ([]bool, error) {
	applied, err := s.HitWriter.AddHits(ctx, b)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, ok := range applied {
		if !ok {
			continue
		}
		for _, d := range b[i].Series {
			s.byAPI[d.APIID] += d.Hits
		}
		if parts := strings.Split(b[i].ID, "/"); len(parts) > 1 {
			s.byWorker[parts[1]]++
		}
	}
	return applied, err
}

// TestConsumersShareTheLists: three consumers on the gateway's list and
// its ten variants, while records keep arriving: every record is counted
// once, by whichever consumer took it. Each record has its own API id, so
// the hits applied per API id are the multiset of records consumed: one
// each, none missing, none unknown. (Nothing makes every consumer take a
// chunk: a fast one may take them all, so that is not checked.)
func TestConsumersShareTheLists(t *testing.T) {
	r := newRig(t)
	rec := &recordingStore{HitWriter: r.committer, byAPI: map[string]int64{}, byWorker: map[string]int{}}
	r.store = rec
	at := time.Now().UTC().Add(-time.Minute)
	lists := tyktest.Lists(DefaultAnalyticsKey)
	var keys []Keys
	for i := range 3 {
		c, _ := r.consumer(fmt.Sprint("c", i), Options{ChunkSize: 50})
		keys = append(keys, c.Keys())
	}
	want := map[int]int64{}
	pushed := map[string]bool{}
	for batch := range 40 {
		var recs [][]byte
		for i := range 60 {
			code := []int{200, 201, 404, 500}[(batch+i)%4]
			want[code]++
			api := fmt.Sprintf("api-share-%02d-%02d", batch, i)
			pushed[api] = true
			recs = append(recs, tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "5a779526", APIID: api, Code: code, At: at})))
		}
		r.push(lists[batch%len(lists)], recs...)
	}
	eventually(t, 30*time.Second, "the records consumed", func() bool {
		return r.drained(keys[0]) && r.drained(keys[1]) && r.drained(keys[2])
	})
	if got := r.stored(at, "5a779526"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var missing, doubled, unknown []string
	for api := range pushed {
		switch n := rec.byAPI[api]; {
		case n == 0:
			missing = append(missing, api)
		case n > 1:
			doubled = append(doubled, fmt.Sprintf("%s×%d", api, n))
		}
	}
	for api := range rec.byAPI {
		if !pushed[api] {
			unknown = append(unknown, api)
		}
	}
	if len(missing)+len(doubled)+len(unknown) > 0 {
		some := func(l []string) []string { slices.Sort(l); return l[:min(len(l), 3)] }
		t.Errorf("of %d records: %d never counted %v, %d counted more than once %v, %d counted unpushed %v",
			len(pushed), len(missing), some(missing), len(doubled), some(doubled), len(unknown), some(unknown))
	}
	t.Logf("chunks committed per consumer: %v", rec.byWorker)
}

// takeAsACrashedConsumer moves a chunk into id's processing list as a
// consumer does, and returns its batch as that consumer would commit it.
func takeAsACrashedConsumer(t *testing.T, r *rig, id string, n int) (keylens.HitBatch, []string) {
	keys := KeysFor(DefaultAnalyticsKey, id)
	chunk, err := takeScript.Run(context.Background(), r.rdb, []string{keys.Lists[0], keys.Processing, keys.ChunkID, keys.Sequence, keys.Epoch},
		n, DefaultChunkBytes, "0123456789abcdef").Text()
	if err != nil {
		t.Fatal(err)
	}
	items, err := r.rdb.LRange(context.Background(), keys.Processing, 0, -1).Result()
	if err != nil || len(items) != n {
		t.Fatalf("take: %d records, %v", len(items), err)
	}
	var tally Tally
	NewDecoder().Count(items, time.Now(), &tally)
	return keylens.HitBatch{ID: chunkBatchID(id, chunk, items), Series: tally.Series}, items
}

// TestConsumerRecoversItsChunk: a consumer that died after taking a chunk,
// before or after committing it, left it in its processing list; the next
// start counts it once.
func TestConsumerRecoversItsChunk(t *testing.T) {
	for _, committed := range []bool{false, true} {
		t.Run(fmt.Sprint("committed before the crash: ", committed), func(t *testing.T) {
			r := newRig(t)
			at := time.Now().UTC().Add(-time.Minute)
			var recs [][]byte
			for i := range 30 {
				recs = append(recs, tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200 + i%2, At: at})))
			}
			r.push(DefaultAnalyticsKey, recs...)
			batch, _ := takeAsACrashedConsumer(t, r, "crashy", 20)
			if committed {
				if _, err := r.committer.AddHits(context.Background(), []keylens.HitBatch{batch}); err != nil {
					t.Fatal(err)
				}
			}
			if n := r.rdb.LLen(context.Background(), DefaultAnalyticsKey).Val(); n != 10 {
				t.Fatalf("%d records left in the gateway's list, want 10", n)
			}
			c, _ := r.consumer("crashy", Options{})
			eventually(t, 10*time.Second, "the records consumed", func() bool { return r.drained(c.Keys()) })
			if got := total(r.stored(at, "4beaa90b")); got != 30 {
				t.Errorf("stored %d hits, want 30", got)
			}
			dup := testutil.ToFloat64(c.m.chunks.WithLabelValues("duplicate"))
			if (dup == 1) != committed {
				t.Errorf("%v chunks found committed already", dup)
			}
		})
	}
}

// TestMalformedRecordsGoToTheDeadLetterList: records that cannot be
// counted leave the stream for a bounded dead-letter list, byte for byte,
// newest kept; the records around them count.
func TestMalformedRecordsGoToTheDeadLetterList(t *testing.T) {
	r := newRig(t)
	at := time.Now().UTC().Add(-time.Minute)
	good := tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200, At: at}))
	var bad [][]byte
	var all [][]byte
	for i := range 12 {
		b := append([]byte(nil), good[:len(good)-1-i]...) // truncated
		if i%3 == 1 {
			b = []byte(fmt.Sprintf("\x92not a record %d", i)) // an array
		}
		bad = append(bad, b)
		all = append(all, good, b)
	}
	r.push(DefaultAnalyticsKey, all...)
	c, reg := r.consumer("dlq", Options{DeadLetterMax: 5, ChunkSize: 7})
	eventually(t, 10*time.Second, "the records consumed", func() bool { return r.drained(c.Keys()) })
	if got := total(r.stored(at, "4beaa90b")); got != 12 {
		t.Errorf("stored %d hits, want the 12 good records", got)
	}
	dl, err := r.rdb.LRange(context.Background(), c.Keys().DeadLetter, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, b := range bad[len(bad)-5:] {
		want = append(want, string(b))
	}
	if !slices.Equal(dl, want) {
		t.Errorf("dead-letter list %q, want the newest 5 rejected records %q", dl, want)
	}
	if got := testutil.ToFloat64(c.m.records.WithLabelValues(RejectMalformed)); got != 12 {
		t.Errorf("malformed records counted: %v, want 12", got)
	}
	eventually(t, 5*time.Second, "the dead-letter gauge", func() bool {
		return testutil.ToFloat64(c.m.deadLetters) == 5
	})
	_ = reg
}

// flakyStore refuses the first n commits as the committer does when it is
// behind.
type flakyStore struct {
	keylens.HitWriter
	left atomic.Int64
}

func (f *flakyStore) AddHits(ctx context.Context, b []keylens.HitBatch) ([]bool, error) {
	if f.left.Add(-1) >= 0 {
		return nil, analytics.ErrBusy
	}
	return f.HitWriter.AddHits(ctx, b)
}

// TestConsumerWaitsOutAnUnavailableStore: EUNAVAILABLE from the committer
// means the same chunk again, later; nothing is lost or doubled.
func TestConsumerWaitsOutAnUnavailableStore(t *testing.T) {
	r := newRig(t)
	flaky := &flakyStore{HitWriter: r.committer}
	flaky.left.Store(4)
	r.store = flaky
	at := time.Now().UTC().Add(-time.Minute)
	var recs [][]byte
	for range 25 {
		recs = append(recs, tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200, At: at})))
	}
	r.push(DefaultAnalyticsKey, recs...)
	c, _ := r.consumer("flaky", Options{ChunkSize: 10})
	eventually(t, 20*time.Second, "the records consumed", func() bool { return r.drained(c.Keys()) })
	if got := total(r.stored(at, "4beaa90b")); got != 25 {
		t.Errorf("stored %d hits, want 25", got)
	}
	if got := testutil.ToFloat64(c.m.errors.WithLabelValues("commit")); got != 4 {
		t.Errorf("commit errors: %v, want 4", got)
	}
}

// TestConsumerRidesOutARedisRestart: Redis goes away mid-stream and comes
// back with its data; consumption resumes and counts every record once.
func TestConsumerRidesOutARedisRestart(t *testing.T) {
	r := newRig(t)
	at := time.Now().UTC().Add(-time.Minute)
	rec := tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200, At: at}))
	batch := slices.Repeat([][]byte{rec}, 200)
	c, _ := r.consumer("restart", Options{ChunkSize: 30})
	for i := range 6 {
		r.push(DefaultAnalyticsKey, batch...)
		if i == 2 {
			r.redis.Restart(t, 300*time.Millisecond)
		}
	}
	eventually(t, 30*time.Second, "the records consumed", func() bool { return r.drained(c.Keys()) })
	if got := total(r.stored(at, "4beaa90b")); got != 1200 {
		t.Errorf("stored %d hits, want 1200", got)
	}
	if testutil.ToFloat64(c.m.up) != 1 {
		t.Error("redis_up is not 1 after the restart")
	}
}

// TestCloseLeavesNothingHalfDone: Close during a stream returns with the
// chunk in hand committed and deleted, or left whole for the next start.
func TestCloseLeavesNothingHalfDone(t *testing.T) {
	r := newRig(t)
	at := time.Now().UTC().Add(-time.Minute)
	rec := tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200, At: at}))
	r.push(DefaultAnalyticsKey, slices.Repeat([][]byte{rec}, 3000)...)
	c, _ := r.consumer("closing", Options{ChunkSize: 100})
	eventually(t, 10*time.Second, "a chunk committed", func() bool { return total(r.stored(at, "4beaa90b")) > 0 })
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	left := r.rdb.LLen(context.Background(), DefaultAnalyticsKey).Val() + r.rdb.LLen(context.Background(), c.Keys().Processing).Val()
	if got := total(r.stored(at, "4beaa90b")); got+left != 3000 {
		t.Errorf("stored %d + left %d, want 3000", got, left)
	}
	c2, _ := r.consumer("closing", Options{ChunkSize: 100})
	eventually(t, 20*time.Second, "the records consumed", func() bool { return r.drained(c2.Keys()) })
	if got := total(r.stored(at, "4beaa90b")); got != 3000 {
		t.Errorf("stored %d hits, want 3000", got)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for name, o := range map[string]Options{
		"no store":    {Redis: rdb, ConsumerID: "a"},
		"bad id":      {Redis: rdb, Store: &flakyStore{}, ConsumerID: "a b"},
		"long id":     {Redis: rdb, Store: &flakyStore{}, ConsumerID: string(make([]byte, 129))},
		"huge chunks": {Redis: rdb, Store: &flakyStore{}, ConsumerID: "a", ChunkSize: MaxChunkSize + 1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if id := ConsumerIDFrom("gw-1.example.com:8080/x y"); !ValidConsumerID(id) {
		t.Errorf("ConsumerIDFrom gave %q", id)
	}
	_ = errors.New
}

// BenchmarkConsume measures the whole path: records waiting in Redis,
// taken in chunks, decoded, counted, committed to SQLite through the
// committer and deleted. It reports records/s.
func BenchmarkConsume(b *testing.B) {
	for _, chunk := range []int{500, 2000, 5000} {
		b.Run(fmt.Sprint("chunk=", chunk), func(b *testing.B) {
			rs := tyktest.StartRedis(b)
			rdb := rs.Client(b)
			db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "keylens.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			committer := analytics.NewCommitter(db, analytics.CommitterOptions{})
			defer committer.Close(context.Background())
			recs := benchChunk(b, 1000)
			raw := make([][]byte, len(recs))
			for i, r := range recs {
				raw[i] = []byte(r)
			}
			const perRound = 100_000
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				b.StopTimer()
				gw := &tyktest.Gateway{Client: rdb, List: DefaultAnalyticsKey}
				for range perRound / len(raw) {
					if err := gw.Push(context.Background(), raw...); err != nil {
						b.Fatal(err)
					}
				}
				c, err := New(Options{Redis: rdb, Store: committer, ConsumerID: "bench", ChunkSize: chunk, PollInterval: time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				c.Start()
				for rdb.Exists(context.Background(), DefaultAnalyticsKey, c.Keys().Processing).Val() != 0 {
					time.Sleep(time.Millisecond)
				}
				total += time.Since(start)
				b.StopTimer()
				_ = c.Close(context.Background())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*perRound)/total.Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestConsumersSharingAnIDCountOnce: two processes that end up with the
// same consumer id (serve and sidecar on one host and store) hand one
// processing list back and forth; every record still counts once.
func TestConsumersSharingAnIDCountOnce(t *testing.T) {
	r := newRig(t)
	at := time.Now().UTC().Add(-time.Minute)
	var keys Keys
	for range 3 {
		c, _ := r.consumer("shared", Options{ChunkSize: 15, PollInterval: time.Millisecond})
		keys = c.Keys()
	}
	var n int64
	for batch := range 60 {
		var recs [][]byte
		for i := range 50 {
			recs = append(recs, tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200,
				At: at, Path: fmt.Sprint("/", batch, "/", i)})))
		}
		r.push(tyktest.Lists(DefaultAnalyticsKey)[batch%11], recs...)
		n += int64(len(recs))
	}
	eventually(t, 30*time.Second, "the records consumed", func() bool { return r.drained(keys) })
	if got := total(r.stored(at, "4beaa90b")); got != n {
		t.Errorf("stored %d hits, want %d", got, n)
	}
}

// TestConsumerSurvivesStrayKeys: a processing list without a chunk id
// (the leftover of a take that failed half way: its records are still in
// the gateway's list) is dropped, not counted; a dead-letter key of the
// wrong type does not hold up the stream.
func TestConsumerSurvivesStrayKeys(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute)
	keys := KeysFor(DefaultAnalyticsKey, "stray")
	stray := tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200, At: at}))
	if err := r.rdb.RPush(ctx, keys.Processing, stray, stray).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.Set(ctx, keys.DeadLetter, "not a list", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for range 10 {
		recs = append(recs, tyktest.Encode(tyktest.NewRecord(tyktest.Request{APIKey: "4beaa90b", APIID: "a", Code: 200, At: at})))
	}
	recs = append(recs, []byte("junk"))
	r.push(DefaultAnalyticsKey, recs...)
	c, _ := r.consumer("stray", Options{})
	// The chunk's metrics are tallied after its lists are gone: wait for
	// both.
	malformed := func() float64 { return testutil.ToFloat64(c.m.records.WithLabelValues(RejectMalformed)) }
	eventually(t, 10*time.Second, "the records consumed", func() bool { return r.drained(c.Keys()) && malformed() > 0 })
	if got := total(r.stored(at, "4beaa90b")); got != 10 {
		t.Errorf("stored %d hits, want 10", got)
	}
	if got := malformed(); got != 1 {
		t.Errorf("malformed: %v, want 1", got)
	}
}

// refusingStore fails the test if any batch reaches it.
type refusingStore struct{ t *testing.T }

func (s refusingStore) AddHits(context.Context, []keylens.HitBatch) ([]bool, error) {
	s.t.Error("an invalid batch reached the store")
	return nil, keylens.Errorf(keylens.EINVALID, "invalid")
}

// TestConsumerValidatesItsBatches: the consumer is where Tyk's hits enter
// keylens, and nothing behind it checks them again: a chunk whose batch
// fails keylens.ValidateHits never reaches the store, and its records are
// set aside for the dead-letter list.
func TestConsumerValidatesItsBatches(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	c, err := New(Options{Redis: rdb, Store: refusingStore{t}, ConsumerID: "v"})
	if err != nil {
		t.Fatal(err)
	}
	c.t.Series = []hits.Series{{KeyHash: "add2b342", APIID: "a", Hour: 480000, Code: 200, Hits: 1, Success: 2}}
	c.t.Counted, c.t.NoSession = 1, map[APICode]int64{}
	applied, err := c.commit("tyk/v/1/0", 3)
	if err != nil || applied {
		t.Fatalf("commit: %v, %v; want not applied, no error", applied, err)
	}
	if len(c.t.Rejected) != 3 || c.t.Counted != 0 || len(c.t.Series) != 0 {
		t.Errorf("tally after refusal: %+v", c.t)
	}
	for _, r := range c.t.Rejected {
		if r.Reason != RejectUncountable || keylens.ErrorCode(r.Err) != keylens.EINVALID {
			t.Errorf("rejection %+v", r)
		}
	}
}
