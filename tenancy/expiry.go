package tenancy

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// StartExpiry removes what expired (Run with Expired, as `dockgate gc
// --expired` does) every interval until ctx ends, logging what it did as
// operational log lines: the audit trail records callers' requests, and
// these are dockgate's own. The first run is one interval after startup,
// not at once, so that a dockgate restarted in a loop does not hammer
// dockerd. The returned function stops the loop and waits for it, a run
// in progress included; interval 0 starts nothing.
func StartExpiry(ctx context.Context, d Docker, interval time.Duration, log zerolog.Logger) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		expiryLoop(ctx, d, interval, log)
	}()
	log.Info().Str("gc_interval", interval.String()).Msg("gc: removing expired tenant objects periodically")
	return func() {
		cancel()
		wg.Wait()
	}
}

// idleCloser is *dockerd.Client's Close, which only drops idle
// connections: the client stays usable.
type idleCloser interface{ Close() error }

func expiryLoop(ctx context.Context, d Docker, interval time.Duration, log zerolog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	// What was already reported, so that an object gc cannot judge or
	// remove (a network still in use), or a dockerd that stays down, is
	// logged once rather than every interval.
	s := &expiryState{reported: map[string]string{}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r := Run(ctx, d, Options{Expired: true, Now: time.Now()})
			// A keep-alive connection to dockerd, idle for a whole
			// interval, would hold an fd and two goroutines for nothing.
			if c, ok := d.(idleCloser); ok {
				c.Close()
			}
			if ctx.Err() != nil {
				return // shutting down: a cancelled run is no failure
			}
			s.log(r, log)
		}
	}
}

// expiryState is what the loop remembers between runs.
type expiryState struct {
	reported map[string]string // kind/id → the failure or skip last logged
	lastErr  string
}

func (s *expiryState) log(r *Report, log zerolog.Logger) {
	errs := ""
	for _, err := range r.Errs {
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
	for _, res := range r.Results {
		level := zerolog.WarnLevel
		switch res.Outcome {
		case Removed:
			level = zerolog.InfoLevel
		case Skipped, Failed:
			key := res.Kind + "/" + res.ID
			seen[key] = true
			if s.reported[key] == res.Err.Error() {
				continue
			}
			s.reported[key] = res.Err.Error()
		case WouldRemove:
			continue
		}
		ev := log.WithLevel(level).Str("kind", res.Kind).Str("id", res.ID).Str("name", res.Name).Str("owner", res.Owner()).Str("expires", res.Expires())
		if res.Err != nil {
			ev = ev.Str("error", res.Err.Error())
		}
		ev.Msg(expiryMessage[res.Outcome])
	}
	// Forget what is no longer reported, so that the map does not grow
	// with every object ever seen.
	for key := range s.reported {
		if !seen[key] {
			delete(s.reported, key)
		}
	}
}

var expiryMessage = map[Outcome]string{
	Removed: "gc: removed an expired tenant object",
	Failed:  "gc: could not remove an expired tenant object; trying again next interval",
	Skipped: "gc: left an expired-looking tenant object alone",
}
