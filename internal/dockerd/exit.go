package dockerd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The exit code of a hijacked session's process. After an exec or attach
// session ends, the proxy asks for it (GET /exec/{id}/json or
// /containers/{id}/json, as the docker CLI itself does) to put it on the
// session's final record. The client connection is closed by then, so the
// question delays only the record, never the client; it is dockgate's own
// question, not a client request, and has no record.
//
// An exec's exit is recorded just after its stream ends, so ExecExit asks
// again for up to execExitWindow. An attach may end while the container
// goes on running (detach keys, a client that left): ContainerExit waits
// only attachExitWindow, and a container still running has no exit code.

// execExitWindow bounds the whole exit-code question of an exec, retries
// included.
const execExitWindow = 2 * time.Second

// attachExitWindow bounds the question for an attach: a container whose
// attach ended because it exited says so within milliseconds.
const attachExitWindow = 500 * time.Millisecond

// exitRetry is how long to wait before asking again when dockerd still
// says the process is running.
const exitRetry = 50 * time.Millisecond

// maxExitAnswer bounds the inspect answer read for an exit code.
const maxExitAnswer = 64 << 10

// errNoExit is an answer that carries no exit code: asking again will not
// bring one.
var errNoExit = errors.New("dockerd did not say the exit code")

// ExecExit returns the exit code of the finished exec id, asking at the
// API version the session used ("" for none); ok is false when dockerd
// does not say (it still runs, or dockerd is gone).
func (d *Client) ExecExit(ctx context.Context, apiVersion, id string) (code int, ok bool) {
	return d.exitCode(ctx, execExitWindow, apiVersion, "/exec/"+url.PathEscape(id)+"/json")
}

// ContainerExit returns the exit code of the container id whose attach
// session ended, as ExecExit does.
func (d *Client) ContainerExit(ctx context.Context, apiVersion, id string) (code int, ok bool) {
	return d.exitCode(ctx, attachExitWindow, apiVersion, "/containers/"+url.PathEscape(id)+"/json")
}

// exitCode asks at path until dockerd says the process is no longer
// running, for up to window.
func (d *Client) exitCode(ctx context.Context, window time.Duration, apiVersion, path string) (int, bool) {
	if apiVersion != "" {
		path = "/v" + apiVersion + path
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	for {
		running, code, err := d.inspectExit(ctx, path)
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
func (d *Client) inspectExit(ctx context.Context, path string) (running bool, code int, err error) {
	req, err := d.request(ctx, path)
	if err != nil {
		return false, 0, err
	}
	// dockgate's own question, named so in dockerd's logs; the proxy's
	// tests tell it from the client's requests by it.
	req.Header.Set("User-Agent", "dockgate")
	// RoundTrip, not a client's Do: an answer that is a redirect is no
	// exit code either.
	resp, err := d.transport.RoundTrip(req)
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
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxExitAnswer)).Decode(&v); err != nil {
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
