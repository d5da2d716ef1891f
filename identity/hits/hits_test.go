package hits

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 12, 30, 0, 0, time.UTC)

func TestParseRefuses(t *testing.T) {
	long := strings.Repeat("k", MaxKey+1)
	many := "[" + strings.Repeat(`{"key":"k","code":200},`, MaxPerRequest) + `{"key":"k","code":200}]`
	for name, body := range map[string]string{
		"empty":            ``,
		"object":           `{"key":"k","code":200}`,
		"trailing data":    `[{"key":"k","code":200}] x`,
		"no key":           `[{"code":200}]`,
		"long key":         `[{"key":"` + long + `","code":200}]`,
		"long api":         `[{"key":"k","api_id":"` + strings.Repeat("a", MaxAPIID+1) + `","code":200}]`,
		"code 99":          `[{"key":"k","code":99}]`,
		"code 600":         `[{"key":"k","code":600}]`,
		"code float":       `[{"key":"k","code":200.5}]`,
		"future":           `[{"key":"k","code":200,"time":"2026-11-23T14:31:00Z"}]`,
		"before 1970":      `[{"key":"k","code":200,"time":"1969-12-31T23:59:59Z"}]`,
		"negative latency": `[{"key":"k","code":200,"latency_ms":-1}]`,
		"latency over day": `[{"key":"k","code":200,"latency_ms":86400001}]`,
		"count 0":          `[{"key":"k","code":200,"count":0}]`,
		"count too big":    `[{"key":"k","code":200,"count":1000000001}]`,
		"too many":         many,
		"too many counted": strings.Replace(many, `"code":200}`, `"code":200,"count":2,"latency_ms":1,"time":"2026-11-23T12:00:00Z"}`, -1),
		"second bad":       `[{"key":"k","code":200},{"key":"","code":200}]`,
		"latency sum":      `[{"key":"k","code":200,"count":1000000000,"latency_ms":86400000}]`,
	} {
		if _, err := Parse([]byte(body), now); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	in, err := Parse([]byte(` [{"key":"k","api_id":"a","code":404},{"key":"k","code":200,"time":"2026-11-23T13:29:00Z","count":3,"latency_ms":2.5}]`), now)
	if err != nil {
		t.Fatal(err)
	}
	a, b := in[0].Series("h"), in[1].Series("h")
	want := Series{KeyHash: "h", APIID: "a", Hour: now.Unix() / 3600, Code: 404, Hits: 1, Errors: 1, LastHit: now.UnixNano()}
	if a != want {
		t.Errorf("defaults: %+v, want %+v", a, want)
	}
	if b.Hits != 3 || b.Success != 3 || b.LatencyUS != 7500 || b.LatencyCount != 3 || b.Hour != now.Unix()/3600+1 {
		t.Errorf("given: %+v", b)
	}
}

// TestEncodeParses: what Encode writes, Parse reads back to the same
// counters, in bodies within the limits, the same bodies every time.
func TestEncodeParses(t *testing.T) {
	var in []Series
	for i := range MaxPerRequest + 1500 {
		s := Series{KeyHash: fmt.Sprintf("%016x", i), APIID: fmt.Sprint("api-\"", i%7), Hour: now.Unix()/3600 - int64(i%5), Code: 200 + i%4*100}
		s.add(int64(1+i%3), s.Code, s.Hour*3600e9+int64(i), time.Duration(i%2)*time.Millisecond)
		in = append(in, s)
	}
	big := Series{KeyHash: "big", Hour: now.Unix() / 3600, Code: 500}
	big.add(MaxCount+5, 500, now.UnixNano()-1, -1)
	in = append(in, big)

	var bodies [][]byte
	if err := Encode(in, func(body []byte, _ int64) error {
		bodies = append(bodies, append([]byte(nil), body...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(bodies) < 2 {
		t.Fatalf("%d bodies for %d series", len(bodies), len(in))
	}
	var out []Series
	for _, b := range bodies {
		if len(b) > MaxBody {
			t.Errorf("a body of %d bytes", len(b))
		}
		hits, err := Parse(b, now)
		if err != nil {
			t.Fatalf("Parse of an encoded body: %v", err)
		}
		for i := range hits {
			out = append(out, hits[i].Series(hits[i].Key))
		}
	}
	got, want := Fold(nil, out, 1), Fold(nil, in, 1)
	if len(got) != len(want) {
		t.Fatalf("%d series back, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("series %d:\n got %+v\nwant %+v", i, got[i], want[i])
			break
		}
	}
	i := 0
	_ = Encode(in, func(body []byte, _ int64) error {
		if !bytes.Equal(body, bodies[i]) {
			t.Errorf("body %d differs on a second encoding", i)
		}
		i++
		return nil
	})
}

// TestOfMatchesTheCounter: a series built with Of holds what a Counter
// holding the same hits drains.
func TestOfMatchesTheCounter(t *testing.T) {
	for _, tc := range []struct {
		code    int
		latency time.Duration
	}{{200, 3 * time.Millisecond}, {404, -1}, {500, 0}, {302, time.Second}} {
		c := NewCounter(0)
		c.Record("dd072c63751ba72b", "api", now.UnixNano(), tc.code, 2, tc.latency)
		want := c.Drain(nil)
		got := Of("dd072c63751ba72b", "api", now.UnixNano(), tc.code, 2, tc.latency)
		if len(want) != 1 || got != want[0] {
			t.Errorf("Of(%d, %v) = %+v, the counter drained %+v", tc.code, tc.latency, got, want)
		}
		if err := got.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestFold(t *testing.T) {
	s := func(key string, hour int64, code int, n int64) Series {
		x := Series{KeyHash: key, APIID: "a", Hour: hour, Code: code}
		x.add(n, code, hour*3600e9, -1)
		return x
	}
	in := []Series{s("k", 48, 200, 1), s("k", 49, 200, 2), s("j", 48, 200, 4), s("k", 48, 200, 8), s("k", 48, 500, 16)}
	if got := fmt.Sprint(Fold(nil, in, 1)); got != fmt.Sprint([]Series{s("k", 48, 200, 9), s("k", 49, 200, 2), s("j", 48, 200, 4), s("k", 48, 500, 16)}) {
		t.Errorf("hourly: %s", got)
	}
	inPlace := append([]Series(nil), in...)
	if got := fmt.Sprint(Fold(inPlace[:0], inPlace, 1)); got != fmt.Sprint(Fold(nil, in, 1)) {
		t.Errorf("in place: %s", got)
	}
	daily := Fold(nil, in, 24)
	if len(daily) != 3 || daily[0].Hour != 2 || daily[0].Hits != 11 || daily[2].Hits != 16 {
		t.Errorf("daily: %+v", daily)
	}
}

func TestCounterRecordsAndDrains(t *testing.T) {
	c := NewCounter(0)
	for i := range 10 {
		c.Record("add2b342", "api1", now.UnixNano(), 200, 1, time.Duration(i)*time.Millisecond)
	}
	c.Record("add2b342", "api1", now.Add(-time.Hour).UnixNano(), 302, 1, -1)
	c.Record("5f1d9603", "api2", now.UnixNano(), 404, 2, -1)
	if c.Pending() != 13 || c.Recorded() != 13 || c.Series() != 3 {
		t.Errorf("pending %d, recorded %d, series %d", c.Pending(), c.Recorded(), c.Series())
	}
	got := Fold(nil, c.Drain(nil), 1)
	var hits, success, errs, latency int64
	for _, s := range got {
		hits, success, errs, latency = hits+s.Hits, success+s.Success, errs+s.Errors, latency+s.LatencyUS
	}
	if len(got) != 3 || hits != 13 || success != 10 || errs != 2 || latency != 45000 {
		t.Errorf("drained %+v", got)
	}
	if c.Pending() != 0 || len(c.Drain(nil)) != 0 {
		t.Error("a second drain found counts")
	}
}

func TestCounterBoundsSeries(t *testing.T) {
	c := NewCounter(3)
	for i := range 5 {
		c.Record(fmt.Sprint("key", i), "a", now.UnixNano(), 200, 1, -1)
	}
	if !c.Record("key0", "a", now.UnixNano(), 200, 1, -1) {
		t.Error("a hit of an existing series was refused")
	}
	if c.Series() != 3 || c.Dropped() != 2 || c.Recorded() != 4 {
		t.Errorf("series %d, dropped %d, recorded %d", c.Series(), c.Dropped(), c.Recorded())
	}
	// Series idle for three drains are forgotten, making room.
	for range 4 {
		c.Drain(nil)
	}
	if c.Series() != 0 || !c.Record("key4", "a", now.UnixNano(), 200, 1, -1) {
		t.Errorf("idle series kept: %d", c.Series())
	}
}

func TestCounterConcurrent(t *testing.T) {
	c := NewCounter(0)
	var wg sync.WaitGroup
	var drained []Series
	var mu sync.Mutex
	stop := make(chan struct{})
	drainer := make(chan struct{})
	go func() {
		defer close(drainer)
		for {
			select {
			case <-stop:
				return
			default:
			}
			d := c.Drain(nil)
			mu.Lock()
			drained = append(drained, d...)
			mu.Unlock()
		}
	}()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				c.Record(fmt.Sprintf("key%02d", (i+w)%20), "a", now.UnixNano(), 200+(i%3)*100, 1, -1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-drainer
	drained = append(drained, c.Drain(nil)...)
	var hits, success, errs int64
	for _, s := range drained {
		hits, success, errs = hits+s.Hits, success+s.Success, errs+s.Errors
	}
	if hits != 20000 || success != 4*1667 || errs != 4*1666 {
		t.Errorf("drained %d hits, %d success, %d errors; want 20000, 6668, 6664", hits, success, errs)
	}
}

// receiver is a /hits receiver that applies each chunk id once.
type receiver struct {
	mu      sync.Mutex
	seen    map[string][]byte
	hits    int64
	fail    int  // answers to fail after applying
	refuse  bool // refuse every body for good
	ids     []string
	refused atomic.Int64
}

func (r *receiver) send(_ context.Context, id string, body []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	if r.refuse {
		return Refused(errors.New("401"))
	}
	if prev, ok := r.seen[id]; ok {
		if !bytes.Equal(prev, body) {
			return fmt.Errorf("id %s sent again with other content", id)
		}
	} else {
		hits, err := Parse(body, now)
		if err != nil {
			return Refused(err)
		}
		r.seen[id] = append([]byte(nil), body...)
		for _, h := range hits {
			r.hits += *h.Count
		}
	}
	if r.fail > 0 {
		r.fail--
		return RetryAfter(time.Second, errors.New("answer lost"))
	}
	return nil
}

func TestBatcherResendsUntilAcknowledged(t *testing.T) {
	c := NewCounter(0)
	r := &receiver{seen: map[string][]byte{}, fail: 2}
	b := NewBatcher(c, r.send)
	ctx := context.Background()
	for i := range MaxPerRequest + 10 {
		c.Record(fmt.Sprintf("key%05d", i), "a", now.UnixNano(), 200, 1, -1)
	}
	if b.Flush(ctx) == nil {
		t.Fatal("a lost answer reported as sent")
	}
	c.Record("later", "a", now.UnixNano(), 200, 5, -1) // counted while a batch is in flight
	if b.Flush(ctx) == nil {
		t.Fatal("a lost answer reported as sent")
	}
	if b.Pending() != MaxPerRequest+15 {
		t.Errorf("pending %d, want %d", b.Pending(), MaxPerRequest+15)
	}
	if unsent, err := b.Close(ctx); err != nil || unsent != 0 {
		t.Fatalf("close: %d unsent, %v", unsent, err)
	}
	if r.hits != MaxPerRequest+15 || b.Sent() != MaxPerRequest+15 {
		t.Errorf("received %d hits, sent %d; want %d", r.hits, b.Sent(), MaxPerRequest+15)
	}
	// The first batch's first chunk three times (two answers lost),
	// then its second chunk, then a new batch with the later hits.
	ids := r.ids
	if len(ids) != 5 || ids[0] != ids[1] || ids[1] != ids[2] || !strings.HasSuffix(ids[0], "/0") ||
		!strings.HasSuffix(ids[3], "/1") || strings.TrimSuffix(ids[3], "/1") != strings.TrimSuffix(ids[0], "/0") ||
		!strings.HasSuffix(ids[4], "/0") || ids[4] == ids[0] {
		t.Errorf("ids sent: %v", ids)
	}
}

func TestBatcherDropsRefusedBodies(t *testing.T) {
	c := NewCounter(0)
	r := &receiver{seen: map[string][]byte{}, refuse: true}
	b := NewBatcher(c, r.send)
	c.Record("k", "a", now.UnixNano(), 200, 7, -1)
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.refuse = false
	c.Record("k", "a", now.UnixNano(), 200, 1, -1)
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.Refused() != 7 || b.Sent() != 1 || r.hits != 1 {
		t.Errorf("refused %d, sent %d, received %d", b.Refused(), b.Sent(), r.hits)
	}
}

// BenchmarkRecordExisting records hits of existing series from every
// goroutine, each walking the 1,000 series from its own offset, as a busy
// gateway's keys would. Run with -cpu 1,2 to see it scale.
func BenchmarkRecordExisting(b *testing.B) {
	c := NewCounter(0)
	keys := make([]string, 1000)
	t := now.UnixNano()
	for i := range keys {
		keys[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		c.Record(keys[i], "api", t, 200, 1, -1)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(389))
		for pb.Next() {
			c.Record(keys[i%len(keys)], "api", t, 200, 1, time.Millisecond)
			i++
		}
	})
}

// BenchmarkSeriesMemory reports the heap a Counter holds per series, with
// 100,000 series of distinct 16-character key hashes.
func BenchmarkSeriesMemory(b *testing.B) {
	for range b.N {
		keys := make([]string, 100000)
		for i := range keys {
			keys[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := NewCounter(0)
		for i, k := range keys {
			c.Record(k, "api-payments", now.UnixNano(), 200+i%2, 1, time.Millisecond)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(keys)), "bytes/series")
		runtime.KeepAlive(c)
	}
}

func TestValidateRefusesOverflowingCounts(t *testing.T) {
	for name, s := range map[string]Series{
		"success+errors wrap": {KeyHash: "k", Code: 200, Hits: 1, Success: 1 << 62, Errors: 1 << 62},
		"hits too many":       {KeyHash: "k", Code: 200, Hits: MaxSeriesHits + 1},
		"latency too large":   {KeyHash: "k", Code: 200, Hits: 1, LatencyUS: MaxSeriesLatencyUS + 1, LatencyCount: 1},
	} {
		if err := s.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
