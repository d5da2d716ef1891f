package guard

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := New(3, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if _, blocked := l.Blocked("a"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("a")
	}
	if left, blocked := l.Blocked("a"); !blocked || left != time.Minute {
		t.Errorf("after 3 failures: %v %v, want blocked for a minute", left, blocked)
	}
	if _, blocked := l.Blocked("b"); blocked {
		t.Error("another subject is blocked")
	}
	now = now.Add(40 * time.Second)
	if left, blocked := l.Blocked("a"); !blocked || left != 20*time.Second {
		t.Errorf("40 s later: %v %v", left, blocked)
	}
	now = now.Add(20 * time.Second)
	if _, blocked := l.Blocked("a"); blocked {
		t.Error("still blocked once the window passed")
	}
	l.Fail("a")
	l.Fail("a")
	l.Succeed("a")
	l.Fail("a")
	if _, blocked := l.Blocked("a"); blocked {
		t.Error("a success did not clear the failures")
	}
}

func TestLimiterBounded(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := New(1, time.Minute)
	l.now = func() time.Time { return now }
	l.maxSubjects = 100
	for i := range 1000 {
		l.Fail(fmt.Sprint("s", i))
	}
	if len(l.m) != 100 {
		t.Errorf("%d subjects remembered, want at most 100", len(l.m))
	}
	now = now.Add(time.Minute)
	l.Fail("late")
	if _, blocked := l.Blocked("late"); !blocked || len(l.m) != 1 {
		t.Errorf("expired records not pruned: %d", len(l.m))
	}
	var off *Limiter
	off.Fail("x")
	if _, blocked := off.Blocked("x"); blocked {
		t.Error("a nil limiter blocks")
	}
}
