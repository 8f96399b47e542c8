// Package h2relay relays one HTTP/2 connection between the peer that opens
// its streams (a gRPC client) and the peer that answers them, frame by
// frame and byte for byte, and shows each gRPC call to a Watcher, which may
// read the call's messages and refuse the call before the frame that
// completes a message goes on.
//
// Nothing is re-encoded: every frame either goes on as the bytes received
// or is dropped, and the relay only adds frames of its own that leave both
// peers' HPACK state as it was (header fields "never indexed", RST_STREAM,
// WINDOW_UPDATE, GOAWAY). That is what lets it stay out of the timing:
// a frame is forwarded as soon as it is read, except while the Watcher
// judges the message it completes.
package h2relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Call is one gRPC call: a stream the client opened.
type Call struct {
	Stream uint32
	// Method is the call's :path, "/package.Service/Method".
	Method string
	// Metadata are the request's regular header fields (lower-case names).
	Metadata map[string][]string
}

// Watch says which messages of a call the Watcher reads.
type Watch struct {
	Requests, Responses bool
}

// Watcher judges the calls of one relayed connection. Its methods are
// called from the relay's two goroutines (one per direction), so it must
// be safe for concurrent use; each call blocks the direction it was
// called from, and only that one.
type Watcher interface {
	// Start is told of every call the client opens. An error refuses the
	// call: its client gets PERMISSION_DENIED with the error's text.
	Start(c *Call) (Watch, error)
	// Message is shown each whole message of a watched direction (the
	// gRPC length prefix removed) before the frame that completes it is
	// forwarded. An error refuses the call and the frame is not
	// forwarded; keep false stops the reading of that direction. A
	// replacement, when not nil, is forwarded instead of msg; msg must lie
	// whole in the frame that completes it, and a longer replacement is
	// only for a message that ends its call's request (else the call is
	// refused).
	Message(c *Call, response bool, msg []byte) (keep bool, replace []byte, err error)
	// End is told when a started call is over, either way.
	End(c *Call)
}

// Options bound what the relay holds.
type Options struct {
	// MaxMessage is the largest gRPC message of a watched direction
	// (default 32 MiB): a larger one refuses its call.
	MaxMessage int
	// MaxHeaderList is the largest decoded header list (default 1 MiB): a
	// larger one refuses its call.
	MaxHeaderList uint32
	// Grace is how long the client's direction may still flow after the
	// server's ended (default 2 s).
	Grace time.Duration
	// Handle, when not nil, is attached to the relay for as long as it
	// runs: it refuses calls from outside the Watcher.
	Handle *Handle
}

// Handle lets its owner refuse a call of a running relay.
type Handle struct {
	mu sync.Mutex
	r  *relay
}

// Refuse ends the call on stream id as a Watcher's error would: its client
// gets PERMISSION_DENIED and why. It reports whether the call was still
// running.
func (h *Handle) Refuse(id uint32, why error) bool {
	h.mu.Lock()
	r := h.r
	h.mu.Unlock()
	if r == nil {
		return false
	}
	r.mu.Lock()
	c := r.calls[id]
	r.mu.Unlock()
	if c == nil {
		return false
	}
	if err := r.refuse(c, why); err != nil {
		r.fail(err)
	}
	return true
}

func (h *Handle) attach(r *relay) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.r = r
	h.mu.Unlock()
}

// Result is what a relayed connection carried.
type Result struct {
	// FromClient and FromServer are the bytes each peer sent that were
	// forwarded.
	FromClient, FromServer int64
	// Refused is the number of calls refused.
	Refused int
	// Err is why the relay ended the connection itself (a frame it could
	// not read with certainty), nil when a peer ended it.
	Err error
}

// maxRefused bounds the streams a connection may have refused before the
// relay ends it: each is remembered for as long as the connection lasts.
const maxRefused = 10000

