package h2relay

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// peer is one side of the relayed connection: what is read from it and
// the lock that keeps what is written to it whole frames.
type peer struct {
	name string
	conn net.Conn
	rec  *recorder
	fr   *http2.Framer
	// forwarded counts the bytes read from this peer and forwarded;
	// written by its own goroutine only.
	forwarded int64

	wmu sync.Mutex
}

// recorder keeps the bytes the framer reads, so that the frame is
// forwarded exactly as received. http2.Framer reads a frame's header and
// payload exactly, never ahead.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (rc *recorder) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	rc.buf = append(rc.buf, p[:n]...)
	return n, err
}

func newPeer(name string, c net.Conn, br *bufio.Reader, o Options) *peer {
	p := &peer{name: name, conn: c}
	var src io.Reader = c
	if br != nil {
		src = br
	}
	p.rec = &recorder{r: src}
	p.fr = http2.NewFramer(nil, p.rec)
	// The largest frame any peer may announce it accepts: the relay
	// forwards, the receiving peer enforces its own setting.
	p.fr.SetMaxReadFrameSize(1<<24 - 1)
	dec := hpack.NewDecoder(4096, nil)
	// The sender may grow its table up to what its peer announced; the
	// size updates in the blocks say by how much, so any bound the peer
	// could announce is accepted here and the peer enforces its own.
	dec.SetAllowedMaxDynamicTableSize(1 << 24)
	p.fr.ReadMetaHeaders = dec
	p.fr.MaxHeaderListSize = o.MaxHeaderList
	return p
}

// readPreface reads the client connection preface.
func (p *peer) readPreface() error {
	b := make([]byte, len(Preface))
	if _, err := io.ReadFull(p.rec, b); err != nil {
		if err == io.ErrUnexpectedEOF {
			return protoErr("%s closed in the middle of the HTTP/2 preface", p.name)
		}
		return err
	}
	if string(b) != Preface {
		return protoErr("%s did not start with the HTTP/2 preface", p.name)
	}
	return nil
}

// take returns the bytes read since the last take. They are valid until
// the next read: the buffer is reused, except after a large frame.
func (p *peer) take() []byte {
	b := p.rec.buf
	p.rec.buf = b[:0]
	if cap(b) > 1<<20 {
		p.rec.buf = nil
	}
	return b
}

// write sends b to the peer, whole.
func (p *peer) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.conn.Write(b)
	return err
}

// inject writes the frames f encodes to the peer, between two frames
// of the relayed stream.
func (p *peer) inject(f func(fr *http2.Framer) error) error {
	var b bytes.Buffer
	if err := f(http2.NewFramer(&b, nil)); err != nil {
		return err
	}
	return p.write(b.Bytes())
}

// injectWithin is inject with a write deadline: the peer may not read.
func (p *peer) injectWithin(d time.Duration, f func(fr *http2.Framer) error) error {
	_ = p.conn.SetWriteDeadline(time.Now().Add(d))
	return p.inject(f)
}

// closeWrite half-closes the peer's connection where it can.
func (p *peer) closeWrite() {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := p.conn.(closeWriter); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = p.conn.Close()
}
