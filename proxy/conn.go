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
	"sync"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
)

// aLongTimeAgo is a deadline that has passed, to unblock a pending read.
var aLongTimeAgo = time.Unix(1, 0)

// maxDrain is how much of a refused request's body is read to keep the
// connection usable; after a larger body the connection closes (linger).
const maxDrain = 256 << 10

// clientConn is one client connection and the dockerd connection that serves
// it. Requests on it are handled one at a time, in order, each authorized on
// its own: keep-alive and pipelining never let a request skip the decision.
type clientConn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	caller *audit.Caller // as the records show it (Caller.AuditCaller): one for all of them
	// set are the server's limits and timeouts as they were when the
	// connection was accepted: a reload does not change them midway.
	set *Settings
	// subjects, name and cred are the caller's policy subjects, its name
	// in messages and its host credentials, worked out once per
	// connection.
	subjects []string
	name     string
	cred     *authz.Cred
	// up is the dockerd connection: set and cleared by the serving
	// goroutine through setUpstream, closed by cutUpstream when the
	// server stops (upstreamcut.go). upMu guards writes and upCut.
	up    *upstreamConn
	upMu  sync.Mutex
	upCut bool
	buf   []byte // copy buffer, allocated on first use
	// small is the copy buffer of a body shorter than it (buffer): an
	// answer like /_ping's takes no allocation.
	small [256]byte
	// prevHead is what the connection's last request head left for the
	// next one to reuse (wire.go).
	prevHead headCache
	// idle says the connection waits for the first byte of its next
	// request (Server.setIdle); idleMu guards it.
	idleMu sync.Mutex
	idle   bool
	// readDeadline is the read deadline armed on nc, and idleArmed says
	// it is the idle one (deadline.go).
	readDeadline time.Time
	idleArmed    bool
	// pending is the record of the request being served until finish
	// writes it: a handler that panics still leaves its record.
	pending *audit.Record
	// rec and facts hold the record newRecord starts and its facts
	// (auditFacts): the connection serves one request at a time, and
	// finish writes a request's record before the next one is read, so
	// they need not be allocated per request. A record a goroutine
	// other than the serving one makes (a BuildKit call) is its own.
	rec   audit.Record
	facts []audit.FactResult
	// req is what handle asks the decider, for the same reason: nothing
	// of the decision outlives its request (authz starts no goroutine).
	req authz.Request
	// accepted is when the connection was accepted: its first request
	// head must be in by accepted + HeaderTimeout.
	accepted time.Time
	// admitted, when set, tells Serve that the connection is admitted or
	// refused, no longer being identified; release gives its caller's
	// connection slot back (fairshare.go). Both are called once, by the
	// serving goroutine.
	admitted, release func()
}

// connBufSize sizes the buffered reader and writer of each connection, both
// sides. Bulk data bypasses them (reads and writes of a whole copy buffer go
// straight to the socket), so they only need to hold request and response
// heads; small buffers keep a client that opens a connection per command
// (the docker CLI does) from costing 128 KiB of garbage each time.
const connBufSize = 8 << 10

// upstreamReadBufSize sizes the reader of dockerd's connection: larger than
// a client's, so that one read takes several of the chunks dockerd streams
// (32 KiB each) and Go's chunked reader hands them over together where
// their size lines are already read, never waiting for another.
const upstreamReadBufSize = 64 << 10

// copyBufSize is the chunk in which bodies and streams are copied.
const copyBufSize = 128 << 10

// buffer is the connection's copy buffer for a body of size bytes (-1:
// unknown): allocated once per connection when a large or unknown body
// needs it, just big enough for a small one, and the connection's own
// small array for the smallest (an answer like /_ping's "OK").
func (cn *clientConn) buffer(size int64) []byte {
	if cn.buf == nil && size >= 0 && size < int64(len(cn.small)) {
		return cn.small[:max(size, 1)]
	}
	if cn.buf == nil && size >= 0 && size < copyBufSize {
		return make([]byte, size)
	}
	if cn.buf == nil {
		cn.buf = chunkBuffer(copyBufSize)
	}
	return chunkData(cn.buf)
}

