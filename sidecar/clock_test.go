package sidecar

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
	s := now()
	near("fresh", s.wall)
	if got := s.Time().UnixNano(); got != s.wall {
		t.Errorf("Time() = %d, wall %d", got, s.wall)
	}
	if e := s.elapsed(); e < 0 || e > time.Second {
		t.Errorf("elapsed just after the stamp: %v", e)
	}

	// A stepped system clock: the offset a second old is wrong by an hour.
	// The next stamp reads the wall clock again and is right.
	clockOffset.Add(int64(time.Hour))
	clockChecked.Store(monoNow() - int64(2*time.Second))
	near("after a step", now().wall)

	// Within the second, the stamp runs on the monotonic clock alone.
	clockOffset.Add(int64(time.Hour))
	if d := time.Duration(now().wall - time.Now().UnixNano()); d < 59*time.Minute {
		t.Errorf("the wall clock was read again within the second (off by %v)", d)
	}
	checkWallClock(monoNow())
	near("restored", now().wall)
}
