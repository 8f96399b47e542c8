package main

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The soak: mixed requests at a bounded rate through a dockgate of its own
// for cfg.soak, on loopback (the gate's Unix socket) only. Issue 19: no
// growth — RSS at the end within soakSlackMiB of RSS a tenth of the way
// in (the heap has reached its working size by then), and the fds back to
// what they were before the first request once the client has gone.
const (
	soakConns    = 4
	soakPause    = 2 * time.Millisecond // after each op, per connection
	soakMaxRate  = 1000                 // requests per second at most, on average: the count bound
	soakSlackMiB = 5.0
	soakFDWait   = 10 * time.Second
)

// soakRows is the soak measurement; without -soak it measures nothing.
func (b *bench) soakRows(ctx context.Context) ([]row, error) {
	if b.cfg.soak <= 0 {
		logf("soak: skipped (give -soak DURATION, e.g. make bench BENCH_ARGS=-soak=30m)")
		return nil, nil
	}
	logf("soak: %v of mixed requests at c=%d", b.cfg.soak, soakConns)
	gate, box, stop, err := b.ownGate(ctx, "soak")
	if err != nil {
		return nil, err
	}
	defer stop()
	if _, err := settledRSS(gate.Pid); err != nil {
		return nil, err
	}
	fds0, err := procFDs(gate.Pid)
	if err != nil {
		return nil, err
	}
	s := soakRun(ctx, newMixedLoad(gate.Socket, soakConns, box), gate.Pid, b.cfg.soak)
	fds1, ferr := waitFDs(ctx, gate.Pid, fds0, soakFDWait)
	return soakResult(b.cfg.soak, s, fds0, fds1, errors.Join(s.err, ferr)), nil
}

// soaked is what a soak saw: requests sent, and the gate's RSS and
// threads a tenth of the way in and at the end.
type soaked struct {
	requests      int64
	rss10, rssEnd int64 // KiB
	thr10, thrEnd int64
	err           error
}

func soakRun(ctx context.Context, load *mixedLoad, pid int, d time.Duration) soaked {
	var (
		s    soaked
		sent atomic.Int64
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
	)
	limit := int64(d.Seconds() * soakMaxRate)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if s.err == nil {
			s.err = err
			cancel()
		}
	}
	for range soakConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pause := time.NewTimer(0)
			defer pause.Stop()
			for sent.Load() < limit {
				select {
				case <-ctx.Done():
					return
				case <-pause.C:
				}
				k, err := load.op(ctx, int(next.Add(1)-1))
				sent.Add(int64(k))
				if err != nil && ctx.Err() == nil {
					fail(err)
					return
				}
				pause.Reset(soakPause)
			}
		}()
	}
	// A tenth of the way in, the heap has its working size: what comes
	// after is growth.
	select {
	case <-ctx.Done():
	case <-time.After(d / 10):
		var err error
		if s.rss10, err = procStatusKiB(pid, "VmRSS"); err == nil {
			s.thr10, err = procStatusKiB(pid, "Threads")
		}
		if err != nil {
			fail(err)
		}
	}
	wg.Wait()
	load.close()
	s.requests = sent.Load()
	var err error
	if s.rssEnd, err = procStatusKiB(pid, "VmRSS"); err == nil {
		s.thrEnd, err = procStatusKiB(pid, "Threads")
	}
	if err != nil && s.err == nil {
		s.err = err
	}
	if s.rss10 == 0 && s.err == nil {
		s.err = errors.New("the soak ended before a tenth of it")
	}
	return s
}

// waitFDs waits up to within for pid's fds to be back to want (the gate
// closes a connection when it sees the client's close) and returns the
// last count.
func waitFDs(ctx context.Context, pid, want int, within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for {
		n, err := procFDs(pid)
		if err != nil || n <= want || time.Now().After(deadline) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func soakResult(d time.Duration, s soaked, fds0, fds1 int, err error) []row {
	name := "soak " + d.String()
	count := row{Name: name + ": requests", Unit: "count", Dockgate: float64(s.requests)}
	rss := versus(row{Name: name + ": RSS at the end", Unit: "MiB", Direct: ptr(mib(s.rss10)), Dockgate: mib(s.rssEnd),
		Added: ptr(round(mib(s.rssEnd) - mib(s.rss10)))}, "10% in")
	thr := versus(row{Name: name + ": threads at the end", Unit: "count", Direct: ptr(float64(s.thr10)), Dockgate: float64(s.thrEnd)}, "10% in")
	fds := versus(row{Name: name + ": open fds after the client left", Unit: "count", Direct: ptr(float64(fds0)), Dockgate: float64(fds1),
		Added: ptr(float64(fds1 - fds0))}, "before")
	if err != nil {
		for _, r := range []*row{&count, &rss, &thr, &fds} {
			r.Error = err.Error()
		}
	}
	return []row{
		count,
		atMostAdded(rss, soakSlackMiB),
		thr,
		withTarget(fds, "= before ("+strconv.Itoa(fds0)+")", fds1 <= fds0),
	}
}
