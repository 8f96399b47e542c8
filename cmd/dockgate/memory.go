package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Giving memory back after a burst.
//
// A burst of requests (a CI fleet starting its jobs at once) grows the heap,
// and Go's background scavenger returns the free pages to the kernel only
// slowly, over minutes, and not at all while no allocation starts a GC: a
// proxy left idle after 13,000 requests kept 55 MiB resident. So once a
// period passes without a request after one with some, the heap's free
// pages are returned at once, when there are enough of them to matter.
// That costs one full GC (milliseconds on dockgate's heap) per quiet
// period after activity; a steady trickle of requests never triggers it,
// and does not grow the heap either.

// quietPeriod is how long dockgate must have had no request before it
// returns memory.
const quietPeriod = 5 * time.Second

// minReturn is the free heap below which returning it is not worth a GC.
const minReturn = 2 << 20

// memoryReturner returns free heap memory after bursts.
type memoryReturner struct {
	requests func() uint64 // requests received so far
	free     func() uint64 // free heap bytes not yet returned
	release  func()        // returns them
	last     uint64        // requests at the last check
	busy     bool          // requests came in since the check before
}

func newMemoryReturner(requests func() uint64) *memoryReturner {
	return &memoryReturner{requests: requests, free: heapFree, release: debug.FreeOSMemory, last: requests()}
}

// run checks every quietPeriod until ctx ends.
func (m *memoryReturner) run(ctx context.Context) {
	t := time.NewTicker(quietPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.check()
		}
	}
}

// check returns the free heap when the period since the last check was
// quiet and the one before was not.
func (m *memoryReturner) check() {
	if n := m.requests(); n != m.last {
		m.last, m.busy = n, true
		return
	}
	if m.busy && m.free() >= minReturn {
		m.release()
	}
	m.busy = false
}

// heapFree is the heap memory that is free and still held from the kernel.
func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
