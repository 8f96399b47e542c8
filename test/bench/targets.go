package main

import (
	"fmt"
	"strconv"
)

// What a row's Direct holds when it is not dockerd (row.Base).
const (
	baseRelay = "bare relay"
	baseRoot  = "root"
)

// versus names what r's Direct holds.
func versus(r row, base string) row {
	r.Base = base
	return r
}

// atLeast sets the target "dockgate reaches ratio × the base".
func atLeast(r row, ratio float64) row {
	return withTarget(r, fmt.Sprintf("≥ %.2f×", ratio), r.Ratio != nil && *r.Ratio >= ratio)
}

// atMostRatio sets the target "dockgate takes at most ratio × the base"
// (latencies).
func atMostRatio(r row, ratio float64) row {
	return withTarget(r, fmt.Sprintf("≤ %.2f×", ratio), r.Ratio != nil && *r.Ratio <= ratio)
}

// atMost sets the target "dockgate's own value is at most limit".
func atMost(r row, limit float64) row {
	return withTarget(r, fmt.Sprintf("≤ %s %s", plain(limit), r.Unit), r.Dockgate <= limit)
}

// atMostAdded sets the target "dockgate adds at most limit to the base".
func atMostAdded(r row, limit float64) row {
	return withTarget(r, fmt.Sprintf("≤ +%s %s", plain(limit), r.Unit), r.Added != nil && *r.Added <= limit)
}

// withTarget records a target; a row that failed to measure never passes.
func withTarget(r row, target string, pass bool) row {
	r.Target = target
	pass = pass && r.Error == ""
	r.Pass = &pass
	return r
}

// plain writes a limit as it was given: 20, 0.5, 200.
func plain(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
