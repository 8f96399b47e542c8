package main

import "testing"

func TestMemoryReturnedAfterABurst(t *testing.T) {
	for _, tc := range []struct {
		name string
		// requests received by each tick, and the free heap then
		requests []uint64
		free     uint64
		want     int // releases
	}{
		{"no request ever: nothing to return", []uint64{0, 0, 0, 0}, 64 << 20, 0},
		{"a burst then a quiet period: returned once", []uint64{5000, 13000, 13000, 13000, 13000}, 20 << 20, 1},
		{"a steady trickle never waits for a GC", []uint64{1, 2, 3, 4, 5, 6}, 20 << 20, 0},
		{"two bursts, two quiet periods", []uint64{100, 100, 300, 300, 300}, 20 << 20, 2},
		{"little free heap is not worth a GC", []uint64{5000, 5000}, 1 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n uint64
			released := 0
			m := &memoryReturner{requests: func() uint64 { return n }, free: func() uint64 { return tc.free }, release: func() { released++ }}
			for _, r := range tc.requests {
				n = r
				m.check()
			}
			if released != tc.want {
				t.Errorf("released %d times, want %d", released, tc.want)
			}
		})
	}
}