// Relay serves the connection until both peers are done with it or ctx
// ends. client sent (or will send) the preface; the readers are the
// buffered readers of each connection, which may hold bytes already read.
// It closes both connections before it returns.
func Relay(ctx context.Context, client net.Conn, clientR *bufio.Reader, server net.Conn, serverR *bufio.Reader, w Watcher, o Options) Result {
	if o.MaxMessage <= 0 {
		o.MaxMessage = 32 << 20
	}
	if o.MaxHeaderList == 0 {
		o.MaxHeaderList = 1 << 20
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	r := &relay{w: w, o: o, calls: map[uint32]*call{}, refused: map[uint32]bool{}}
	r.cl = newPeer("client", client, clientR, o)
	r.sv = newPeer("server", server, serverR, o)

	stop := context.AfterFunc(ctx, func() { r.fail(nil) })
	defer stop()
	o.Handle.attach(r)
	defer o.Handle.attach(nil)

	clientDone := make(chan error, 1)
	go func() { clientDone <- r.pump(r.cl, r.sv) }()
	serverErr := r.pump(r.sv, r.cl)
	var clientErr error
	select {
	case clientErr = <-clientDone:
	case <-time.After(o.Grace):
		r.closeBoth()
		clientErr = <-clientDone
	}
	r.closeBoth()
	r.endAll()

	res := Result{FromClient: r.cl.forwarded, FromServer: r.sv.forwarded, Refused: r.nRefused}
	r.mu.Lock()
	res.Err = r.err
	r.mu.Unlock()
	if res.Err == nil {
		for _, err := range []error{clientErr, serverErr} {
			var pe *protocolError
			if errors.As(err, &pe) {
				res.Err = err
				break
			}
		}
	}
	return res
}

// protocolError is a frame the relay could not read with certainty.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

func protoErr(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

type relay struct {
	cl, sv *peer
	w      Watcher
	o      Options

	mu       sync.Mutex
	calls    map[uint32]*call
	refused  map[uint32]bool
	nRefused int
	lastOpen uint32
	err      error
	failed   bool
	// debt, per direction, is the bytes forwarded that its sender did not
	// spend of its connection window (messages replaced by longer ones).
	debt [2]int64
}

// call is a started call's state. partial[dir] is only touched by that
// direction's goroutine; the rest, once the call is in relay.calls, only
// under relay.mu.
type call struct {
	Call
	watch    [2]bool   // requests, responses
	partial  [2][]byte // a message being read, per direction
	ended    [2]bool
	headers  bool // the server sent response headers
	finished bool // End was called
}

const (
	requests  = 0
	responses = 1
)

// pump relays what from sends to to, frame by frame, until from ends.
func (r *relay) pump(from, to *peer) error {
	dir := requests
	if from == r.sv {
		dir = responses
	}
	if dir == requests {
		if err := from.readPreface(); err != nil {
			var pe *protocolError
			if errors.As(err, &pe) {
				r.fail(err)
			}
			to.closeWrite()
			return err
		}
		if err := to.write(from.take()); err != nil {
			return err
		}
	}
	for {
		f, err := from.fr.ReadFrame()
		if err != nil {
			if isEnd(err) {
				to.closeWrite()
				return nil
			}
			err = protoErr("%s sent a frame dockgate cannot read: %v", from.name, err)
			r.fail(err)
			return err
		}
		raw := from.take()
		out, err := r.frame(dir, from, to, f, raw)
		if err != nil {
			r.fail(err)
			return err
		}
		if out != nil {
			if err := to.write(out); err != nil {
				return err
			}
			from.forwarded += int64(len(raw))
		}
	}
}

func isEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}

// frame handles one frame read from from: it returns what is forwarded in
// its place (raw itself, as read, or nothing). An error ends the
// connection.
func (r *relay) frame(dir int, from, to *peer, f http2.Frame, raw []byte) ([]byte, error) {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		fwd, err := r.headers(dir, from, to, f, raw)
		return keepIf(fwd, raw), err
	case *http2.DataFrame:
		return r.data(dir, from, to, f, raw)
	case *http2.WindowUpdateFrame:
		return r.windowUpdate(dir, f, raw), nil
	case *http2.RSTStreamFrame:
		r.mu.Lock()
		c := r.calls[f.StreamID]
		refused := r.refused[f.StreamID]
		if c != nil {
			c.ended = [2]bool{true, true}
		}
		r.mu.Unlock()
		if c != nil {
			r.end(c)
		}
		// Both peers had dockgate's frames ending it already.
		return keepIf(!refused, raw), nil
	case *http2.PushPromiseFrame:
		return nil, protoErr("%s sent PUSH_PROMISE, which gRPC never does", from.name)
	}
	return raw, nil
}

func keepIf(keep bool, raw []byte) []byte {
	if keep {
		return raw
	}
	return nil
}

