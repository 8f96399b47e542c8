package main

import (
	"net"
	"path/filepath"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/proxy"
)

// dockerSockets are the Docker sockets of this dockgate, for the
// extractor: the Unix sockets it serves (the first, in --listen order or as
// systemd passed them, is the one a container's delegated bind gets) and
// dockerd's, when dockgate reaches it over a Unix socket. They are read
// from the listeners themselves, so that socket activation's paths count
// as --listen's do.
func dockerSockets(up proxy.Upstream, listeners []net.Listener) authz.DockerSockets {
	var s authz.DockerSockets
	if up.Network == "unix" {
		s.Upstream = up.Address
	}
	for _, l := range listeners {
		a, ok := l.Addr().(*net.UnixAddr)
		// An abstract socket (@name) has no path a bind could name.
		if ok && filepath.IsAbs(a.Name) {
			s.Listen = append(s.Listen, filepath.Clean(a.Name))
		}
	}
	return s
}
