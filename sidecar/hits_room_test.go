package sidecar_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/sidecar"
)

// heldStore holds every commit until release is closed, and counts the
// series it was given.
type heldStore struct {
	release chan struct{}
	series  atomic.Int64
}

func (h *heldStore) AddHits(ctx context.Context, b []keylens.HitBatch) ([]bool, error) {
	<-h.release
	applied := make([]bool, len(b))
	for i := range b {
		h.series.Add(int64(len(b[i].Series)))
		applied[i] = true
	}
	return applied, nil
}

// busyHits returns a /hits handler whose committer is full: a commit of
// max series is held by the store.
func busyHits(t testing.TB, max int) (fasthttp.RequestHandler, *heldStore, func()) {
	store := &heldStore{release: make(chan struct{})}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{MaxQueuedRows: max})
	held := make(chan error, 1)
	go func() {
		s := make([]keylens.HitDelta, max)
		for i := range s {
			s[i] = keylens.HitDelta{KeyHash: fmt.Sprintf("%08x", i), APIID: "a", Hour: 1, Code: 200, Hits: 1, Success: 1}
		}
		_, err := c.AddHits(context.Background(), []keylens.HitBatch{{ID: "held", Series: s}})
		held <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); c.Pending() < int64(max); {
		if time.Now().After(deadline) {
			t.Fatal("the held commit never started")
		}
		time.Sleep(time.Millisecond)
	}
	srv, err := sidecar.NewServer(sidecar.Config{Resolver: newFixture(t).r, Hits: c, HitsAndChangesSecret: "hits-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler(), store, func() {
		close(store.release)
		if err := <-held; err != nil {
			t.Error(err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

func postHits(h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx, secret string, body []byte) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/hits")
	ctx.Request.Header.Set("Authorization", "Bearer "+secret)
	ctx.Request.SetBody(body)
	h(ctx)
}

// TestHitsRefusedBeforeParsing: with the committer full, POST /hits
// answers 503 with Retry-After before it parses the body: a malformed body
// is refused for want of room (503), not for its form (400), and nothing
// reaches the store. A wrong secret is refused before either (401).
func TestHitsRefusedBeforeParsing(t *testing.T) {
	h, store, release := busyHits(t, 10)
	var ctx fasthttp.RequestCtx
	for _, c := range []struct {
		name, secret, body string
		status             int
	}{
		{"malformed", "hits-secret-0123456789", `[{"key":`, 503},
		{"valid", "hits-secret-0123456789", `[{"key":"add2b342","api_id":"a","code":200}]`, 503},
		{"wrong secret", "nope", `[{"key":`, 401},
	} {
		postHits(h, &ctx, c.secret, []byte(c.body))
		if got := ctx.Response.StatusCode(); got != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, got, ctx.Response.Body(), c.status)
		}
		if c.status == 503 && string(ctx.Response.Header.Peek("Retry-After")) != "1" {
			t.Errorf("%s: 503 without Retry-After", c.name)
		}
	}
	release()
	if n := store.series.Load(); n != 10 {
		t.Errorf("the store was given %d series, want only the held commit's 10", n)
	}
}

// BenchmarkHitsRefused: the whole POST /hits handler refusing a
// 10,000-element batch (about 600 kB) because the committer is full,
// against parsing it (what a refusal cost before it came first).
//
//	go test -run=NONE -bench=HitsRefused -benchtime=2000x ./sidecar/
func BenchmarkHitsRefused(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 10000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"key":"%08x","api_id":"api-%d","code":200,"count":1}`, i, i%10)
	}
	body.WriteByte(']')
	h, _, release := busyHits(b, 10)
	defer release()
	var ctx fasthttp.RequestCtx
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		postHits(h, &ctx, "hits-secret-0123456789", body.Bytes())
		if ctx.Response.StatusCode() != 503 {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
}

// TestHitsBodiesWaitForAParsingSlot: the server decodes POST /hits bodies
// in its parsing slots, half the CPUs (one at least): with every slot
// taken, a body waits, and is stored once one is given back.
func TestHitsBodiesWaitForAParsingSlot(t *testing.T) {
	store := &heldStore{release: make(chan struct{})}
	close(store.release) // commits go through
	c := analytics.NewCommitter(store, analytics.CommitterOptions{})
	defer c.Close(context.Background())
	srv, err := sidecar.NewServer(sidecar.Config{Resolver: newFixture(t).r, Hits: c, HitsAndChangesSecret: "hits-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	slots := sidecar.ParsingSlots(srv)
	if n := max(1, runtime.GOMAXPROCS(0)/2); cap(slots) != n {
		t.Errorf("%d parsing slots, want %d", cap(slots), n)
	}
	for range cap(slots) { // other bodies'
		slots <- struct{}{}
	}
	done := make(chan int)
	go func() {
		var ctx fasthttp.RequestCtx
		postHits(srv.Handler(), &ctx, "hits-secret-0123456789", []byte(`[{"key":"add2b342","api_id":"a","code":200}]`))
		done <- ctx.Response.StatusCode()
	}()
	select {
	case status := <-done:
		t.Fatalf("answered %d with every parsing slot taken", status)
	case <-time.After(100 * time.Millisecond):
	}
	for range cap(slots) {
		<-slots
	}
	if status := <-done; status != 200 || store.series.Load() != 1 {
		t.Errorf("once a slot is free: %d, %d series stored; want 200 and 1", status, store.series.Load())
	}
}
