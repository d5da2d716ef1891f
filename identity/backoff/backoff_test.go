package backoff

import (
	"context"
	"testing"
	"time"
)

func waits(b *Backoff, n int) []time.Duration {
	var ds []time.Duration
	for range n {
		ds = append(ds, b.Next())
	}
	return ds
}

func equal(t *testing.T, what string, got, want []time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}

func TestDoublesUpToMax(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	equal(t, "waits", waits(&b, 6), []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, time.Second, time.Second,
	})
}

func TestMinAboveMaxIsCapped(t *testing.T) {
	b := Backoff{Min: 2 * time.Minute, Max: time.Minute}
	equal(t, "waits", waits(&b, 2), []time.Duration{time.Minute, time.Minute})
}

func TestNoMaxNoCap(t *testing.T) {
	b := Backoff{Min: 50 * time.Millisecond}
	equal(t, "waits", waits(&b, 4), []time.Duration{
		50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
	})
	b = Backoff{Min: time.Duration(1) << 61}
	if d := waits(&b, 4)[3]; d != maxDuration {
		t.Errorf("doubling past the largest duration: %v, want %v", d, maxDuration)
	}
}

func TestReset(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: time.Second}
	waits(&b, 5)
	b.Reset()
	equal(t, "after Reset", waits(&b, 2), []time.Duration{10 * time.Millisecond, 20 * time.Millisecond})
}

func TestRaise(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Minute}
	b.Next()
	if d := b.Raise(50 * time.Millisecond); d != 100*time.Millisecond {
		t.Errorf("Raise below the wait: %v, want 100ms", d)
	}
	if d := b.Raise(30 * time.Second); d != 30*time.Second {
		t.Errorf("Raise: %v, want 30s", d)
	}
	if d := b.Next(); d != time.Minute {
		t.Errorf("Next after Raise: %v, want 1m (doubled, capped)", d)
	}
	if d := b.Raise(time.Hour); d != time.Minute {
		t.Errorf("Raise above Max: %v, want 1m", d)
	}
}

func TestWaitSleeps(t *testing.T) {
	b := Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	start := time.Now()
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("Wait took %v, want at least 20ms", took)
	}
	if d := b.Next(); d != 40*time.Millisecond {
		t.Errorf("Wait did not take a wait: Next %v, want 40ms", d)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	b := Backoff{Min: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx) }()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Wait: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return when its context ended")
	}
}
