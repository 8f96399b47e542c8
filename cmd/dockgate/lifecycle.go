package main

import (
	"context"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/proxy"
)

// serveUntilStopped serves every listener until SIGTERM or SIGINT, then
// stops gracefully (proxy.Server.Shutdown): no new connections, idle ones
// closed at once, requests in flight given up to grace to finish, and then
// hijacked sessions and long streams cut. A second signal cuts at once.
// It returns nil after a signal, and the first listener's error if one
// fails (which stops the others at once).
func serveUntilStopped(ctx context.Context, srv *proxy.Server, listeners []net.Listener, grace time.Duration, log zerolog.Logger) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, l); err != nil {
				errs <- err
				stop()
			}
		}()
	}
	served := make(chan struct{})
	go func() {
		wg.Wait()
		close(served)
	}()
	addrs := make([]string, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr().String()
	}
	sdNotify(log, daemon.SdNotifyReady, sdStatus("serving on %s", strings.Join(addrs, ", ")))

	// The watchdog is pinged from this loop, which also waits for the
	// listeners: a loop that stops turning stops the pings.
	var tick <-chan time.Time
	if d := watchdogInterval(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	var sig os.Signal
wait:
	for {
		select {
		case <-served:
			break wait
		case <-tick:
			sdNotify(log, daemon.SdNotifyWatchdog)
		case sig = <-sigs:
			break wait
		}
	}
	if sig != nil {
		sdNotify(log, daemon.SdNotifyStopping, sdStatus("stopping: requests in flight have %v to finish", grace))
		log.Info().Str("signal", sig.String()).Str("grace", grace.String()).Int("connections", srv.ActiveConns()).
			Msg("stopping: no new connections; requests in flight may finish within the grace period")
		graceCtx, cancel := context.WithTimeout(context.Background(), grace)
		go func() {
			for {
				select {
				case sig := <-sigs:
					log.Warn().Str("signal", sig.String()).Int("connections", srv.ActiveConns()).
						Msg("second signal: closing every connection now")
					cancel()
					return
				case <-tick:
					// Still alive while the grace runs.
					sdNotify(log, daemon.SdNotifyWatchdog)
				case <-graceCtx.Done():
					return
				}
			}
		}()
		if err := srv.Shutdown(graceCtx); err != nil {
			log.Warn().Str("grace", grace.String()).
				Msg("grace period over: closed the sessions and streams still open")
		}
		cancel()
		<-served
	} else {
		sdNotify(log, daemon.SdNotifyStopping)
	}
	close(errs)
	return <-errs
}
