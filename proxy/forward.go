package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// upstreamConn is the dockerd connection of one client connection. Client
// and dockerd connections are paired one to one, so that a hijack, a stream
// or a broken request on one client never touches another client's requests.
type upstreamConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool
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

// forward sends an allowed request to dockerd and its answer back. body is
// the request body when it was read whole to be judged; else the body is
// streamed from the client as it arrives. It writes the audit record and
// reports whether the connection may carry another request.
func (cn *clientConn) forward(ctx context.Context, head *requestHead, m *authz.Match, body []byte, rec *audit.Record) bool {
	start := rec.Time

	// Copied before roundTrip: the goroutine that streams the request body
	// writes rec.BytesIn, so a copy taken later would race with it.
	startRec := *rec
	up, resp, bodyDone, err := cn.roundTrip(ctx, head, body, rec)
	if err != nil {
		var we *wireError
		if errors.As(err, &we) {
			cn.dropUpstream()
			return cn.refuse(head, rec, audit.DecisionError, we.Status, we.Msg)
		}
		if isClientAbort(err) {
			// The client left in the middle of the body it was sending
			// to dockerd: nobody is left to answer.
			rec.Status = 0
			cn.recordForwardAbort(rec, "of the request body; dockerd's request was cut off")
			cn.finish(rec, start)
			cn.dropUpstream()
			return false
		}
		rec.Decision = audit.DecisionError
		rec.Reason = err.Error()
		rec.Status = http.StatusBadGateway
		cn.finish(rec, start)
		cn.dropUpstream()
		if bodyDone != nil || (head.hasBody() && body == nil && head.spool == nil) {
			// The request body was not (all) read: where the next request
			// starts is unknown, so the connection ends here, after the
			// client had the chance to read why.
			if writeError(cn.bw, head.Method, http.StatusBadGateway, err.Error(), true) == nil {
				cn.linger(head)
			}
			return false
		}
		writeError(cn.bw, head.Method, http.StatusBadGateway, err.Error(), head.Close)
		return !head.Close
	}
	rec.Status = resp.StatusCode
	// Shutdown ends a response copy or a hijacked session that waits on a
	// quiet dockerd by closing up (cutUpstream, upstreamcut.go).

	hijack := (resp.StatusCode == http.StatusSwitchingProtocols && head.Upgrade) ||
		(isRawStream(resp) && m.Hijack)
	if hijack && head.verify != nil {
		// A session cannot be checked before the client has it.
		rec.Decision, rec.Reason, rec.Status = audit.DecisionError, "dockerd's answer must be checked before the client gets it, and it switched to a raw stream", http.StatusBadGateway
		cn.finish(rec, start)
		writeError(cn.bw, head.Method, http.StatusBadGateway, rec.Reason, true)
		return false
	}
	if hijack {
		if bodyDone != nil {
			if err := <-bodyDone; err != nil {
				if isClientAbort(err) {
					rec.Status = 0
					cn.recordForwardAbort(rec, "of the request body, before the session started")
				} else {
					rec.Decision, rec.Reason = audit.DecisionError, "request body: "+err.Error()
				}
				cn.finish(rec, start)
				return false
			}
		}
		return cn.hijack(ctx, head, m, resp, up, rec)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		rec.Decision, rec.Reason, rec.Status = audit.DecisionError, "dockerd switched protocols without being asked", http.StatusBadGateway
		cn.finish(rec, start)
		writeError(cn.bw, head.Method, http.StatusBadGateway, rec.Reason, true)
		return false
	}

	if m.Stream && resp.StatusCode < 300 {
		startRec.Phase, startRec.Status = audit.PhaseStart, resp.StatusCode
		cn.s.cfg.Audit.Write(&startRec)
	}
	var keep, bodyOK bool
	if head.verify != nil && head.Method != http.MethodHead {
		keep, bodyOK = cn.copyVerifiedResponse(ctx, head, m, resp, bodyDone, rec)
	} else {
		keep, bodyOK = cn.copyResponse(head, m, resp, bodyDone, rec)
	}
	if !bodyOK || resp.Close {
		cn.dropUpstream()
	}
	cn.finish(rec, start)
	return keep
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
		bodyDone = make(chan error, 1)
		go func() {
			_, err := io.Copy(up.nc, io.NewSectionReader(head.spool, 0, head.spoolSize))
			if err != nil {
				up.nc.Close()
			}
			bodyDone <- err
		}()
	} else if body == nil && head.hasBody() {
		if head.ExpectContinue {
			cn.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			cn.bw.Flush()
		}
		bodyDone = make(chan error, 1)
		head.bodyRead = true
		go func() {
			n, err := cn.copyRequestBody(up, head)
			rec.BytesIn = n
			if err != nil {
				// dockerd must not act on a body that ended early or
				// broke the framing: cut its connection.
				up.nc.Close()
			}
			bodyDone <- err
		}()
	}
	for {
		resp, err := http.ReadResponse(up.br, &http.Request{Method: head.Method})
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

// copyResponse sends a response that stays HTTP to the client, flushing as
// data arrives so that logs, events and progress streams are not held back.
// It reports whether the client connection may carry another request, and
// whether dockerd's connection ended cleanly.
func (cn *clientConn) copyResponse(head *requestHead, m *authz.Match, resp *http.Response, bodyDone chan error, rec *audit.Record) (keep, upstreamOK bool) {
	defer resp.Body.Close()
	if head.filter != nil && resp.StatusCode == http.StatusOK && head.Method != http.MethodHead {
		return cn.copyFilteredResponse(head, resp, bodyDone, rec)
	}
	framing := framingLength
	switch {
	case head.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified:
		framing = framingNone
	case len(resp.TransferEncoding) > 0:
		framing = framingChunked
	case resp.ContentLength < 0:
		framing = framingClose
	}
	if framing == framingChunked && head.Minor == 0 {
		framing = framingClose
	}
	closeConn := head.Close || framing == framingClose
	writeResponseHead(cn.bw, resp, framing, false, closeConn)
	// A body dockerd already sent whole goes out with the head in one
	// write; otherwise the head goes out at once, because a client
	// following events or logs waits for it before dockerd has anything
	// else to say.
	complete := framing == framingNone || framing == framingLength && resp.ContentLength <= int64(cn.up.br.Buffered())
	if complete {
		// Nothing here can block on dockerd: no need to watch the client.
	} else if err := cn.bw.Flush(); err != nil {
		rec.Reason = "client went away before the response"
		if bodyDone != nil {
			cn.up.nc.Close()
			<-bodyDone
		}
		if !m.Stream {
			rec.Outcome = audit.OutcomeClientAborted
		}
		return false, false
	}

	// Watch for the client leaving while dockerd has nothing to send (a
	// quiet logs -f or events, or a build after its context was uploaded):
	// then dockerd's request is cancelled. The watcher reads the client
	// connection, so it waits until the request body is all read.
	stopWatch := func() bool { return false }
	if !complete || bodyDone != nil {
		stopWatch = cn.watchClient(bodyDone)
	}

	var built *builtImageScanner
	if m.NewID == authz.NewIDInProgress && resp.StatusCode < 300 {
		built = new(builtImageScanner)
	}
	var capture *bytes.Buffer
	if m.NewID == authz.NewIDInBody && resp.StatusCode < 300 && resp.ContentLength >= 0 && resp.ContentLength <= maxObjectBody {
		capture = new(bytes.Buffer)
	}
	bodySize := resp.ContentLength
	if framing != framingLength {
		bodySize = -1
	}
	buf := cn.buffer(bodySize)
	var copyErr, clientErr error
	for framing != framingNone {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			rec.BytesOut += int64(n)
			if capture != nil {
				capture.Write(buf[:n])
			}
			if built != nil {
				built.Write(buf[:n])
			}
			if framing == framingChunked {
				// buf is chunkData(cn.buf): a bodySize of -1 asked for it.
				_, clientErr = cn.bw.Write(chunkFrame(cn.buf, n))
			} else {
				_, clientErr = cn.bw.Write(buf[:n])
			}
			// Flush whenever the next read could wait for dockerd, so
			// that a stream is never held back; bytes already buffered
			// from dockerd go out together.
			if clientErr == nil && cn.up.br.Buffered() == 0 {
				clientErr = cn.bw.Flush()
			}
			if clientErr != nil {
				break
			}
		}
		if err == io.EOF {
			if framing != framingChunked {
				clientErr = cn.bw.Flush()
			}
			break
		}
		if err != nil {
			copyErr = err
			break
		}
	}
	clientGone := stopWatch()
	switch {
	case clientErr != nil || copyErr != nil:
	case framing == framingChunked:
		chunkedWriter{w: cn.bw}.Close()
		clientErr = cn.bw.Flush()
	case framing == framingNone:
		clientErr = cn.bw.Flush()
	}
	var bodyErr error
	if bodyDone != nil && !awaitBody(bodyDone) {
		// dockerd answered without reading the whole body; its
		// connection and the client's are out of step now.
		cn.up.nc.Close()
		bodyErr = <-bodyDone
		closeConn = true
	}
	if capture != nil && copyErr == nil {
		rec.ObjectID = objectID(capture.Bytes())
	}
	if built != nil && copyErr == nil {
		rec.ObjectID = built.id
	}
	switch {
	case isClientAbort(bodyErr):
		// Also when dockerd's answer then broke off: it was cut because
		// the body was.
		cn.recordForwardAbort(rec, "of the request body, while dockerd answered")
		return false, false
	case clientErr != nil || copyErr != nil && clientGone:
		rec.Reason = "client went away during the response"
		if !m.Stream {
			// A stream (logs -f, events) lasts as long as the client
			// wants: its client ending it is its normal end. Any other
			// answer cut short by the client is an abort.
			rec.Outcome = audit.OutcomeClientAborted
		}
		return false, false
	case copyErr != nil:
		rec.Decision = audit.DecisionError
		rec.Reason = "dockerd's response broke off: " + copyErr.Error()
		return false, false
	case clientGone:
		// The whole answer went out and then the client hung up: the
		// request itself is complete, but the watcher closed dockerd's
		// connection.
		return false, false
	}
	return !closeConn, framing != framingClose
}

