package identity_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens/identity"
)

// Follow starts where the feed is, drops everything at the start and on a
// reset, applies changes in order, asks from where it was left, retries a
// failure with a doubling backoff that an answer resets, and ends with ctx
// without reporting the failure that ending caused.
func TestFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	down := errors.New("down")
	type answer struct {
		ch  *identity.Changes
		err error
	}
	script := []answer{
		{err: down}, // the start fails: asked again from -1
		{ch: &identity.Changes{Last: 7}},
		{ch: &identity.Changes{Changes: []identity.Change{{Seq: 8}, {Seq: 9}}, Last: 9}},
		{err: down},
		{err: down},
		{err: down},
		{err: down},
		{ch: &identity.Changes{Last: 9}},
		{err: down},
		{ch: &identity.Changes{Changes: []identity.Change{{Seq: 20}}, Last: 20, Reset: true}},
	}
	var log []string
	poll := func(ctx context.Context, after int64) (*identity.Changes, error) {
		log = append(log, fmt.Sprintf("poll %d", after))
		if len(script) == 0 {
			cancel()
			return nil, ctx.Err()
		}
		a := script[0]
		script = script[1:]
		return a.ch, a.err
	}
	identity.Follow(ctx, poll, func(c identity.Change) { log = append(log, fmt.Sprintf("apply %d", c.Seq)) }, identity.FollowOptions{
		Reset: func(start bool) { log = append(log, fmt.Sprintf("reset start=%v", start)) },
		Answered: func(ch *identity.Changes, start bool, at time.Time) {
			log = append(log, fmt.Sprintf("answered %d start=%v", ch.Last, start))
		},
		Failed: func(err error, retryIn time.Duration) {
			log = append(log, fmt.Sprintf("failed %v, retry in %v", err, retryIn))
		},
		MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
	})
	want := []string{
		"poll -1", "failed down, retry in 1ms",
		"poll -1", "reset start=true", "answered 7 start=true",
		"poll 7", "apply 8", "apply 9", "answered 9 start=false",
		"poll 9", "failed down, retry in 1ms",
		"poll 9", "failed down, retry in 2ms",
		"poll 9", "failed down, retry in 4ms",
		"poll 9", "failed down, retry in 4ms",
		"poll 9", "answered 9 start=false",
		"poll 9", "failed down, retry in 1ms",
		"poll 9", "reset start=false", "apply 20", "answered 20 start=false",
		"poll 20",
	}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(log, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// Follow returns when ctx ends during the wait after a failure.
func TestFollowEndsDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		identity.Follow(ctx, func(context.Context, int64) (*identity.Changes, error) { return nil, errors.New("down") },
			func(identity.Change) {}, identity.FollowOptions{
				Reset:      func(bool) {},
				Failed:     func(error, time.Duration) { cancel() },
				MinBackoff: time.Hour,
			})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow waited out its backoff after ctx ended")
	}
}
