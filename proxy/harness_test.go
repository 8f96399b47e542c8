package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
	"github.com/dockgate/dockgate/internal/syncbuf"
)

// This file is the bed for the socket tests: a real Server on a Unix socket
// in front of a fake dockerd the test controls, a decider that counts, and
// the audit log in memory.

// ioTimeout bounds every read and write a test does, so that a proxy that
// holds data back fails the test instead of hanging it. It only detects
// hangs: under -race on a loaded two-core machine, relaying the 64 MiB
// body of the filter tests took longer than 10 s.
const ioTimeout = 60 * time.Second

// shortDir is a temp dir with a short path: Unix socket paths are limited
// to 108 bytes and t.TempDir's can be longer.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// auditLine is one audit record as written.
type auditLine struct {
	audit.Record
	Type string `json:"type"`
}

// decided is what the decider saw of one request.
type decided struct {
	Action string
	Method string
	Target string
	Header http.Header
	Body   []byte
}

// countingDecider decides like authz.AllowAll (unknown endpoints refused)
// and remembers every request it was asked about. refuse, when set, may
// refuse a request instead; allowUnknown allows even unknown endpoints, as
// a too-broad policy might.
type countingDecider struct {
	mu           sync.Mutex
	seen         []decided
	refuse       func(m *authz.Match, req *authz.Request) bool
	allowUnknown bool
}

func (d *countingDecider) Decide(ctx context.Context, m *authz.Match, req *authz.Request) authz.Decision {
	d.mu.Lock()
	d.seen = append(d.seen, decided{Action: m.Action, Method: req.Method, Target: req.URL.String(), Header: req.Header.Clone(), Body: bytes.Clone(req.Body)})
	refuse, allowUnknown := d.refuse, d.allowUnknown
	d.mu.Unlock()
	if refuse != nil && refuse(m, req) {
		return authz.Decision{Status: http.StatusForbidden, Reason: req.Caller + " may not endpoint " + m.Action + ": no rule allows it",
			Facts: []policy.FactResult{{Kind: "endpoint", Value: m.Action, Decision: "deny"}}}
	}
	if allowUnknown {
		return authz.Decision{Allow: true, Reason: "allow everything"}
	}
	return authz.AllowAll{}.Decide(ctx, m, req)
}

func (d *countingDecider) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

func (d *countingDecider) all() []decided {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]decided(nil), d.seen...)
}

func (d *countingDecider) setRefuse(f func(m *authz.Match, req *authz.Request) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refuse = f
}

// refuseAction refuses requests with one of the named actions.
func refuseAction(actions ...string) func(*authz.Match, *authz.Request) bool {
	return func(m *authz.Match, _ *authz.Request) bool {
		for _, a := range actions {
			if m.Action == a {
				return true
			}
		}
		return false
	}
}

// testCaller is the caller every connection has under stubIdentify.
var testCaller = &Caller{
	UID:    1000,
	GID:    1000,
	PID:    4242,
	User:   "tester",
	GIDs:   []uint32{1000, 999},
	Groups: []string{"tester", "docker"},
	Exe:    "/usr/bin/docker",
}

func stubIdentify(net.Conn) (*Caller, error) { return testCaller, nil }

// fakeDockerd is the upstream: a Unix socket served either by a net/http
// handler or, for the odd cases, by a function that gets the raw
// connection. It counts the bytes dockgate sent it.
type fakeDockerd struct {
	t       *testing.T
	path    string
	handler http.Handler
	raw     func(c net.Conn, br *bufio.Reader)

	bytesIn atomic.Int64
	conns   atomic.Int64

	mu      sync.Mutex
	l       net.Listener
	srv     *http.Server
	open    map[net.Conn]struct{}
	wg      sync.WaitGroup
	stopped bool
}

func newHTTPDockerd(t *testing.T, dir string, h http.Handler) *fakeDockerd {
	d := &fakeDockerd{t: t, path: filepath.Join(dir, "dockerd.sock"), handler: h}
	d.start()
	return d
}

func newRawDockerd(t *testing.T, dir string, fn func(c net.Conn, br *bufio.Reader)) *fakeDockerd {
	d := &fakeDockerd{t: t, path: filepath.Join(dir, "dockerd.sock"), raw: fn}
	d.start()
	return d
}