// bodyGrace is how long a finished response waits for the request body's
// copy to report. A body dockerd read (or that fit in the socket buffer)
// reports within microseconds; only one dockerd left unread takes the whole
// grace, and then the connection closes. Not waiting at all would close
// keep-alive connections at random and drop pipelined requests.
const bodyGrace = time.Second

// awaitBody waits up to bodyGrace for the body copy and reports whether it
// ended cleanly; the outcome stays in done for later readers.
func awaitBody(done chan error) bool {
	t := time.NewTimer(bodyGrace)
	defer t.Stop()
	select {
	case err := <-done:
		done <- err
		return err == nil
	case <-t.C:
		return false
	}
}

// watchClient cancels dockerd's request when the client closes while the
// response streams. It peeks, so a pipelined next request stays buffered.
// stop ends the watch and reports whether the client went away.
func (cn *clientConn) watchClient(bodyDone chan error) (stop func() bool) {
	gone := make(chan bool, 1)
	quit := make(chan struct{})
	go func() {
		if bodyDone != nil {
			// The request body is still being read from the client: wait
			// for its end (a body cut short ends the connection anyway).
			select {
			case err := <-bodyDone:
				bodyDone <- err // for awaitBody
				if err != nil {
					gone <- false
					return
				}
			case <-quit:
				gone <- false
				return
			}
		}
		_, err := cn.br.Peek(1)
		var ne net.Error
		isGone := err != nil && !(errors.As(err, &ne) && ne.Timeout())
		if _, unix := UnwrapConn(cn.nc).(*net.UnixConn); unix && errors.Is(err, io.EOF) {
			// EOF may be a half-close: socat and nc -N send the request,
			// shut down their write side and wait for the answer. On a
			// Unix socket only a peer that hung up entirely is gone.
			isGone = waitHangup(cn.nc, quit)
		}
		if isGone {
			// Unblocks the response body read.
			cn.up.nc.Close()
		}
		gone <- isGone
	}()
	return func() bool {
		close(quit)
		cn.nc.SetReadDeadline(aLongTimeAgo)
		g := <-gone
		cn.nc.SetReadDeadline(time.Time{})
		return g
	}
}

