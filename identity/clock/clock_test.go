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

// Coarse keeps up with the wall clock: after a second it has moved on by
// about a second. (The bounds are loose: a loaded machine may delay the
// ticker; what matters is that it ticks.)
func TestCoarseFollowsTheWallClock(t *testing.T) {
	first := Coarse()
	if d := time.Duration(time.Now().UnixNano() - first); d < 0 || d > time.Second {
		t.Errorf("Coarse is %v behind the wall clock when it starts", d)
	}
	time.Sleep(time.Second)
	if moved := time.Duration(Coarse() - first); moved < time.Second/2 || moved > 2*time.Second {
		t.Errorf("over a second Coarse moved %v", moved)
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
