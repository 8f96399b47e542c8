package main

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// startExpiryGC removes what expired (runGC with expired, as `dockgate gc
// --expired` does) every interval until ctx ends, logging what it did as
// operational log lines: the audit trail records callers' requests, and
// these are dockgate's own. The first run is one interval after startup,
// not at once, so that a dockgate restarted in a loop does not hammer
// dockerd. The returned function stops the loop and waits for it, a run
// in progress included; interval 0 starts nothing.
func startExpiryGC(ctx context.Context, d gcDocker, interval time.Duration, log zerolog.Logger) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		expiryGCLoop(ctx, d, interval, log)
	}()
	log.Info().Str("gc_interval", interval.String()).Msg("gc: removing expired tenant objects periodically")
	return func() {
		cancel()
		wg.Wait()
	}
}

// gcIdleCloser is *dockerd.Client's Close, which only drops idle
// connections: the client stays usable.
type gcIdleCloser interface{ Close() error }

func expiryGCLoop(ctx context.Context, d gcDocker, interval time.Duration, log zerolog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	// What was already reported, so that an object gc cannot judge or
	// remove (a network still in use), or a dockerd that stays down, is
	// logged once rather than every interval.
	s := &expiryGCState{reported: map[string]string{}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r := runGC(ctx, d, gcOptions{expired: true, now: time.Now()})
			// A keep-alive connection to dockerd, idle for a whole
			// interval, would hold an fd and two goroutines for nothing.
			if c, ok := d.(gcIdleCloser); ok {
				c.Close()
			}
			if ctx.Err() != nil {
				return // shutting down: a cancelled run is no failure
			}
			s.log(r, log)
		}
	}
}

// expiryGCState is what the loop remembers between runs.
type expiryGCState struct {
	reported map[string]string // kind/id → the failure or skip last logged
	lastErr  string
}

func (s *expiryGCState) log(r *gcReport, log zerolog.Logger) {
	errs := ""
	for _, err := range r.errs {
		errs += err.Error() + "; "
	}
	if errs != s.lastErr {
		if errs != "" {
			log.Warn().Str("error", errs[:len(errs)-2]).Msg("gc: cannot list the objects to expire; retrying every interval")
		} else if s.lastErr != "" {
			log.Info().Msg("gc: listing works again")
		}
		s.lastErr = errs
	}
	seen := map[string]bool{}
	for _, res := range r.results {
		level := zerolog.WarnLevel
		switch res.outcome {
		case gcRemoved:
			level = zerolog.InfoLevel
		case gcSkipped, gcFailed:
			key := res.kind + "/" + res.id
			seen[key] = true
			if s.reported[key] == res.err.Error() {
				continue
			}
			s.reported[key] = res.err.Error()
		case gcWouldRemove:
			continue
		}
		ev := log.WithLevel(level).Str("kind", res.kind).Str("id", res.id).Str("name", res.name).Str("owner", res.owner()).Str("expires", res.expires())
		if res.err != nil {
			ev = ev.Str("error", res.err.Error())
		}
		ev.Msg(expiryGCMessage[res.outcome])
	}
	// Forget what is no longer reported, so that the map does not grow
	// with every object ever seen.
	for key := range s.reported {
		if !seen[key] {
			delete(s.reported, key)
		}
	}
}

var expiryGCMessage = map[gcOutcome]string{
	gcRemoved: "gc: removed an expired tenant object",
	gcFailed:  "gc: could not remove an expired tenant object; trying again next interval",
	gcSkipped: "gc: left an expired-looking tenant object alone",
}