// waitHangup reports whether the peer of a Unix socket hangs up entirely
// before quit closes.
func waitHangup(c net.Conn, quit chan struct{}) bool {
	if peerHungUp(c) {
		return true
	}
	t := time.NewTicker(hangupPoll)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return false
		case <-t.C:
			if peerHungUp(c) {
				return true
			}
		}
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// hijack hands the connection over to raw copying after dockerd agreed to it.
func (cn *clientConn) hijack(ctx context.Context, head *requestHead, m *authz.Match, resp *http.Response, up *upstreamConn, rec *audit.Record) bool {
	rec.Hijacked = true
	writeResponseHead(cn.bw, resp, framingClose, resp.StatusCode == http.StatusSwitchingProtocols, false)
	if err := cn.bw.Flush(); err != nil {
		rec.Reason = "client went away before the session started"
		cn.finish(rec, rec.Time)
		return false
	}
	startRec := *rec
	startRec.Phase = audit.PhaseStart
	cn.s.cfg.Audit.Write(&startRec)
	cn.s.hijackStarted()
	in, out := splice(cn.nc, cn.br, up.nc, up.br)
	cn.s.hijackEnded()
	rec.BytesIn += in
	rec.BytesOut += out
	cn.setUpstream(nil) // splice closed it
	if m.ExitOf != "" && m.Vars["name"] != "" {
		// The client is gone already: see exitcode.go.
		if code, ok := cn.sessionExitCode(ctx, m.ExitOf, m.APIVersion, m.Vars["name"]); ok {
			rec.ExitCode = &code
		}
	}
	cn.finish(rec, rec.Time)
	return false
}
