package main

import (
	"testing"
	"time"
)

// Every side runs first, second and third equally often, and the shares
// pair the slices of the same round.
func TestAlternateTurnsTheOrder(t *testing.T) {
	var order []int
	ts := alternate(6, 6*time.Second, 3, func(tl *tally, side int, d time.Duration) {
		if d != time.Second {
			t.Fatalf("slice of %v, want 1s", d)
		}
		order = append(order, side)
		tl.add(100*(side+1)+len(order), d, nil)
	})
	var places [3][3]int // side, place in its round
	for i, side := range order {
		places[side][i%3]++
	}
	for side, p := range places {
		if p != [3]int{2, 2, 2} {
			t.Errorf("side %d ran first, second and third %v times, want 2 each (order %v)", side, p, order)
		}
	}
	shares := roundShares(&ts[1], &ts[2])
	if len(shares) != 6 {
		t.Fatalf("%d shares, want 6", len(shares))
	}
	for round, got := range shares {
		if want := ts[1].rates[round] / ts[2].rates[round]; got != want {
			t.Errorf("round %d: share %v, want %v", round, got, want)
		}
	}
}