// start listens (again) on the socket path.
func (d *fakeDockerd) start() {
	d.t.Helper()
	l, err := net.Listen("unix", d.path)
	if err != nil {
		d.t.Fatal(err)
	}
	cl := &countingListener{Listener: l, d: d}
	d.mu.Lock()
	d.l, d.open, d.stopped = cl, make(map[net.Conn]struct{}), false
	d.mu.Unlock()
	if d.handler != nil {
		srv := &http.Server{Handler: d.handler, ErrorLog: nil}
		d.mu.Lock()
		d.srv = srv
		d.mu.Unlock()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			srv.Serve(cl)
		}()
	} else {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for {
				c, err := cl.Accept()
				if err != nil {
					return
				}
				d.wg.Add(1)
				go func() {
					defer d.wg.Done()
					defer c.Close()
					c.SetDeadline(time.Now().Add(2 * ioTimeout))
					br := bufio.NewReader(c)
					if dockgateQuestion(br) {
						// dockgate asking for a container's exit after an
						// attach: not the client's request the test is about.
						io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
						return
					}
					d.raw(c, br)
				}()
			}
		}()
	}
	d.t.Cleanup(d.stop)
}

// stop closes the listener and every connection, and waits for the
// handlers: dockerd going away.
func (d *fakeDockerd) stop() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	l, srv := d.l, d.srv
	// Copied under the lock: Accept may still be adding to d.open.
	conns := make([]net.Conn, 0, len(d.open))
	for c := range d.open {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	l.Close()
	if srv != nil {
		srv.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(ioTimeout):
		d.t.Error("fake dockerd handlers did not end")
	}
}

func (d *fakeDockerd) upstream() Upstream {
	return Upstream{URL: "unix://" + d.path, Network: "unix", Address: d.path}
}

type countingListener struct {
	net.Listener
	d *fakeDockerd
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.d.conns.Add(1)
	cc := &countingConn{Conn: c, n: &l.d.bytesIn}
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.d.stopped {
		// stop has closed what it saw open; this one came too late.
		c.Close()
		return nil, net.ErrClosed
	}
	l.d.open[cc] = struct{}{}
	return cc, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingConn) CloseWrite() error { return c.Conn.(*net.UnixConn).CloseWrite() }

// testProxy is a running Server.
type testProxy struct {
	t      *testing.T
	sock   string
	srv    *Server
	dec    *countingDecider
	audit  *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
	l      net.Listener
	once   sync.Once
}

// proxyOption adjusts a test proxy before it starts.
type proxyOption func(cfg *Config)

func withLimits(l Limits) proxyOption { return func(c *Config) { c.Limits = l } }

func withIdentify(f func(net.Conn) (*Caller, error)) proxyOption {
	return func(c *Config) { c.Identify = f }
}

func withConnLimits(l ConnLimits) proxyOption { return func(c *Config) { c.Conns = l } }

func withHeaderTimeout(d time.Duration) proxyOption {
	return func(c *Config) { c.HeaderTimeout = d }
}

// startProxy serves a proxy in dir in front of up.
func startProxy(t *testing.T, dir string, up Upstream, opts ...proxyOption) *testProxy {
	t.Helper()
	p := &testProxy{t: t, sock: filepath.Join(dir, "dockgate.sock"), dec: &countingDecider{}, audit: &syncbuf.Buffer{}, done: make(chan error, 1)}
	// The exit codes of sessions are asked of the fake dockerd too, with
	// the client serve gives the proxy.
	exits, err := dockerd.New(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exits.Close() })
	cfg := Config{
		Upstream:    up,
		ExitCodes:   exits,
		Router:      authz.NewRouter(),
		Decider:     p.dec,
		Audit:       audit.NewLogger(p.audit),
		Log:         zerolog.Nop(),
		Identify:    stubIdentify,
		DialTimeout: 2 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	p.srv = New(cfg)
	l, err := net.Listen("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	p.l = l
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- p.srv.Serve(ctx, p.l) }()
	t.Cleanup(p.shutdown)
	return p
}

// shutdown cancels Serve and waits for it, which waits for every
// connection: after it, every audit record is written.
func (p *testProxy) shutdown() {
	p.once.Do(func() {
		p.cancel()
		select {
		case err := <-p.done:
			if err != nil {
				p.t.Errorf("Serve: %v", err)
			}
		case <-time.After(ioTimeout):
			p.t.Errorf("Serve did not return within %v of its context ending", ioTimeout)
		}
	})
}

// records parses the audit log as it stands.
func (p *testProxy) records() []auditLine {
	p.t.Helper()
	var out []auditLine
	for _, line := range strings.Split(strings.TrimSpace(p.audit.String()), "\n") {
		if line == "" {
			continue
		}
		var r auditLine
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			p.t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Type != "audit" {
			p.t.Errorf("audit line without type audit: %s", line)
		}
		out = append(out, r)
	}
	return out
}

