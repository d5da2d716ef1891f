package clock

import (
	"testing"
	"time"
)

func TestStampFollowsTheWallClock(t *testing.T) {
	near := func(what string, got int64) {
		t.Helper()
		if d := time.Duration(got - time.Now().UnixNano()); d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("%s: stamp is %v off the wall clock", what, d)
		}
	}
	s := Now()
	near("fresh", s.Wall)
	if got := s.Time().UnixNano(); got != s.Wall {
		t.Errorf("Time() = %d, wall %d", got, s.Wall)
	}
	if e := s.Elapsed(); e < 0 || e > time.Second {
		t.Errorf("elapsed just after the stamp: %v", e)
	}

	// A stepped system clock: the offset a second old is wrong by an hour.
	// The next stamp reads the wall clock again and is right.
	offset.Add(int64(time.Hour))
	checked.Store(Mono() - int64(2*time.Second))
	near("after a step", Now().Wall)

	// Within the second, the stamp runs on the monotonic clock alone.
	offset.Add(int64(time.Hour))
	if d := time.Duration(Now().Wall - time.Now().UnixNano()); d < 59*time.Minute {
		t.Errorf("the wall clock was read again within the second (off by %v)", d)
	}
	checkWall(Mono())
	near("restored", Now().Wall)
}

func TestMonoIsMonotonic(t *testing.T) {
	a := Mono()
	time.Sleep(time.Millisecond)
	if b := Mono(); b-a < int64(time.Millisecond) {
		t.Errorf("Mono advanced %v over a 1 ms sleep", time.Duration(b-a))
	}
}

// Coarse keeps up with the wall clock, within its documented bound: over
// several ticks, no sample lags the wall clock read just before it by more
// than CoarseTick (plus a margin for a loaded machine delaying the ticker),
// and none runs ahead of the wall clock read just after it (plus a margin
// for the wall clock slewing against the monotonic one Coarse runs on).
// The samples span more than the lag bound, so a Coarse that stopped
// ticking fails.
func TestCoarseFollowsTheWallClock(t *testing.T) {
	const (
		lagMargin   = 100 * time.Millisecond
		aheadMargin = time.Millisecond
	)
	// Start the ticker and wait for a tick, so that no value stored
	// before this test (TestStampFollowsTheWallClock steps the offset)
	// is sampled.
	for first, deadline := Coarse(), time.Now().Add(10*time.Second); Coarse() == first; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Coarse did not tick")
		}
	}
	span := 2 * (CoarseTick + lagMargin)
	start := time.Now()
	samples := 0
	for time.Since(start) < span {
		before := time.Now().UnixNano()
		c := Coarse()
		after := time.Now().UnixNano()
		if lag := time.Duration(before - c); lag > CoarseTick+lagMargin {
			t.Fatalf("sample %d: Coarse lags the wall clock by %v", samples, lag)
		}
		if ahead := time.Duration(c - after); ahead > aheadMargin {
			t.Fatalf("sample %d: Coarse runs %v ahead of the wall clock", samples, ahead)
		}
		samples++
		time.Sleep(CoarseTick / 5)
	}
	if samples < 5 {
		t.Errorf("only %d samples in %v", samples, span)
	}
}

func BenchmarkCoarse(b *testing.B) {
	Coarse()
	for range b.N {
		_ = Coarse()
	}
}

func BenchmarkNow(b *testing.B) {
	for range b.N {
		_ = Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for range b.N {
		_ = time.Now()
	}
}
