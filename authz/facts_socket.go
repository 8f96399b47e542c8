package authz

import (
	"net/http"
	"os"
	"path"

	"github.com/dockgate/dockgate/authz/policy"
)

// Docker sockets are delegated (docs/containers.md): a bind of one is the
// fact docker-socket, not bind, and where the policy allows it the
// container gets dockgate's own socket in its place, so that what it asks
// is judged as the container, never beyond its creator.

// DockerSockets tells the extractor which host paths are Docker sockets
// and where it delegates a bind of one. Besides the paths named here,
// /var/run/docker.sock and /run/docker.sock are always Docker sockets:
// dockerd listens there by default whatever dockgate was told, and a
// daemon dockgate does not front is as much root on the host.
type DockerSockets struct {
	// Listen are the Unix socket paths dockgate serves. The first is the
	// source a delegated bind is given; none means a Docker daemon's
	// socket cannot be delegated, and a create that binds one is refused.
	Listen []string
	// Upstream is dockerd's Unix socket path; "" when dockgate reaches
	// dockerd over TCP.
	Upstream string
}

// daemonSockets are the paths of sockets that are a Docker daemon's own.
func (s DockerSockets) daemonSockets() []string {
	paths := []string{"/var/run/docker.sock", "/run/docker.sock"}
	if s.Upstream != "" {
		paths = append(paths, s.Upstream)
	}
	return paths
}

// socketOwner says whose Docker socket a host path names.
type socketOwner int

const (
	notASocket socketOwner = iota
	// dockgateSocket is one dockgate serves: binding it needs no rewrite.
	dockgateSocket
	// daemonSocket is a Docker daemon's own: whoever reaches it is root on
	// the host, so a bind of it is rewritten to dockgate's.
	daemonSocket
)

// socketOwner says whose Docker socket the resolved host path r is: one
// whose configured path resolves to r, or that names the same file (a hard
// link, a bind mount of the socket elsewhere). dockgate's own paths are
// looked at first, so that dockgate serving /var/run/docker.sock itself
// makes a bind of it no daemon's socket.
func (h hostFS) socketOwner(r string) socketOwner {
	sets := []struct {
		paths []string
		owner socketOwner
	}{
		{h.sockets.Listen, dockgateSocket},
		{h.sockets.daemonSockets(), daemonSocket},
	}
	resolved := make([][]string, len(sets))
	for i, set := range sets {
		for _, p := range set.paths {
			rp := h.resolveSocketPath(p)
			if rp == r {
				return set.owner
			}
			resolved[i] = append(resolved[i], rp)
		}
	}
	fi, err := os.Stat(h.onHost(r))
	if err != nil {
		// Nothing there (yet): no file to compare; dockerd would create
		// a directory in its place.
		return notASocket
	}
	for i, set := range sets {
		for _, rp := range resolved[i] {
			si, err := os.Stat(h.onHost(rp))
			if err == nil && os.SameFile(fi, si) {
				return set.owner
			}
		}
	}
	return notASocket
}

// resolveSocketPath resolves a configured socket path as a bind source
// resolves, so that /var/run/docker.sock and /run/docker.sock compare
// equal where /var/run links to /run. A path that cannot be resolved (a
// symlink loop) is compared as cleaned: it names no file a bind could
// reach either.
func (h hostFS) resolveSocketPath(p string) string {
	rp, err := h.resolve(p)
	if err != nil {
		return path.Clean(p)
	}
	return rp
}

// addBind adds the fact of one bind source (Binds, a bind mount, or a
// bind a container recorded), with the replaceable-path fact addHostPath
// gives: docker-socket when it resolves to dockgate's socket, or to a
// Docker daemon's where the request can be given dockgate's instead (a
// container create, x.delegating); bind otherwise. A daemon's socket that
// cannot be delegated (a container started again, a service's mounts, an
// old API's start body) stays bind, whose allowing is root on the host:
// allowing docker-socket never hands out a daemon's socket. It returns
// whose socket it is.
func (x *extraction) addBind(src string) (socketOwner, error) {
	r, why, err := x.host.resolveFor(src, x.req.Cred)
	if err != nil {
		return notASocket, err
	}
	owner := x.host.socketOwner(r)
	switch {
	case owner == notASocket:
		x.addResolved("bind", r, why)
	case owner == daemonSocket && !x.delegating:
		x.addResolved("bind", r, why)
		x.req.note(policy.Fact{Kind: "bind", Value: r}, "a Docker daemon's own socket, which dockgate can give a container as its own socket only when it creates it")
	default:
		x.socketBound = true
		x.addResolved(policy.DockerSocketKind, r, why)
		x.req.note(policy.Fact{Kind: policy.DockerSocketKind, Value: r}, x.delegationNote())
	}
	return owner, nil
}

