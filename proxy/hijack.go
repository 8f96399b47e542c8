package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"golang.org/x/sys/unix"
)

// hijackGrace is how long stdin may still flow after dockerd ended the
// session's output. dockerd closes an attach or exec when the process ends,
// so nothing written after that can matter; without a bound a client that
// never closes its end would hold the connection forever.
const hijackGrace = 2 * time.Second

// isRawStream says dockerd hijacked the connection without an Upgrade
// handshake: old clients attach and exec that way, and dockerd answers 200
// with one of these media types and then streams raw bytes until it closes.
func isRawStream(resp *http.Response) bool {
	ct := resp.Header.Get("Content-Type")
	return resp.StatusCode == http.StatusOK &&
		(strings.HasPrefix(ct, "application/vnd.docker.raw-stream") ||
			strings.HasPrefix(ct, "application/vnd.docker.multiplexed-stream"))
}

// closeWriter is a connection that can half-close: *net.UnixConn,
// *net.TCPConn, *tls.Conn and dockgate's own wrappers.
type closeWriter interface {
	CloseWrite() error
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// hangupPoll is how often a client that ended its input is checked for
// having gone away entirely while the session's output is quiet.
const hangupPoll = time.Second

// splice copies both directions of a hijacked connection until both end.
// Each reader is the bufio.Reader that already holds bytes read past the
// response or request head: they are part of the stream and must be sent
// first, or the start of the output (or of stdin) is lost. When one side
// ends its output, the other side's write half is closed, so that stdin EOF
// reaches the container while its output keeps flowing, and the end of the
// output reaches the client. It returns the bytes copied each way.
func splice(client net.Conn, clientR *bufio.Reader, up net.Conn, upR *bufio.Reader, buf []byte) (in, out int64) {
	inDone := make(chan struct{})
	outDone := make(chan struct{})
	go func() {
		defer close(inDone)
		in, _ = copyAfter(up, clientR, client, nil)
		closeWrite(up)
		// A client that closed only its write half still reads the output;
		// one that hung up entirely never will, and an attach whose
		// container is silent would otherwise hold both sockets forever.
		t := time.NewTicker(hangupPoll)
		defer t.Stop()
		for {
			select {
			case <-outDone:
				return
			case <-t.C:
				if peerHungUp(client) {
					up.Close()
					return
				}
			}
		}
	}()
	out, _ = copyAfter(client, upR, up, buf)
	close(outDone)
	closeWrite(client)
	select {
	case <-inDone:
	case <-time.After(hijackGrace):
		// Closing both ends unblocks the reader goroutine.
	}
	up.Close()
	client.Close()
	<-inDone
	return in, out
}

// copyAfter copies to dst what br holds of src, then the rest of src
// straight from the socket. Between a TCP socket and another socket (a
// dockerd on tcp://), Go's io.Copy then moves the bytes with splice(2),
// never through dockgate's memory; a bufio.Reader in the way would keep
// it from that. Between two Unix sockets Go offers no splice, and the
// copy goes through buf (nil: io.Copy's own).
func copyAfter(dst io.Writer, br *bufio.Reader, src io.Reader, buf []byte) (int64, error) {
	var n int64
	if k := br.Buffered(); k > 0 {
		p, _ := br.Peek(k)
		m, err := dst.Write(p)
		br.Discard(m)
		if n = int64(m); err != nil {
			return n, err
		}
	}
	m, err := io.CopyBuffer(dst, src, buf)
	return n + m, err
}

// peerHungUp reports whether the peer of a Unix socket closed both
// directions; a peer that only shut down its write half does not count.
// Other connections cannot tell the two apart and report false.
func peerHungUp(c net.Conn) bool {
	sc, ok := UnwrapConn(c).(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	hup := false
	raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, _ := unix.Poll(fds, 0); n > 0 {
			hup = fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
		}
	})
	return hup
}

// isClosedErr reports errors that only mean the peer went away.
func isClosedErr(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// startSession gives the client dockerd's answer that switches the
// connection to a session, and records that the session started. It
// reports false, with the record finished, when the client is gone; else
// the caller calls hijackEnded when the session is over.
func (cn *clientConn) startSession(resp *http.Response, upgrade bool, rec *audit.Record) bool {
	rec.Hijacked = true
	writeResponseHead(cn.bw, resp, framingClose, upgrade, false)
	if err := cn.bw.Flush(); err != nil {
		rec.Reason = "client went away before the session started"
		cn.finish(rec, rec.Time)
		return false
	}
	startRec := *rec
	startRec.Phase = audit.PhaseStart
	cn.s.cfg.Audit.Write(&startRec)
	cn.s.hijackStarted()
	return true
}

// hijack hands the connection over to raw copying after dockerd agreed to it.
func (cn *clientConn) hijack(ctx context.Context, head *requestHead, m *authz.Match, resp *http.Response, up *upstreamConn, rec *audit.Record) bool {
	// A session lasts as long as its peers want: no idle deadline.
	cn.clearReadDeadline()
	if !cn.startSession(resp, resp.StatusCode == http.StatusSwitchingProtocols, rec) {
		return false
	}
	in, out := splice(cn.nc, cn.br, up.nc, up.br, cn.buffer(-1))
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
