package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
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

// splice copies both directions of a hijacked connection until both end.
// Each reader is the bufio.Reader that already holds bytes read past the
// response or request head: they are part of the stream and must be sent
// first (moby#39000-style losses come from dropping them). When one side ends
// its output, the other side's write half is closed, so that stdin EOF
// reaches the container while its output keeps flowing, and the end of the
// output reaches the client. It returns the bytes copied each way.
func splice(client net.Conn, clientR *bufio.Reader, up net.Conn, upR *bufio.Reader) (in, out int64) {
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		in, _ = io.Copy(up, clientR)
		closeWrite(up)
	}()
	out, _ = io.Copy(client, upR)
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

// isClosedErr reports errors that only mean the peer went away.
func isClosedErr(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}
