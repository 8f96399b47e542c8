package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dockgate/dockgate/authz"
)

// The exit of hijacked sessions (issue 6, part 2). After an exec or attach
// session ends, dockgate asks dockerd for the exit code (GET
// /exec/{id}/json or /containers/{id}/json, as the docker CLI itself does)
// and puts it on the final record. The client connection is already closed
// by then (splice closes both ends), so the question delays only the
// record, never the client. The question is dockgate's own, on a connection
// of its own: it is not a client request and has no record.
//
// An exec's exit is recorded just after its stream ends, so dockgate asks
// again for up to exitInspectTimeout. An attach may end while the container
// goes on running (detach keys, a client that left): dockgate then waits
// only attachExitWindow, and a container still running leaves the record
// without an exit code.

// exitInspectTimeout bounds the whole exit-code question of an exec,
// retries included.
const exitInspectTimeout = 2 * time.Second

// attachExitWindow bounds the question for an attach: a container whose
// attach ended because it exited says so within milliseconds.
const attachExitWindow = 500 * time.Millisecond

// exitRetry is how long to wait before asking again when dockerd still
// says the process is running.
const exitRetry = 50 * time.Millisecond

// sessionExitCode asks dockerd for the exit code of the process behind a
// finished hijacked session, an exec's or a container's (kind, the route's
// ExitOf); ok is false when dockerd does not say (it still runs, or
// dockerd is gone).
func (cn *clientConn) sessionExitCode(ctx context.Context, kind, apiVersion, id string) (code int, ok bool) {
	window, path := exitInspectTimeout, "/exec/"+url.PathEscape(id)+"/json"
	if kind == authz.ObjectContainer {
		window, path = attachExitWindow, "/containers/"+url.PathEscape(id)+"/json"
	}
	if apiVersion != "" {
		path = "/v" + apiVersion + path
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	for {
		running, code, err := cn.inspectExit(ctx, path)
		if err != nil {
			return 0, false
		}
		if !running {
			return code, true
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(exitRetry):
		}
	}
}

// inspectExit reads Running and ExitCode from an exec's or a container's
// inspect answer (a container has them under State).
func (cn *clientConn) inspectExit(ctx context.Context, path string) (running bool, code int, err error) {
	u := cn.s.cfg.Upstream
	d := net.Dialer{Timeout: cn.s.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, u.Network, u.Address)
	if err != nil {
		return false, 0, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	defer context.AfterFunc(ctx, func() { nc.Close() })()
	if _, err := io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockgate\r\nConnection: close\r\n\r\n"); err != nil {
		return false, 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(nc, 4096), &http.Request{Method: http.MethodGet})
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return false, 0, errNoExit
	}
	type exit struct {
		Running  bool
		ExitCode *int
	}
	var v struct {
		exit
		State *exit
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxObjectBody)).Decode(&v); err != nil {
		return false, 0, err
	}
	e := v.exit
	if v.State != nil {
		e = *v.State
	}
	if e.ExitCode == nil {
		return false, 0, errNoExit
	}
	return e.Running, *e.ExitCode, nil
}

var errNoExit = &wireError{Status: http.StatusBadGateway, Msg: "dockerd did not say the exit code"}