// bulkReader gives the connection a reader of copyBufSize, once, for a
// chunked body it streams: through connBufSize's reader each chunk of the
// body cost two or three reads of the socket (its data straight into the
// copy buffer, then its CRLF and the next size line on their own), where
// this one takes several chunks in one read. What the small reader held
// is read first.
func (cn *clientConn) bulkReader() *bufio.Reader {
	if cn.br.Size() < copyBufSize {
		held, _ := cn.br.Peek(cn.br.Buffered())
		cn.br = bufio.NewReaderSize(&heldReader{held: bytes.Clone(held), r: cn.nc}, copyBufSize)
	}
	return cn.br
}

// heldReader reads held, then r.
type heldReader struct {
	held []byte
	r    io.Reader
}

func (h *heldReader) Read(p []byte) (int, error) {
	if len(h.held) > 0 {
		n := copy(p, h.held)
		h.held = h.held[n:]
		return n, nil
	}
	return h.r.Read(p)
}

func (s *Server) newConn(nc net.Conn) *clientConn {
	return &clientConn{
		s:        s,
		nc:       nc,
		set:      s.settings.Load(),
		br:       bufio.NewReaderSize(nc, connBufSize),
		bw:       bufio.NewWriterSize(nc, connBufSize),
		accepted: time.Now(),
	}
}

// admissionDone tells Serve, once, that this connection no longer counts
// among those being identified.
func (cn *clientConn) admissionDone() {
	if cn.admitted != nil {
		cn.admitted()
		cn.admitted = nil
	}
}

func (cn *clientConn) serve(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			// A bug must not take the other connections down, and the
			// request it hit was never forwarded on a guess: it was being
			// judged or streamed, and the connection now closes.
			cn.s.cfg.Log.Error().Interface("panic", p).Msg("connection handler panicked; connection closed")
			if rec := cn.pending; rec != nil {
				rec.Decision, rec.Status = audit.DecisionError, http.StatusInternalServerError
				rec.Reason = fmt.Sprintf("dockgate failed serving the request: %v", p)
				cn.finish(rec, rec.Time)
			}
		}
		cn.dropUpstream()
		cn.nc.Close()
		// After the close, so that the slot is free only once the
		// descriptor is.
		if cn.release != nil {
			cn.release()
		}
		cn.admissionDone()
		cn.s.untrack(cn)
	}()
	caller, err := cn.s.cfg.Identify(cn.nc)
	if err != nil {
		// Without an identity there is nothing to judge: refuse the first
		// request and close.
		cn.s.cfg.Log.Warn().Err(err).Msg("cannot identify caller")
		cn.refuseUnidentified(err)
		return
	}
	cn.caller, cn.subjects, cn.name, cn.cred = caller.AuditCaller(), caller.Subjects(), caller.String(), caller.Cred()
	release, refused := cn.s.limiter.acquire(caller)
	if refused != nil {
		// Identified: the accept loop need not wait for the refusal.
		cn.admissionDone()
		cn.refuseLoad(refused)
		return
	}
	cn.release = release
	cn.admissionDone()
	defer cn.watchUpstream(ctx)()
	for first := true; ctx.Err() == nil; first = false {
		// Between requests the connection is idle, and Shutdown closes
		// it (see Server.setIdle for the order of these calls). A
		// connection that has not sent a request yet holds its caller's
		// slot for nothing: its whole first head must be in within
		// HeaderTimeout of the accept, not IdleTimeout.
		if first {
			cn.setReadDeadline(cn.accepted.Add(cn.set.HeaderTimeout))
		} else {
			cn.armIdle(time.Now())
		}
		if !cn.s.setIdle(cn, true) {
			return
		}
		_, err := cn.br.Peek(1)
		cn.s.setIdle(cn, false)
		if err != nil {
			var ne net.Error
			if first && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil && !cn.s.isDraining() {
				cn.s.observeSilentClosed()
			}
			return
		}
		start := time.Now()
		if !first && !headBuffered(cn.br) {
			// The rest of the head is still to come: from here on it has
			// HeaderTimeout to arrive (slowloris). A head that came whole
			// with its first byte is parsed without reading, so the
			// deadline is not moved for it (a timer change saved per
			// request). The first head keeps the deadline of its accept.
			cn.setReadDeadline(start.Add(cn.set.HeaderTimeout))
		}
		head, err := readNextRequestHead(cn.br, cn.set.Limits, &cn.prevHead)
		cn.headRead(head)
		if err == errHTTP2 && first {
			cn.refuseHTTP2(start)
			return
		}
		if err != nil {
			cn.refuseMalformed(start, head, err)
			return
		}
		if !cn.handle(ctx, start, head) {
			return
		}
		cn.forgetRequest()
	}
}

