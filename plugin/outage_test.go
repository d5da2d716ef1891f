package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An outage is logged when it starts, at most every 10 s while it lasts
// with the number of failures not logged, and when it ends: never once per
// failed request.
func TestOutageLogsStateChanges(t *testing.T) {
	var lines []string
	clock := time.Unix(1000, 0)
	o := newOutage("the keylens sidecar at http://s", "asking")
	o.now = func() time.Time { return clock }
	o.logf = func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }

	for range 100 {
		o.ok() // up: nothing to say
	}
	for i := range 1000 { // 1000 failures over 25 s
		clock = time.Unix(1000, 0).Add(time.Duration(i) * 25 * time.Millisecond)
		o.failed(errors.New("connection refused"))
	}
	clock = clock.Add(time.Second)
	o.ok()
	o.ok()
	want := []string{
		"Asking the keylens sidecar at http://s failed, down: connection refused",
		"the keylens sidecar at http://s still down for 10s: 400 failures not logged since the last line; the last: connection refused",
		"the keylens sidecar at http://s still down for 20s: 400 failures not logged since the last line; the last: connection refused",
		"the keylens sidecar at http://s is back after 25.975s down and 1000 failures",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if o.down() {
		t.Error("still down after a success")
	}
}
