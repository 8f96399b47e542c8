//go:build race

package testbed

// RaceEnabled is true in a binary built with -race; Main then builds dockgate
// with -race too, so that the e2e suite also hunts data races in the proxy.
const RaceEnabled = true