// forgetRequest empties the storage the request just served was kept in
// (its head, decider request, record and facts) so that an idle
// connection holds nothing of it: a head's long lines, a judged body.
func (cn *clientConn) forgetRequest() {
	cn.prevHead.head.reset()
	cn.req = authz.Request{}
	cn.rec = audit.Record{}
	clear(cn.facts[:cap(cn.facts)])
}

// newRecord starts the audit record of a request.
func (cn *clientConn) newRecord(start time.Time, head *requestHead) *audit.Record {
	cn.rec = audit.Record{Time: start, RequestID: cn.s.nextRequestID(), Caller: cn.caller}
	r := &cn.rec
	if head != nil {
		r.Method = head.Method
		r.Path = head.Target
	}
	cn.pending = r
	return r
}

// auditFacts copies the decider's fact results into the record's type:
// into *buf's storage when buf is given (a connection's, kept for its next
// request), else into one allocation of exactly their size; none when
// there are none. What it returns has no room to grow into the storage.
// The two types have the same fields, so that each converts to the other:
// should policy.FactResult change, this stops compiling rather than lose a
// field from the record.
func auditFacts(buf *[]audit.FactResult, fs []policy.FactResult) []audit.FactResult {
	if len(fs) == 0 {
		return nil
	}
	var out []audit.FactResult
	if buf != nil {
		out = (*buf)[:0]
	} else {
		out = make([]audit.FactResult, 0, len(fs))
	}
	for _, f := range fs {
		out = append(out, audit.FactResult(f))
	}
	if buf != nil {
		*buf = out
	}
	return out[:len(out):len(out)]
}

func (cn *clientConn) finish(rec *audit.Record, start time.Time) {
	rec.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if cn.pending == rec {
		cn.pending = nil
	}
	cn.s.cfg.Audit.Write(rec)
	cn.s.observeFinished(rec)
}

// refuseMalformed answers a request that could not be parsed. The
// connection is closed after it: where one request ends is unknown.
func (cn *clientConn) refuseMalformed(start time.Time, head *requestHead, err error) {
	var we *wireError
	answer := true
	if !errors.As(err, &we) {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			we = &wireError{Status: http.StatusRequestTimeout, Msg: "request head not received in time"}
		case isClosedErr(err) || errors.Is(err, io.ErrUnexpectedEOF):
			// The first byte had arrived, so this was a request: it goes
			// on record although nobody is left to answer.
			we = &wireError{Status: http.StatusBadRequest, Msg: "connection closed in the middle of the request head"}
			answer = false
		default:
			we = &wireError{Status: http.StatusBadRequest, Msg: "malformed request: " + err.Error()}
		}
	}
	rec := cn.newRecord(start, head)
	rec.Action = authz.ActionUnknown
	rec.Decision = audit.DecisionError
	rec.Reason = we.Msg
	rec.Status = we.Status
	cn.finish(rec, start)
	if answer {
		method := ""
		if head != nil {
			method = head.Method
		}
		// The rest of what the client sends (a body after a head
		// refused for its size, say) is dropped, bounded, rather than
		// reset: see linger. A client too slow to send its head is not
		// waited for again.
		if writeError(cn.bw, method, we.Status, we.Msg, true) == nil && we.Status != http.StatusRequestTimeout {
			cn.linger(nil)
		}
	}
}

// refuseLoad answers a connection its caller may not open with 503 naming
// the caller and the limit, and records it under that caller. The answer
// waits for the request head, up to refuseDeadline: a client that is
// still writing its request when the connection closes sees a broken pipe
// instead of the message. Only maxRefusing refusals wait at a time;
// beyond that (a flood) the answer goes out at once.
func (cn *clientConn) refuseLoad(r *loadRefusal) {
	cn.s.observeConnRefused(r.limit)
	start := time.Now()
	var head *requestHead
	select {
	case cn.s.refusing <- struct{}{}:
		cn.setReadDeadline(start.Add(refuseDeadline))
		if h, err := readRequestHead(cn.br, cn.set.Limits); err == nil {
			head = h
		}
		<-cn.s.refusing
	default:
	}
	_ = cn.nc.SetWriteDeadline(time.Now().Add(refuseDeadline))
	rec := cn.newRecord(start, head)
	rec.Decision, rec.Status, rec.Reason = audit.DecisionError, http.StatusServiceUnavailable, r.msg
	cn.finish(rec, start)
	method := ""
	if head != nil {
		method = head.Method
	}
	writeError(cn.bw, method, rec.Status, rec.Reason, true)
}

