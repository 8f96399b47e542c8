package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The /_ping targets of issue 19, all against the bare relay measured in
// the same alternation: a separate process on two cores cannot reach
// dockerd's own rate, so direct is shown but carries no target.
const (
	pingRelayRatio = 0.85 // dockgate's rate at c=16 over the relay's
	pingAddedP50   = 15.0 // µs dockgate's p50 at c=1 may add to the relay's
	pingCPU        = 20.0 // µs of dockgate CPU per /_ping at c=16
)

// ping is the proxy's own cost: /_ping is the cheapest call dockerd has.
// Latency is taken at concurrency 1, where it is not queueing; CPU per
// request at 16, where the rate is throughput-bound and per-request
// wake-ups are shared. The bare relay (relay.go) is measured in the same
// alternation, as the floor the targets are set against, and its own CPU
// per request beside dockgate's: on a VM where a syscall or a context
// switch costs tens of µs, the relay's CPU is what any separate process
// pays before it does any work of its own.
func (b *bench) ping(ctx context.Context) ([]row, error) {
	relay, relayPid, stopRelay, err := startRelay(ctx, b.dir, b.directSocket, "ping")
	if err != nil {
		return nil, err
	}
	defer stopRelay()
	sockets := []string{b.directSocket, b.proxySocket, relay}
	var rows []row
	for _, c := range []int{1, 16} {
		// Three times the rounds of the other rates, in slices of the
		// same length: the target leaves dockgate a few percent, about
		// what a 1 s slice moves from one round to the next here.
		rounds := pingRoundsPer * b.cfg.rounds
		logf("/_ping at concurrency %d (%d rounds)", c, rounds)
		ts := alternate(rounds, pingRoundsPer*b.cfg.duration, len(sockets), func(t *tally, side int, d time.Duration) {
			var before cpuSample
			hammerClocked(ctx, t, sockets[side], "/_ping", c, d, func(start bool) {
				if start {
					before = b.cpuSample(relayPid)
				} else {
					t.addCPU(before, b.cpuSample(relayPid))
				}
			})
		})
		dt, gt, rt := &ts[0], &ts[1], &ts[2]
		for i := range min(len(dt.rates), len(gt.rates), len(rt.rates)) {
			logf("  round %d: direct %.0f, dockgate %.0f, relay %.0f req/s", i+1, dt.rates[i], gt.rates[i], rt.rates[i])
		}
		name := fmt.Sprintf("/_ping c=%d", c)
		// dockgate's share of the relay's rate is taken round by round,
		// from slices next to each other in time, as the streams' is.
		vsRelay := pairedShare(versus(rate(name+" dockgate vs bare relay", "req/s", rt.rate(), gt.rate(), errors.Join(rt.err, gt.err)), baseRelay), roundShares(gt, rt))
		if c == 16 {
			vsRelay = atLeast(vsRelay, pingRelayRatio)
		}
		rows = append(rows,
			rate(name, "req/s", dt.rate(), gt.rate(), errors.Join(dt.err, gt.err)),
			rate(name+" bare relay (floor)", "req/s", dt.rate(), rt.rate(), errors.Join(dt.err, rt.err)),
			vsRelay)
		rows = append(rows, b.cpuRows(name, dt, gt)...)
		rows = append(rows, relayCPURows(name, gt, rt, c == 16)...)
		if c == 1 {
			rows = append(rows, pingLatencyRows(dt, gt, rt)...)
		}
	}
	return rows, nil
}

// pingRoundsPer is how many more rounds /_ping takes than -rounds.
const pingRoundsPer = 3

// roundShares are a's rates over b's, slice by slice.
func roundShares(a, b *tally) []float64 {
	var shares []float64
	for i := range min(len(a.rates), len(b.rates)) {
		if b.rates[i] > 0 {
			shares = append(shares, a.rates[i]/b.rates[i])
		}
	}
	return shares
}

// pingLatencyRows are the c=1 latencies: against dockerd for the record,
// and the target on what dockgate adds over the relay.
func pingLatencyRows(dt, gt, rt *tally) []row {
	err := errors.Join(dt.err, gt.err)
	p50 := latency("/_ping p50", percentile(dt.lats, 0.50), percentile(gt.lats, 0.50), err)
	p99 := latency("/_ping p99", percentile(dt.lats, 0.99), percentile(gt.lats, 0.99), err)
	floor := latency("/_ping p50 bare relay (floor)", percentile(dt.lats, 0.50), percentile(rt.lats, 0.50), errors.Join(dt.err, rt.err))
	overRelay := versus(latency("/_ping p50 c=1 added over the bare relay", percentile(rt.lats, 0.50), percentile(gt.lats, 0.50), errors.Join(rt.err, gt.err)), baseRelay)
	return []row{p50, p99, floor, atMostAdded(overRelay, pingAddedP50)}
}

// relayCPURows put the relay's CPU per request beside dockgate's, and
// dockgate's over the relay's: what dockgate's own work costs. The targets
// go on both rows at the throughput concurrency; which one is reachable on
// a machine is for the issue to say.
func relayCPURows(name string, gt, rt *tally, target bool) []row {
	dg, rl := gt.cpuPerOp(func(u *cpuUse) time.Duration { return u.dockgate }), rt.cpuPerOp(func(u *cpuUse) time.Duration { return u.relay })
	suffix := ""
	if target {
		suffix = " (throughput)"
	}
	abs := row{Name: name + " dockgate CPU per /_ping" + suffix, Unit: "µs", Dockgate: round(dg)}
	rel := row{Name: name + " bare relay CPU per /_ping", Unit: "µs", Dockgate: round(rl)}
	over := versus(row{Name: name + " dockgate CPU per /_ping over the relay's" + suffix, Unit: "µs", Direct: ptr(round(rl)), Dockgate: round(dg), Added: ptr(round(dg - rl))}, baseRelay)
	if err := cmpOr(gt.cpu.err, rt.cpu.err, gt.err, rt.err); err != nil {
		abs.Error, rel.Error, over.Error = err.Error(), err.Error(), err.Error()
	}
	if target {
		abs, over = atMost(abs, pingCPU), atMostAdded(over, pingCPU)
	}
	return []row{abs, rel, over}
}

func ptr[T any](v T) *T { return &v }
