package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

// Issue 19's burst target: after burstRequests mixed requests at
// burstConns connections, dockgate's RSS is back within burstSlackMiB of
// its idle RSS within burstSettle.
const (
	burstRequests = 13_000
	burstConns    = 16
	burstSlackMiB = 10.0
	burstSettle   = time.Minute
)

// burst sends burstRequests mixed requests (mixedLoad) through a dockgate
// of its own, then samples its VmRSS every second for up to burstSettle,
// until it is back within burstSlackMiB of what it was idle before the
// burst. A gate of its own, because the bed's has carried every earlier
// measurement: its idle would depend on what ran before, and on -only.
func (b *bench) burst(ctx context.Context) ([]row, error) {
	logf("burst: %s mixed requests at c=%d, then up to %v for RSS to settle", thousands(burstRequests), burstConns, burstSettle)
	gate, box, stop, err := b.ownGate(ctx, "burst")
	if err != nil {
		return nil, err
	}
	defer stop()
	idle, err := settledRSS(gate.Pid)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("burst of %s mixed requests at c=%d", thousands(burstRequests), burstConns)

	var peak rssPeak
	stopWatch := peak.watch(gate.Pid)
	load := newMixedLoad(gate.Socket, burstConns, box)
	start := time.Now()
	err = runBurst(ctx, load, burstConns, burstRequests)
	took := time.Since(start)
	load.close()
	stopWatch()
	logf("burst: %d requests in %v", burstRequests, took.Round(time.Millisecond))

	end, back, serr := waitRSS(ctx, gate.Pid, idle+int64(burstSlackMiB*1024), burstSettle)
	peakRow := row{Name: name + ": peak RSS", Unit: "MiB", Dockgate: mib(peak.max())}
	after := versus(row{Name: fmt.Sprintf("%s: RSS after, back within +%s MiB of idle", name, plain(burstSlackMiB)), Unit: "MiB",
		Direct: ptr(mib(idle)), Dockgate: mib(end), Added: ptr(round(mib(end) - mib(idle)))}, "idle before")
	settle := row{Name: name + ": time until RSS was back", Unit: "s", Dockgate: round(back.Seconds())}
	for _, e := range []error{err, peak.err, serr} {
		if e != nil {
			peakRow.Error, after.Error, settle.Error = e.Error(), e.Error(), e.Error()
			break
		}
	}
	within := end <= idle+int64(burstSlackMiB*1024)
	return []row{
		peakRow,
		withTarget(after, fmt.Sprintf("≤ +%s MiB in %v", plain(burstSlackMiB), burstSettle), within),
		withTarget(settle, fmt.Sprintf("≤ %v", burstSettle), within && back <= burstSettle),
	}, nil
}

// runBurst sends n requests of the mix from conns workers and returns the
// first failure.
func runBurst(ctx context.Context, load *mixedLoad, conns, n int) error {
	var (
		next, sent atomic.Int64
		wg         sync.WaitGroup
		once       sync.Once
		first      error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Load() < int64(n) && ctx.Err() == nil {
				k, err := load.op(ctx, int(next.Add(1)-1))
				sent.Add(int64(k))
				if err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// waitRSS samples pid's VmRSS every second until it is at most limit KiB
// or within is over, and returns the last sample and when it was taken
// (since the call).
func waitRSS(ctx context.Context, pid int, limit int64, within time.Duration) (kib int64, at time.Duration, err error) {
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if kib, err = procStatusKiB(pid, "VmRSS"); err != nil {
			return 0, time.Since(start), err
		}
		at = time.Since(start)
		if kib <= limit || at >= within {
			return kib, at, nil
		}
		select {
		case <-ctx.Done():
			return kib, at, ctx.Err()
		case <-t.C:
		}
	}
}

// settledRSS is pid's VmRSS after a second of nothing.
func settledRSS(pid int) (int64, error) {
	time.Sleep(time.Second)
	return procStatusKiB(pid, "VmRSS")
}

// ownGate starts a dockgate of its own, as the bed's (no extra
// arguments), and a container for the mix's inspects.
func (b *bench) ownGate(ctx context.Context, name string) (gate *testbed.Dockgate, box string, stop func(), err error) {
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	gate, err = testbed.StartDockgate(startCtx, b.bin, filepath.Join(b.dir, name, "g"), b.dockerd)
	cancel()
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s dockgate: %w", name, err)
	}
	box, remove, err := b.box(ctx)
	if err != nil {
		gate.Stop()
		return nil, "", nil, err
	}
	return gate, box, func() { remove(); gate.Stop() }, nil
}

// procFDs counts the open file descriptors of pid.
func procFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

func mib(kib int64) float64 { return round(float64(kib) / 1024) }
