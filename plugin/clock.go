package main

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The hooks read the time from a clock kept to within clockTick by a
// goroutine: time.Now can cost more than the rest of a response hook on
// virtual machines (docs/benchmarks.md), and neither an hour bucket nor a
// cache TTL of seconds needs better.
const clockTick = 50 * time.Millisecond

var (
	clockNow  atomic.Int64
	clockOnce sync.Once
)

func nowNano() int64 {
	clockOnce.Do(func() {
		clockNow.Store(time.Now().UnixNano())
		go func() {
			for t := range time.Tick(clockTick) {
				clockNow.Store(t.UnixNano())
			}
		}()
	})
	return clockNow.Load()
}

// hintOf spreads concurrent requests over the cache's lock stripes.
func hintOf(r *http.Request) uint64 {
	return uint64(uintptr(unsafe.Pointer(r)) >> 7)
}
