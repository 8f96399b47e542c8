package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// upstreamConn is the dockerd connection of one client connection. Client
// and dockerd connections are paired one to one, so that a hijack, a stream
// or a broken request on one client never touches another client's requests.
type upstreamConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool
	resp   respReader // the previous response head, reused (response_head.go)
}

// upstream returns the connection to dockerd, dialing when there is none or
// when dockerd closed the idle one (after a restart, say).
func (cn *clientConn) upstream(ctx context.Context) (*upstreamConn, error) {
	if up := cn.up; up != nil {
		if up.alive(cn.s.cfg.Upstream.Network) {
			up.reused = true
			return up, nil
		}
		cn.dropUpstream()
	}
	u := cn.s.cfg.Upstream
	d := net.Dialer{Timeout: cn.s.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, u.Network, u.Address)
	if err != nil {
		return nil, fmt.Errorf("cannot reach dockerd at %s: %w", u.URL, err)
	}
	up := &upstreamConn{nc: nc, br: bufio.NewReaderSize(nc, upstreamReadBufSize), bw: bufio.NewWriterSize(nc, connBufSize)}
	if !cn.setUpstream(up) {
		return nil, fmt.Errorf("cannot reach dockerd at %s: dockgate is stopping", u.URL)
	}
	return up, nil
}

// alive checks an idle connection without blocking: a read that times out
// at once means dockerd still holds it open; EOF or stray bytes mean it is
// unusable.
func (up *upstreamConn) alive(network string) bool {
	if up.br.Buffered() > 0 {
		return false
	}
	if network == "unix" {
		// Writing to a Unix socket whose peer closed fails at once with
		// EPIPE, and roundTrip then redials: no read needed per request.
		return true
	}
	up.nc.SetReadDeadline(aLongTimeAgo)
	_, err := up.br.Peek(1)
	up.nc.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (cn *clientConn) dropUpstream() {
	if cn.up != nil {
		cn.up.nc.Close()
		cn.setUpstream(nil)
	}
}

// roundTrip writes the request to dockerd and reads the response head. When
// the body streams, bodyDone delivers the outcome of copying it.
func (cn *clientConn) roundTrip(ctx context.Context, head *requestHead, body []byte, rec *audit.Record) (*upstreamConn, *http.Response, chan error, error) {
	up, err := cn.upstream(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	bodyLen := head.ContentLength
	if body != nil {
		bodyLen = int64(len(body))
	}
	if head.spool != nil {
		bodyLen = head.spoolSize
	}
	writeUpstreamHead(up.bw, head, bodyLen)
	up.bw.Write(body)
	if err := up.bw.Flush(); err != nil {
		if up.reused && (body != nil || head.spool != nil || !head.hasBody()) {
			// dockerd closed the connection between the liveness check and
			// the write; nothing was read from the client yet, so a fresh
			// connection can carry the same request.
			cn.dropUpstream()
			return cn.roundTrip(ctx, head, body, rec)
		}
		return nil, nil, nil, fmt.Errorf("sending request to dockerd: %w", err)
	}
	var bodyDone chan error
	if head.spool != nil {
		// The spooled body goes from its file, with a Content-Length.
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(up.nc, io.NewSectionReader(head.spool, 0, head.spoolSize))
			if err != nil {
				up.nc.Close()
			}
			done <- err
		}()
		bodyDone = done
	} else if body == nil && head.hasBody() {
		if head.ExpectContinue {
			cn.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			cn.bw.Flush()
		}
		done := make(chan error, 1)
		head.bodyRead = true
		if head.chunked() {
			// Here, not in the body's goroutine: cn.br is read
			// again only after bodyDone.
			cn.bulkReader()
		}
		go func() {
			n, err := cn.copyRequestBody(up, head)
			rec.BytesIn = n
			if err != nil {
				// dockerd must not act on a body that ended early or
				// broke the framing: cut its connection.
				up.nc.Close()
			}
			done <- err
		}()
		// Set after the goroutines start, not captured by them: a
		// variable a goroutine captures and that is assigned later lives
		// on the heap, an allocation on every request.
		bodyDone = done
	}
	for {
		resp, err := readResponseHead(up.br, head.Method, &up.resp)
		if err != nil {
			if bodyDone != nil {
				if berr := <-bodyDone; berr != nil {
					var we *wireError
					if errors.As(berr, &we) {
						return up, nil, nil, we
					}
					return up, nil, nil, fmt.Errorf("reading request body: %w", berr)
				}
				bodyDone = nil
			}
			return up, nil, bodyDone, fmt.Errorf("reading dockerd's response: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return up, resp, bodyDone, nil
		}
		// Informational answers other than 101 go to the client as they are.
		writeResponseHead(cn.bw, resp, framingNone, false, false)
		if err := cn.bw.Flush(); err != nil {
			return up, nil, bodyDone, fmt.Errorf("client went away: %w", err)
		}
	}
}

// copyRequestBody streams the client's body to dockerd with the framing
// chosen in writeUpstreamHead. A failure to read from the client is a
// *clientReadError, so that it is told from one writing to dockerd.
func (cn *clientConn) copyRequestBody(up *upstreamConn, head *requestHead) (int64, error) {
	if !head.chunked() {
		n, err := io.Copy(up.nc, io.LimitReader(clientReader{cn.br}, head.ContentLength))
		if err == nil && n < head.ContentLength {
			err = &clientReadError{io.ErrUnexpectedEOF}
		}
		return n, err
	}
	cw := chunkedWriter{w: up.bw}
	cr := newChunkedReader(cn.br)
	buf := chunkBuffer(copyBufSize)
	var n int64
	for {
		k, rerr := cr.Read(chunkData(buf))
		if k > 0 {
			n += int64(k)
			up.bw.Write(chunkFrame(buf, k))
			if err := up.bw.Flush(); err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			cw.Close()
			return n, up.bw.Flush()
		}
		if rerr != nil {
			var we *wireError
			if !errors.As(rerr, &we) {
				rerr = &clientReadError{rerr}
			}
			return n, rerr
		}
	}
}

// clientReadError is a failure to read the request body from the client:
// it closed or reset the connection in the middle of it.
type clientReadError struct{ err error }

func (e *clientReadError) Error() string { return "reading the client's body: " + e.err.Error() }
func (e *clientReadError) Unwrap() error { return e.err }

// clientReader marks the errors of reading the client's connection.
type clientReader struct{ r io.Reader }

func (c clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &clientReadError{err}
	}
	return n, err
}

func isClientAbort(err error) bool {
	if err == nil {
		// errors.As's target escapes: an allocation on every request.
		return false
	}
	var ce *clientReadError
	return errors.As(err, &ce)
}

// recordForwardAbort records a request whose client went away in the
// middle of the body dockgate was forwarding: the decision stays what it
// was (nothing was refused), the status is what was sent to the client
// (0 when nothing was), and bytes_in counts what was received.
func (cn *clientConn) recordForwardAbort(rec *audit.Record, what string) {
	rec.Outcome = audit.OutcomeClientAborted
	rec.Reason = fmt.Sprintf("client closed the connection after %d bytes %s", rec.BytesIn, what)
}