// refuseDeadline bounds how long writing a refusal may take: the client
// is hostile and may never read it.
const refuseDeadline = time.Second

func (cn *clientConn) refuseUnidentified(err error) {
	_ = cn.nc.SetDeadline(time.Now().Add(refuseDeadline))
	start := time.Now()
	rec := cn.newRecord(start, nil)
	rec.Decision = audit.DecisionError
	rec.Reason = "cannot identify caller: " + err.Error()
	rec.Status = http.StatusForbidden
	cn.finish(rec, start)
	writeError(cn.bw, "", http.StatusForbidden, rec.Reason, true)
}

// handle serves one request; it reports whether the connection may carry
// another one.
func (cn *clientConn) handle(ctx context.Context, start time.Time, head *requestHead) bool {
	rec := cn.newRecord(start, head)

	m, err := cn.s.cfg.Router.Route(head.Method, head.URL)
	if err != nil {
		rec.Action = authz.ActionUnknown
		return cn.refuse(head, rec, audit.DecisionError, http.StatusBadRequest, err.Error())
	}
	rec.Action, rec.APIVersion = m.Action, m.APIVersion
	if err := cn.s.cfg.Audit.Check(); err != nil {
		// Fail closed: a request that cannot be recorded is not served.
		// Check has just probed the sink; the refusal's record is tried
		// too and is on record if the sink works by then.
		return cn.refuse(head, rec, audit.DecisionError, http.StatusServiceUnavailable, "audit log unavailable: "+err.Error())
	}

	var body []byte
	plan := m.BodyPlan(head.Method, head.Header)
	if plan != authz.BodyForwarded && head.hasBody() {
		if head.ExpectContinue {
			cn.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			cn.bw.Flush()
			head.ExpectContinue = false
		}
		if plan == authz.BodySpooled {
			// A tarball, judged and forwarded from a temporary file.
			head.spool, head.spoolSize, err = cn.spoolBody(head)
			if head.spool != nil {
				defer head.spool.Close()
			}
			rec.BytesIn = head.spoolSize
		} else {
			body, err = cn.readBody(head)
			rec.BytesIn = int64(len(body))
		}
		if err != nil {
			var we *wireError
			if !errors.As(err, &we) {
				cn.recordBodyAbort(ctx, rec, err)
				cn.finish(rec, start)
				return false
			}
			return cn.refuse(head, rec, audit.DecisionError, we.Status, we.Msg)
		}
	}

	cn.req = authz.Request{
		Method:   head.Method,
		URL:      head.URL,
		Header:   head.Header,
		Caller:   cn.name,
		Subjects: cn.subjects,
		Cred:     cn.cred,
		Body:     body,
		// A TLS caller's is always "": it has no cgroup here.
		ContainerID: cn.caller.Container,
		BodyFile:    head.spool,
		BodySize:    head.spoolSize,
	}
	d := authz.Judge(ctx, cn.s.cfg.Decider, m, &cn.req)
	rec.Facts, rec.WouldDeny = auditFacts(&cn.facts, d.Facts), d.WouldDeny
	if d.Container != nil {
		rec.Caller = judgedContainer(cn.caller, d.Container)
	}
	if !d.Allow {
		if id := refusedBuildSession(head, m.Action); id != "" {
			defer cn.s.buildSessions.refuseBuild(id, cn.name, time.Now())
		}
		if body != nil || head.spool != nil {
			// The body was read whole to be judged: nothing is left to
			// drain, and draining it again would eat the next request.
			head.ContentLength = 0
		}
		status := d.Status
		decision := audit.DecisionDeny
		if status != http.StatusForbidden {
			decision = audit.DecisionError
		}
		if decision == audit.DecisionDeny && isGRPCUpgrade(head, m) {
			return cn.refuseGRPCUpgrade(rec, d.Reason)
		}
		if d.Answer != "" {
			return cn.refuseWith(head, rec, decision, status, d.Reason, d.Answer)
		}
		return cn.refuse(head, rec, decision, status, d.Reason)
	}
	if d.Prepare != nil {
		if err := d.Prepare(ctx); err != nil {
			if body != nil || head.spool != nil {
				head.ContentLength = 0
			}
			status, decision := hookFailure(err)
			return cn.refuse(head, rec, decision, status, err.Error())
		}
	}
	if d.RewriteSpool != nil && head.spool != nil {
		f, n, err := cn.rewriteSpool(d.RewriteSpool)
		if err != nil {
			head.ContentLength = 0
			var we *wireError
			errors.As(err, &we)
			return cn.refuse(head, rec, audit.DecisionError, we.Status, we.Msg)
		}
		defer f.Close()
		head.spool, head.spoolSize = f, n
	}
	rec.Decision, rec.Reason = audit.DecisionAllow, d.Reason
	if d.Solve != nil {
		// A BuildKit build (/build?version=2): its Dockerfile comes over
		// its session while dockerd builds, and is judged with it; a
		// refusal there ends the build's progress stream.
		refusal := new(buildRefusal)
		head.lines = refusal
		defer cn.s.buildSessions.register(d.Solve, cn, refusal.refuse)()
	}
	if m.Action == sessionStartAction {
		// A session ends with the build it was opened for, when that is
		// refused (session_end.go).
		sctx, end := context.WithCancelCause(ctx)
		defer end(nil)
		defer cn.s.buildSessions.opened(head.Header.Get("X-Docker-Expose-Session-Uuid"), cn.name, end, time.Now())()
		ctx = sctx
	}
	if d.Tag != nil {
		// A pull forwarded by the digest verified: the image gets the
		// tag the client asked for once dockerd has it.
		head.lines = &pullTag{tag: d.Tag, tagger: cn.s.cfg.Images, caller: cn.name}
	}
	if d.Target != "" && d.Target != head.Target {
		// The decision pinned what the request names (a full ID, the
		// caller's owner filter): that is what dockerd gets.
		rec.Forwarded, head.Target = d.Target, d.Target
	}
	head.filter, head.verify = d.FilterResponse, d.Verify
	if d.Body != nil && body != nil {
		// The judged body with what dockgate records in it (owner and
		// creator labels, a Docker socket's bind delegated); it goes out
		// with its own Content-Length.
		body = d.Body
		rec.Rewrites = d.Rewrites
	}
	return cn.forward(ctx, head, m, body, rec)
}

