package proxy

import (
	"context"

	"github.com/dockgate/dockgate/authz"
)

// The exit of hijacked sessions. After an exec or attach session ends,
// dockgate asks dockerd for the exit code of its process and puts it on
// the final record. The client connection is already closed by then (splice closes both ends),
// so the question delays only the record, never the client, and it is
// dockgate's own: not a client request, and without a record of its own.

// ExitCodes reads from dockerd the exit code of the process behind a
// finished session; *dockerd.Client implements it. Each asks at the API
// version the session used ("" for none), waits as long as dockerd may
// take to record the exit, and says ok false when dockerd does not say
// (the process still runs, or dockerd is gone).
type ExitCodes interface {
	// ExecExit is the exit code of the exec id (exec.start).
	ExecExit(ctx context.Context, apiVersion, id string) (code int, ok bool)
	// ContainerExit is the exit code of the container id, whose attach
	// (container.attach) may also have ended while it goes on running.
	ContainerExit(ctx context.Context, apiVersion, id string) (code int, ok bool)
}

// sessionExitCode asks for the exit code of the process behind a finished
// hijacked session, an exec's or a container's (kind, the route's ExitOf);
// ok is false when nobody can say.
func (cn *clientConn) sessionExitCode(ctx context.Context, kind, apiVersion, id string) (code int, ok bool) {
	ec := cn.s.cfg.ExitCodes
	if ec == nil {
		return 0, false
	}
	if kind == authz.ObjectContainer {
		return ec.ContainerExit(ctx, apiVersion, id)
	}
	return ec.ExecExit(ctx, apiVersion, id)
}