// windowUpdate pays the debt of the opposite direction, which sent bytes
// its sender never spent (a message replaced by a longer one), out of the
// connection window its receiver gives back: the sender must not get
// those bytes as credit.
func (r *relay) windowUpdate(dir int, f *http2.WindowUpdateFrame, raw []byte) []byte {
	if f.StreamID != 0 {
		return raw
	}
	r.mu.Lock()
	debt := &r.debt[1-dir]
	pay := min(int64(f.Increment), *debt)
	*debt -= pay
	r.mu.Unlock()
	if pay == 0 {
		return raw
	}
	left := f.Increment - uint32(pay)
	if left == 0 {
		return nil
	}
	out := append([]byte(nil), raw...)
	binary.BigEndian.PutUint32(out[9:13], left)
	return out
}

// headers handles a header block: a new call, response headers or
// trailers. A header block is always forwarded, refused call or not: the
// peer's HPACK table must see every block the sender encoded.
func (r *relay) headers(dir int, from, to *peer, f *http2.MetaHeadersFrame, raw []byte) (bool, error) {
	id := f.StreamID
	r.mu.Lock()
	c := r.calls[id]
	refused := r.refused[id]
	opened := id%2 == 1 && id <= r.lastOpen
	r.mu.Unlock()
	if dir == responses {
		if !opened {
			return false, protoErr("%s sent headers on stream %d, which no call opened", from.name, id)
		}
		// On a call already over (reset by the client, say) the headers
		// were on their way: the client ignores them, but its HPACK
		// table must see them.
		if c != nil {
			r.mu.Lock()
			c.headers = true
			if f.StreamEnded() {
				c.ended[responses] = true
			}
			r.mu.Unlock()
			r.endIfDone(c)
		}
		return true, nil
	}
	if c != nil || refused {
		if refused {
			// A gRPC client never sends trailers; after dockgate's
			// RST_STREAM the server could only take them as a
			// connection error, and they cannot be dropped.
			return false, protoErr("%s sent headers on stream %d after dockgate refused it", from.name, id)
		}
		if f.StreamEnded() {
			r.mu.Lock()
			c.ended[requests] = true
			r.mu.Unlock()
			r.endIfDone(c)
		}
		return true, nil
	}
	r.mu.Lock()
	if id%2 == 0 || id <= r.lastOpen {
		r.mu.Unlock()
		return false, protoErr("%s opened stream %d out of order", from.name, id)
	}
	r.lastOpen = id
	r.mu.Unlock()
	// The call is whole before the other direction can see it: no frame
	// of it comes back before its headers went on.
	c = &call{Call: Call{Stream: id, Method: f.PseudoValue("path"), Metadata: map[string][]string{}}}
	for _, hf := range f.RegularFields() {
		c.Metadata[hf.Name] = append(c.Metadata[hf.Name], hf.Value)
	}
	var err error
	var watch Watch
	if f.Truncated {
		err = fmt.Errorf("the headers of %s are larger than %d bytes", c.Method, r.o.MaxHeaderList)
	} else {
		watch, err = r.w.Start(&c.Call)
	}
	c.watch = [2]bool{watch.Requests, watch.Responses}
	c.ended[requests] = f.StreamEnded()
	r.mu.Lock()
	r.calls[id] = c
	r.mu.Unlock()
	if err != nil {
		// The server gets the headers (its HPACK table must), then at
		// once the RST_STREAM, and never a message of the call.
		if werr := to.write(raw); werr != nil {
			return false, werr
		}
		from.forwarded += int64(len(raw))
		return false, r.refuse(c, err)
	}
	return true, nil
}

// data handles a DATA frame: it reads the messages of a watched
// direction, and drops what either peer still sends on a refused call
// (the gRPC client's transport would ignore it; dropped, it never reaches
// the server at all), giving the sender its flow-control window back.
func (r *relay) data(dir int, from, to *peer, f *http2.DataFrame, raw []byte) ([]byte, error) {
	id := f.StreamID
	r.mu.Lock()
	c := r.calls[id]
	refused := r.refused[id]
	watching := c != nil && c.watch[dir]
	r.mu.Unlock()
	if refused {
		return nil, r.credit(from, f)
	}
	if c == nil {
		// A stream already over: the peer ignores the frame, and counts
		// it against the connection's flow control as sent.
		return raw, nil
	}
	out := raw
	if watching {
		var err error
		if out, err = r.read(c, dir, f, raw); err != nil {
			return nil, r.refuseDropping(c, from, f, err)
		}
	}
	if f.StreamEnded() {
		r.mu.Lock()
		c.ended[dir] = true
		r.mu.Unlock()
		r.endIfDone(c)
	}
	return out, nil
}