// finalRecords stops the proxy and returns every record it wrote.
func (p *testProxy) finalRecords() []auditLine {
	p.shutdown()
	return p.records()
}

// waitRecords waits until at least n records are written.
func (p *testProxy) waitRecords(n int) []auditLine {
	p.t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		r := p.records()
		if len(r) >= n || time.Now().After(deadline) {
			if len(r) < n {
				p.t.Fatalf("%d audit records, want %d:\n%s", len(r), n, p.audit.String())
			}
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finals are the records that end a request (not "phase":"start").
func finals(rs []auditLine) []auditLine {
	var out []auditLine
	for _, r := range rs {
		if r.Phase == "" {
			out = append(out, r)
		}
	}
	return out
}

// client is one raw connection to the proxy.
type client struct {
	t  *testing.T
	c  *net.UnixConn
	br *bufio.Reader
}

func (p *testProxy) dial() *client {
	p.t.Helper()
	return dialClient(p.t, p.sock)
}

func dialClient(t *testing.T, sock string) *client {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c.(*net.UnixConn), br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// response is a response read whole.
type response struct {
	*http.Response
	body string
}

// read reads one response to a request with method, body included.
func (c *client) read(method string) response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading response body: %v", err)
	}
	return response{resp, string(b)}
}

// readHead reads a response head only; the body stays in c.br.
func (c *client) readHead(method string) *http.Response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response head: %v", err)
	}
	return resp
}

// roundTrip sends one request and reads its response.
func (c *client) roundTrip(method, raw string) response {
	c.t.Helper()
	c.send(raw)
	return c.read(method)
}

// expectEOF checks that the proxy closed the connection (nothing more to
// read). A reset counts as closed: a Unix socket closed with unread input
// resets its peer once the peer has read what was sent.
func (c *client) expectEOF() {
	c.t.Helper()
	b, err := io.ReadAll(c.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("want EOF, got %v after %q", err, b)
	}
	if len(b) > 0 {
		c.t.Fatalf("want EOF, got %q", b)
	}
}

// wantDockerError checks a refusal: status, Docker's JSON shape with the
// "dockgate: " prefix, and a message mentioning each of parts.
func wantDockerError(t *testing.T, r response, status int, parts ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d; body %q", r.StatusCode, status, r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e struct {
		Message string `json:"message"`
	}
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("body %q is not Docker's error JSON: %v", r.body, err)
	}
	if !strings.HasPrefix(e.Message, "dockgate: ") {
		t.Errorf("message %q does not start with \"dockgate: \"", e.Message)
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			t.Errorf("message %q does not mention %q", e.Message, p)
		}
	}
}

// pingHandler answers like dockerd's /_ping and, for everything else, a
// small JSON that names the request.
func pingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Docker-Experimental", "false")
		w.Header().Set("Ostype", "linux")
		body, _ := io.ReadAll(r.Body)
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Length", "2")
			if r.Method != http.MethodHead {
				io.WriteString(w, "OK")
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.RequestURI(), "body": string(body)})
	})
}

// idleConns are p's connections if every one of them waits for its next
// request, else nil. What an idle connection holds is then safe to read:
// setIdle, under the lock taken here, orders its serving before.
func (p *testProxy) idleConns() []*clientConn {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	var idle []*clientConn
	for cc := range p.srv.conns {
		cc.idleMu.Lock()
		ok := cc.idle
		cc.idleMu.Unlock()
		if !ok {
			return nil
		}
		idle = append(idle, cc)
	}
	return idle
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readRequestRaw reads one request head from a raw fake-dockerd connection
// and its Content-Length body.
func readRequestRaw(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		return req, body, err
	}
	return req, body, nil
}

// dockgateQuestion peeks at a request head, without consuming it, and says
// whether it is dockgate's own question about a container (the exit code
// after an attach: GET …/containers/…/json, User-Agent: dockgate). Tests
// that answer dockgate's exec questions see those themselves.
func dockgateQuestion(br *bufio.Reader) bool {
	if _, err := br.Peek(1); err != nil {
		return false
	}
	for {
		buf, _ := br.Peek(br.Buffered())
		if bytes.Contains(buf, []byte("\r\n\r\n")) || len(buf) >= br.Size() {
			return bytes.Contains(buf, []byte("\r\nUser-Agent: dockgate\r\n")) && bytes.Contains(buf, []byte("/containers/"))
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return false
		}
	}
}
