package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// copyResponse sends a response that stays HTTP to the client, flushing as
// data arrives so that logs, events and progress streams are not held back.
// It reports whether the client connection may carry another request, and
// whether dockerd's connection ended cleanly.
func (cn *clientConn) copyResponse(ctx context.Context, head *requestHead, m *authz.Match, resp *http.Response, bodyDone chan error, rec *audit.Record) (keep, upstreamOK bool) {
	defer func() {
		if !upstreamOK {
			// Closing an unfinished body reads it to its end, and a
			// stream (events, logs -f) whose client went away has none:
			// dockerd's connection goes first, so that the read ends.
			cn.up.nc.Close()
		}
		resp.Body.Close()
	}()
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
	guard := head.lines
	if resp.StatusCode != http.StatusOK || framing != framingChunked && framing != framingClose {
		guard = nil
	}
	if guard != nil {
		guard.attach(cn.up.nc)
		defer guard.stop()
	}
	bodySize := resp.ContentLength
	if framing != framingLength {
		bodySize = -1
	}
	var copyErr, clientErr error
	var buf []byte
	if raw, ok := unreadChunked(resp.Body); ok && framing == framingChunked && guard == nil && capture == nil && built == nil {
		// Nothing here reads the body: its chunks go out as they came.
		var n int64
		n, copyErr, clientErr = raw.forwardChunked(cn.bw)
		rec.BytesOut += n
	} else {
		buf = cn.buffer(bodySize)
	}
	for buf != nil && framing != framingNone {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			rec.BytesOut += int64(n)
			if capture != nil {
				capture.Write(buf[:n])
			}
			if built != nil {
				built.Write(buf[:n])
			}
			if guard != nil {
				clientErr = writeBody(cn.bw, framing, guard.pass(buf[:n]))
			} else if framing == framingChunked {
				// buf is chunkData(cn.buf): a bodySize of -1 asked for it.
				_, clientErr = cn.bw.Write(chunkFrame(cn.buf, n))
			} else {
				_, clientErr = cn.bw.Write(buf[:n])
			}
			// Flush whenever the next read could wait for dockerd, so
			// that a stream is never held back; bytes already buffered
			// from dockerd go out together.
			if clientErr == nil && !bodyReady(resp.Body) {
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
	if guard != nil && clientErr == nil {
		tail, reason, absorbed := guard.finish(ctx, copyErr)
		if reason != "" {
			rec.Reason = reason
		}
		if absorbed {
			// dockgate cut dockerd's stream (a refused build dockerd
			// did not end in time): it ends here, with its connection.
			copyErr, closeConn = nil, true
			defer cn.up.nc.Close()
		}
		if copyErr == nil {
			if clientErr = writeBody(cn.bw, framing, tail); clientErr == nil {
				clientErr = cn.bw.Flush()
			}
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

// writeBody writes p, a piece of a response body, in the response's framing.
func writeBody(w *bufio.Writer, framing bodyFraming, p []byte) error {
	if framing == framingChunked {
		_, err := chunkedWriter{w: w}.Write(p)
		return err
	}
	_, err := w.Write(p)
	return err
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
	// The watch lasts as long as the response: no idle deadline may end it.
	cn.clearReadDeadline()
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
		cn.setReadDeadline(aLongTimeAgo)
		g := <-gone
		cn.setReadDeadline(time.Time{})
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

// bodyReady says whether the next Read of a response body can be answered
// without waiting for dockerd.
func bodyReady(body io.Reader) bool {
	b, ok := body.(*upstreamBody)
	return ok && b.ready()
}