// read shows the Watcher each message a DATA frame of a watched direction
// completes, and returns the frame as it is forwarded: raw, with any
// replacement the Watcher gave written over its message, or, where a
// replacement is longer, the frame's data rebuilt into as many DATA frames
// as it takes.
func (r *relay) read(c *call, dir int, f *http2.DataFrame, raw []byte) ([]byte, error) {
	carried := len(c.partial[dir]) // bytes of the partial message from earlier frames
	buf := append(c.partial[dir], f.Data()...)
	off := 0
	watching := true
	var edits []edit
	for watching {
		msg, _, ok, err := nextMessage(buf[off:], r.o.MaxMessage)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		keep, replace, err := r.w.Message(&c.Call, dir == responses, msg)
		if err != nil {
			return nil, err
		}
		if replace != nil {
			at := off - carried // where msg's prefix starts in this frame's data
			if at < 0 {
				return nil, fmt.Errorf("dockgate cannot rewrite a message that began in an earlier frame (%d of its bytes)", -at)
			}
			edits = append(edits, edit{at: at, old: 5 + len(msg), msg: replace})
		}
		off += 5 + len(msg)
		if !keep {
			watching = false
			r.mu.Lock()
			c.watch[dir] = false
			r.mu.Unlock()
		}
	}
	if !watching || off == len(buf) {
		c.partial[dir] = nil // let a large message's buffer go
	} else {
		c.partial[dir] = append([]byte(nil), buf[off:]...)
	}
	if len(edits) == 0 {
		return raw, nil
	}
	return r.rewrite(dir, f, raw, edits)
}

// edit is a message of a DATA frame to forward as msg: old bytes (prefix
// included) at at in the frame's data.
type edit struct {
	at, old int
	msg     []byte
}

// maxGrownMessage bounds a message replaced by a longer one: its stream's
// window on the receiver is at least the protocol's initial 65535 bytes,
// so the bytes the sender never spent cannot overrun it.
const maxGrownMessage = 65535

// rewrite applies edits to the DATA frame raw. Same-length replacements
// are written in place. A longer one is forwarded in rebuilt frames of at
// most 16384 bytes of data (the smallest maximum a peer may set), only on
// the frame that ends the sender's side of the call (no later data of the
// stream could overrun its window), and the bytes added are a debt of the
// connection window (windowUpdate).
func (r *relay) rewrite(dir int, f *http2.DataFrame, raw []byte, edits []edit) ([]byte, error) {
	start := 9 // the frame header, then the pad length if padded
	if f.Header().Flags.Has(http2.FlagDataPadded) {
		start++
	}
	grown := 0
	for _, e := range edits {
		grown += 5 + len(e.msg) - e.old
	}
	if grown == 0 {
		for _, e := range edits {
			if len(e.msg)+5 != e.old {
				return nil, fmt.Errorf("dockgate cannot rewrite a message to a shorter one")
			}
			copy(raw[start+e.at+5:], e.msg)
		}
		return raw, nil
	}
	if grown < 0 || f.Header().Flags.Has(http2.FlagDataPadded) || !f.StreamEnded() {
		return nil, fmt.Errorf("dockgate cannot rewrite this message: only a message that ends its call's request may grow, in a frame without padding")
	}
	data := f.Data()
	var out []byte
	prev := 0
	for _, e := range edits {
		if 5+len(e.msg) > maxGrownMessage {
			return nil, fmt.Errorf("dockgate cannot rewrite a message to %d bytes (at most %d)", 5+len(e.msg), maxGrownMessage)
		}
		out = append(out, data[prev:e.at]...)
		out = append(out, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(out[len(out)-4:], uint32(len(e.msg)))
		out = append(out, e.msg...)
		prev = e.at + e.old
	}
	out = append(out, data[prev:]...)
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	for len(out) > 0 {
		n := min(len(out), 16384)
		if err := fr.WriteData(f.StreamID, n == len(out), out[:n]); err != nil {
			return nil, err
		}
		out = out[n:]
	}
	r.mu.Lock()
	r.debt[dir] += int64(grown)
	r.mu.Unlock()
	return b.Bytes(), nil
}

// nextMessage splits the first whole gRPC message off buf.
func nextMessage(buf []byte, max int) (msg, rest []byte, ok bool, err error) {
	if len(buf) < 5 {
		return nil, buf, false, nil
	}
	if buf[0] != 0 {
		return nil, nil, false, errors.New("dockgate cannot read a compressed gRPC message")
	}
	n := int(uint32(buf[1])<<24 | uint32(buf[2])<<16 | uint32(buf[3])<<8 | uint32(buf[4]))
	if n > max || n < 0 {
		return nil, nil, false, fmt.Errorf("a gRPC message of %d bytes is larger than dockgate reads (%d)", n, max)
	}
	if len(buf) < 5+n {
		return nil, buf, false, nil
	}
	return buf[5 : 5+n], buf[5+n:], true, nil
}

// refuseDropping refuses c on a frame of its own that is dropped.
func (r *relay) refuseDropping(c *call, from *peer, f *http2.DataFrame, err error) error {
	if ferr := r.refuse(c, err); ferr != nil {
		return ferr
	}
	return r.credit(from, f)
}

// refuse ends call c with why: its client gets trailers saying
// PERMISSION_DENIED, its server a RST_STREAM(CANCEL), and what the client
// still sends on it is dropped.
func (r *relay) refuse(c *call, why error) error {
	r.mu.Lock()
	if r.refused[c.Stream] {
		r.mu.Unlock()
		return nil
	}
	if r.nRefused >= maxRefused {
		r.mu.Unlock()
		return protoErr("the client had more than %d calls refused on one connection", maxRefused)
	}
	r.refused[c.Stream] = true
	r.nRefused++
	headers := c.headers
	c.ended = [2]bool{true, true}
	c.watch = [2]bool{}
	r.mu.Unlock()
	if err := r.cl.inject(func(fr *http2.Framer) error { return writeRefusal(fr, c.Stream, headers, why.Error()) }); err != nil {
		return err
	}
	if err := r.sv.inject(func(fr *http2.Framer) error { return fr.WriteRSTStream(c.Stream, http2.ErrCodeCancel) }); err != nil {
		return err
	}
	r.end(c)
	return nil
}

// credit gives the sender of a dropped DATA frame back the connection
// flow-control window it spent: the receiver never counts that frame.
func (r *relay) credit(from *peer, f *http2.DataFrame) error {
	n := f.Header().Length
	if n == 0 {
		return nil
	}
	return from.inject(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, n) })
}