// recordBodyAbort records a request whose client closed in the middle of
// the body that was to be judged. Nothing was refused, and no answer was
// sent (status 0): a 400 would claim an answer nobody received. When the
// server is stopping, the close was dockgate's, not the client's.
func (cn *clientConn) recordBodyAbort(ctx context.Context, rec *audit.Record, err error) {
	if ctx.Err() != nil {
		rec.Decision, rec.Status = audit.DecisionError, 0
		rec.Reason = "dockgate stopped while reading the request body: " + err.Error()
		return
	}
	rec.Decision, rec.Outcome, rec.Status = audit.DecisionAllow, audit.OutcomeClientAborted, 0
	rec.Reason = fmt.Sprintf("client closed the connection after %d bytes of the request body, before the request was judged; nothing was forwarded (%v)", rec.BytesIn, err)
}

// refuse answers a request without forwarding it and writes its audit
// record, before the answer, so that a refusal is on record even when the
// client never reads it.
func (cn *clientConn) refuse(head *requestHead, rec *audit.Record, decision string, status int, msg string) bool {
	return cn.refuseWith(head, rec, decision, status, msg, "dockgate: "+msg)
}

// refuseWith is refuse with the client's message given whole (answer):
// dockerd's own, where dockgate answers as dockerd would; msg is the
// record's reason.
func (cn *clientConn) refuseWith(head *requestHead, rec *audit.Record, decision string, status int, msg, answer string) bool {
	rec.Decision, rec.Reason, rec.Status = decision, msg, status
	keep := !head.Close && !head.Upgrade && cn.drainable(head)
	cn.finish(rec, rec.Time)
	if err := writeAnswer(cn.bw, head.Method, status, answer, !keep); err != nil {
		return false
	}
	switch {
	case !head.hasBody():
		return keep
	case !keep:
		cn.linger(head)
		return false
	}
	// A small body: read and dropped so that the next request can follow.
	// The deadline keeps a client that never sends it from holding the
	// connection.
	cn.setReadDeadline(time.Now().Add(lingerTimeout))
	_, err := io.Copy(io.Discard, cn.bodyReader(head))
	cn.setReadDeadline(time.Time{})
	return err == nil
}