// delegationNote says, for a refusal of the docker-socket fact, that
// allowing it never hands out a daemon's socket.
func (x *extraction) delegationNote() string {
	if len(x.host.sockets.Listen) == 0 {
		return "a Docker socket is only ever delegated: the container would get dockgate's own socket, never dockerd's"
	}
	return "a Docker socket is only ever delegated: the container would get dockgate's own socket " + x.host.sockets.Listen[0] + ", never dockerd's, and be judged as itself, never beyond its creator"
}

// delegateBind returns the source a bind of a Docker daemon's socket is
// forwarded with: dockgate's own socket.
func (x *extraction) delegateBind(src string) (string, error) {
	if len(x.host.sockets.Listen) == 0 {
		return "", &RouteError{Status: http.StatusForbidden, Message: x.m.Action + " binds " + src + ", a Docker daemon's own socket, and dockgate serves no Unix socket to delegate it to"}
	}
	return x.host.sockets.Listen[0], nil
}

// delegateBindsEntry rewrites the Binds entry raw, whose source is src, to
// bind dockgate's socket: destination and mode stay.
func (x *extraction) delegateBindsEntry(raw, src string) (string, error) {
	to, err := x.delegateBind(src)
	if err != nil {
		return "", err
	}
	out := to + raw[len(src):]
	x.req.Rewrites = append(x.req.Rewrites, "bind "+raw+" -> "+out)
	return out, nil
}

// delegateMountSource rewrites a bind mount's Source to dockgate's
// socket: everything else about the mount stays.
func (x *extraction) delegateMountSource(src, target string) (string, error) {
	to, err := x.delegateBind(src)
	if err != nil {
		return "", err
	}
	x.req.Rewrites = append(x.req.Rewrites, "mount "+src+":"+target+" -> "+to+":"+target)
	return to, nil
}

// inheritedDaemonSocket refuses a VolumesFrom whose source container binds
// a Docker daemon's own socket: VolumesFrom copies the source's binds as
// dockerd recorded them, so dockgate cannot put its own socket in their
// place, and the new container would get the daemon's.
func inheritedDaemonSocket(from, src string) error {
	return &RouteError{Status: http.StatusForbidden, Message: "VolumesFrom " + from + " would hand over " + src + ", a Docker daemon's own socket (the container " + from + " was given it outside dockgate): dockgate delegates only its own socket, and cannot rewrite what VolumesFrom copies; bind the Docker socket in the create itself"}
}

// socketHolderFacts: a request that runs a process in an existing
// container or changes what runs there (exec, attach, a copy into it, a
// rename that gives it another container's rows) hands the caller the
// Docker socket that container holds: a process in it is judged as that
// container, and can use the socket. So the socket binds it recorded are
// judged for this caller as if it bound them itself: docker-socket for
// dockgate's, bind for a daemon's own (given outside dockgate), whose
// allowing is root on the host. Other binds are not judged again here.
// The request is forwarded pinned to the container judged when it holds a
// socket, and always for a tenant.
func socketHolderFacts(x *extraction) error {
	m, found, err := x.namedContainerMounts()
	if err != nil || !found {
		return err
	}
	held := false
	for _, b := range m.Binds {
		r, err := x.host.resolve(b)
		if err != nil || x.host.socketOwner(r) == notASocket {
			continue
		}
		held = true
		if _, err := x.addBind(b); err != nil {
			return err
		}
	}
	if !held && x.req.Owner == "" {
		return nil
	}
	// A tenant's request is pinned to the container judged here whether
	// it holds a socket or not, so that its owner is read of this same
	// container (ownerFacts), never of what the name resolves to a second
	// time: the owner lookup may answer from the name cache, which holds
	// what the name meant until dockerd's event of a change made outside
	// dockgate arrives.
	return x.pinPathVar("name", m.ID)
}
