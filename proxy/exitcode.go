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
)

// The exit of hijacked sessions (issue 6, part 2). After an exec session
// ends, dockgate asks dockerd for the exec's exit code (GET
// /exec/{id}/json, as the docker CLI itself does) and puts it on the final
// record. The client connection is already closed by then (splice closes
// both ends), so the question delays only the record, never the client;
// it is bounded by exitInspectTimeout. The question is dockgate's own, on a
// connection of its own: it is not a client request and has no record.
//
// container.attach is not covered: a detached attach leaves the container
// running, and waiting for its exit would hold the record indefinitely.

// exitInspectTimeout bounds the whole exit-code question, retries included.
const exitInspectTimeout = 2 * time.Second

// exitRetry is how long to wait before asking again when dockerd still
// says the exec is running: its exit is recorded just after the stream
// ends.
const exitRetry = 50 * time.Millisecond

// execExitCode asks dockerd for the exit code of exec id; ok is false when
// dockerd does not say (the exec still runs, or dockerd is gone).
func (cn *clientConn) execExitCode(ctx context.Context, apiVersion, id string) (code int, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, exitInspectTimeout)
	defer cancel()
	for {
		running, code, err := cn.inspectExec(ctx, apiVersion, id)
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

func (cn *clientConn) inspectExec(ctx context.Context, apiVersion, id string) (running bool, code int, err error) {
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
	path := "/exec/" + url.PathEscape(id) + "/json"
	if apiVersion != "" {
		path = "/v" + apiVersion + path
	}
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
	var v struct {
		Running  bool
		ExitCode *int
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxObjectBody)).Decode(&v); err != nil {
		return false, 0, err
	}
	if v.ExitCode == nil {
		return false, 0, errNoExit
	}
	return v.Running, *v.ExitCode, nil
}

var errNoExit = &wireError{Status: http.StatusBadGateway, Msg: "dockerd did not say the exec's exit code"}
