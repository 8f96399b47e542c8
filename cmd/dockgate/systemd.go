package main

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
)

// systemd integration (systemd/dockgate.service, Type=notify): readiness,
// reload and stop notifications, watchdog pings, and the sockets of
// dockgate.socket. Each of these is a no-op when systemd did not start
// dockgate (no NOTIFY_SOCKET, WATCHDOG_USEC or LISTEN_FDS).

// sdNotify sends state lines to systemd's notification socket. A failure
// is logged and otherwise ignored: systemd's bookkeeping must not stop the
// proxy.
func sdNotify(log zerolog.Logger, states ...string) {
	if _, err := daemon.SdNotify(false, strings.Join(states, "\n")); err != nil {
		log.Warn().Err(err).Str("state", strings.Join(states, " ")).Msg("cannot notify systemd")
	}
}

// sdStatus is a STATUS= line: one line of text for "systemctl status".
func sdStatus(format string, args ...any) string {
	return "STATUS=" + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
}

// sdReloading is RELOADING=1 with the MONOTONIC_USEC systemd 253 and later
// want with it.
func sdReloading() string {
	return strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n") + "\n" + daemon.SdNotifyReloading
}

// watchdogInterval is how often to ping systemd's watchdog: half of
// WatchdogSec, or 0 when the watchdog is off.
func watchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// activatedListeners are the sockets systemd passed (LISTEN_FDS), or none
// when dockgate was not socket-activated. They replace --listen. Only Unix
// stream sockets are taken: a peer's identity comes from SO_PEERCRED, and
// a TCP socket here would let an unidentified caller in.
func activatedListeners() ([]net.Listener, error) {
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	for i, l := range ls {
		var bad string
		switch {
		case l == nil:
			bad = "is not a listening stream socket"
		case l.Addr().Network() != "unix":
			bad = "is a " + l.Addr().Network() + " socket; only Unix sockets (ListenStream=/path) are supported"
		}
		if bad != "" {
			for _, l := range ls {
				if l != nil {
					l.Close()
				}
			}
			return nil, fmt.Errorf("socket activation: file descriptor %d %s", 3+i, bad)
		}
	}
	return ls, nil
}
