package main

import (
	"net/http"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/keylens/keylens/identity/clock"
)

// A request's latency is measured from the first keylens hook of its API
// (the auth or post-auth hook) to the response hook, on the monotonic
// clock: the upstream's time and the gateway's work in between.
//
// The gateway offers no request start time in the context (its ctx keys
// hold none), and putting one there costs the hook two allocations and a
// copy of the request (context.WithValue, then *r = *r.WithContext: about
// 160 ns measured), which the post-auth hook cannot afford. So the
// request hook writes its start, its API's state and the key hash into a
// slot of a fixed table, found by the address of the request's header map:
// the gateway hands the same map from the first hook to the response hook,
// even through the request copy it makes when tracing. The response hook
// takes the slot back; when it does not find it (another request took the
// slot meanwhile, or the map changed), the hit is counted without a
// latency. Nothing is allocated either way.
const stampSlots = 4096 // a power of two

type stampSlot struct {
	hdr   atomic.Uintptr // the request's header map; 0 when free
	start atomic.Int64   // clock.Mono at the first hook
	st    atomic.Pointer[apiState]
	key   atomic.Pointer[string] // the key hash, from the shared identity
	_     [32]byte               // one slot a cache line
}

var stamps [stampSlots]stampSlot

func headerAddr(h http.Header) uintptr { return *(*uintptr)(unsafe.Pointer(&h)) }

func slotOf(addr uintptr) *stampSlot {
	return &stamps[(uint64(addr>>4)*0x9E3779B97F4A7C15)>>(64-12)]
}

// stamp records that r, of the API st, for the key keyHash, started at
// start (clock.Mono), overwriting whatever held the slot.
func stamp(r *http.Request, st *apiState, keyHash *string, start int64) {
	addr := headerAddr(r.Header)
	if addr == 0 {
		return
	}
	s := slotOf(addr)
	s.hdr.Store(0)
	s.start.Store(start)
	s.st.Store(st)
	s.key.Store(keyHash)
	s.hdr.Store(addr)
}

// claimStamp takes r's slot back: its API, key hash and latency so far.
func claimStamp(r *http.Request) (*apiState, string, time.Duration, bool) {
	addr := headerAddr(r.Header)
	if addr == 0 {
		return nil, "", 0, false
	}
	s := slotOf(addr)
	if s.hdr.Load() != addr {
		return nil, "", 0, false
	}
	start, st, key := s.start.Load(), s.st.Load(), s.key.Load()
	// Another request may have overwritten the slot since the first
	// load; then this fails and what was read is discarded.
	if !s.hdr.CompareAndSwap(addr, 0) || st == nil || key == nil {
		return nil, "", 0, false
	}
	d := time.Duration(clock.Mono() - start)
	if d < 0 {
		d = -1
	}
	return st, *key, d, true
}