// What linger reads and drops at most, and for how long: enough for the
// client to read the refusal and give up its upload (the docker CLI, like
// any Go client, stops sending once it has the answer), small enough that
// a client that keeps sending cannot hold its connection slot for long.
const (
	lingerMaxBytes = 64 << 20
	lingerTimeout  = 10 * time.Second
	// lingerIdle ends the wait for a client that has stopped sending but
	// not closed.
	lingerIdle = 2 * time.Second
)

// linger ends a connection whose refused request's body was not (all)
// read. The refusal has been written with Connection: close. Closing a
// socket with unread bytes in it resets the connection (RST on TCP; on a
// Unix socket the client's write fails with EPIPE), and a client still
// uploading, as docker build or docker load are, then reports "broken
// pipe" or "connection reset" instead of the refusal. So the write side
// is half-closed (the client sees the answer end), and what the client
// still sends is read and dropped, up to lingerMaxBytes and lingerTimeout,
// until it closes or its body ends; net/http's server does the same with
// 256 KiB (closeWriteAndWait), too little for uploads of hundreds of MiB.
// The connection counts as idle meanwhile, so that Shutdown closes it at
// once: nothing of the request is left to serve.
func (cn *clientConn) linger(head *requestHead) {
	if cw, ok := cn.nc.(closeWriter); ok {
		cw.CloseWrite()
	}
	// A body that was not started on is read as framed, so that the
	// connection closes as soon as it is in; else (part read, or maybe
	// withheld for a 100 Continue that never came) whatever arrives is.
	var r io.Reader = cn.br
	if head != nil && !head.bodyRead && !head.ExpectContinue {
		r = cn.bodyReader(head)
	}
	r = io.LimitReader(r, lingerMaxBytes)
	end := time.Now().Add(lingerTimeout)
	buf := make([]byte, 32<<10)
	for {
		// The deadline before setIdle, so that Shutdown's expired one is
		// never overwritten (see Server.setIdle).
		deadline := time.Now().Add(lingerIdle)
		if deadline.After(end) {
			deadline = end
		}
		cn.setReadDeadline(deadline)
		if !cn.s.setIdle(cn, true) {
			return
		}
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// drainable says whether a refused request's body is small enough to read
// and drop, keeping the connection in step.
func (cn *clientConn) drainable(head *requestHead) bool {
	switch {
	case !head.hasBody():
		return true
	case head.ExpectContinue:
		// The client need not wait for 100 Continue before sending the
		// body (RFC 9110 §10.1.1): whether the next bytes are that body or
		// the next request is unknown, so the connection ends.
		return false
	case head.chunked():
		return false
	default:
		return head.ContentLength <= maxDrain
	}
}

// bodyReader reads the request body as framed by the client.
func (cn *clientConn) bodyReader(head *requestHead) io.Reader {
	if head.chunked() {
		return newChunkedReader(cn.br)
	}
	return io.LimitReader(cn.br, head.ContentLength)
}

// readBody reads a whole body that must be judged, up to MaxBodyBytes.
func (cn *clientConn) readBody(head *requestHead) ([]byte, error) {
	limit := cn.set.Limits.MaxBodyBytes
	if head.ContentLength > limit {
		return nil, &wireError{Status: http.StatusRequestEntityTooLarge, Msg: "request body larger than the limit of " + formatBytes(limit)}
	}
	head.bodyRead = true
	body, err := io.ReadAll(io.LimitReader(cn.bodyReader(head), limit+1))
	if err != nil {
		return body, eofIsUnexpected(err)
	}
	if int64(len(body)) > limit {
		return nil, &wireError{Status: http.StatusRequestEntityTooLarge, Msg: "request body larger than the limit of " + formatBytes(limit)}
	}
	if !head.chunked() && int64(len(body)) != head.ContentLength {
		return body, io.ErrUnexpectedEOF
	}
	return body, nil
}

// headBuffered says whether a whole request head, up to the blank line that
// ends it, is in br already, so that reading it cannot block.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, headEnd)
}

var headEnd = []byte("\r\n\r\n")