// writeRefusal writes the trailers that end stream id with
// PERMISSION_DENIED and msg. Every field is "never indexed": the client's
// HPACK table stays exactly as the server's encoder left it.
func writeRefusal(fr *http2.Framer, id uint32, afterHeaders bool, msg string) error {
	var hb []byte
	buf := &byteWriter{b: &hb}
	enc := hpack.NewEncoder(buf)
	field := func(name, value string) {
		_ = enc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: true})
	}
	if !afterHeaders {
		field(":status", "200")
		field("content-type", "application/grpc")
	}
	field("grpc-status", "7") // PERMISSION_DENIED
	field("grpc-message", percentEncode(msg))
	return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb, EndStream: true, EndHeaders: true})
}

type byteWriter struct{ b *[]byte }

func (w *byteWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// percentEncode encodes a grpc-message value: bytes outside printable
// ASCII, and '%', as %XX.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			out = append(out, '%', hex[c>>4], hex[c&15])
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

func (r *relay) endIfDone(c *call) {
	r.mu.Lock()
	done := c.ended[requests] && c.ended[responses]
	r.mu.Unlock()
	if done {
		r.end(c)
	}
}

// end tells the Watcher c is over, once, and forgets it.
func (r *relay) end(c *call) {
	r.mu.Lock()
	if c.finished {
		r.mu.Unlock()
		return
	}
	c.finished = true
	delete(r.calls, c.Stream)
	r.mu.Unlock()
	r.w.End(&c.Call)
}

func (r *relay) endAll() {
	r.mu.Lock()
	var open []*call
	for _, c := range r.calls {
		open = append(open, c)
	}
	r.mu.Unlock()
	for _, c := range open {
		r.end(c)
	}
}

// fail ends the connection: with err (a frame the relay could not read),
// both peers get GOAWAY(PROTOCOL_ERROR) saying why; with nil (ctx ended)
// both are just closed.
func (r *relay) fail(err error) {
	r.mu.Lock()
	if r.failed {
		r.mu.Unlock()
		return
	}
	r.failed = true
	if err != nil {
		r.err = err
	}
	last := r.lastOpen
	r.mu.Unlock()
	if err != nil {
		debug := []byte("dockgate: " + err.Error())
		for _, p := range []*peer{r.cl, r.sv} {
			_ = p.injectWithin(time.Second, func(fr *http2.Framer) error { return fr.WriteGoAway(last, http2.ErrCodeProtocol, debug) })
		}
	}
	r.closeBoth()
}

func (r *relay) closeBoth() {
	r.cl.conn.Close()
	r.sv.conn.Close()
}
