package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// Router names the Engine API call a request makes.
type Router interface {
	Route(method string, u *url.URL) (*authz.Match, error)
}

// Upstream is where dockerd listens.
type Upstream struct {
	URL     string // as configured, for messages
	Network string // "unix" or "tcp"
	Address string
}

// ParseUpstream reads unix:///path or tcp://host:port.
func ParseUpstream(s string) (Upstream, error) {
	network, addr, err := ParseListenURL(s)
	if err != nil {
		return Upstream{}, fmt.Errorf("upstream: %w", err)
	}
	return Upstream{URL: s, Network: network, Address: addr}, nil
}

// Config is what a Server needs; zero durations take defaults.
type Config struct {
	Upstream Upstream
	Router   Router
	Decider  authz.Decider
	Audit    *audit.Logger
	Log      zerolog.Logger
	Limits   Limits
	// Identify reads the caller of a connection; nil means Identify.
	Identify func(net.Conn) (*Caller, error)
	// HeaderTimeout bounds reading one request head once its first byte
	// arrived (slowloris); streams have no deadline.
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to dockerd.
	DialTimeout time.Duration
	// ExitCodes reads the exit code a session's final record carries;
	// nil: those records carry none.
	ExitCodes ExitCodes
	// Images tags the image of a pull dockgate pinned to the digest it
	// verified (authz.Decision.Tag); nil fails such pulls at their end.
	Images ImageTagger
	// Observer, if set, is told about finished requests and hijacked
	// sessions (metrics).
	Observer Observer
	// Conns limits the open connections per caller and in total, over
	// every listener the Server serves (fairshare.go).
	Conns ConnLimits
}

// Server accepts client connections and serves each one's requests in order.
type Server struct {
	cfg    Config
	prefix string
	seq    atomic.Uint64
	// limiter counts connections against their callers' shares.
	limiter *connLimiter
	// refusing holds a token per refusal for load that waits for its
	// request head (refuseLoad).
	refusing chan struct{}
	// settings are the limits and timeouts of new connections (see
	// SetSettings); cfg's are only the first ones.
	settings atomic.Pointer[Settings]

	mu sync.Mutex
	// conns are the connections being served.
	conns     map[*clientConn]struct{}
	listeners map[net.Listener]struct{}
	// draining says Shutdown began: no new connections, idle ones close.
	// Shutdown sets it under mu, so that track and addListener, which
	// read it under mu, add nothing after; setIdle reads it without mu
	// (it takes its connection's lock instead: every request passes it
	// twice, and one lock for all connections made them wait on each
	// other).
	draining atomic.Bool
	wg       sync.WaitGroup

	// buildSessions are the BuildKit builds running, by session
	// (buildkit_session.go).
	buildSessions buildSessions

	// kill ends when Shutdown's grace runs out; every Serve then stops
	// as if its own context had ended.
	kill    context.Context
	killNow context.CancelFunc
}

// New makes a Server; it serves nothing until Serve.
func New(cfg Config) *Server {
	if cfg.Identify == nil {
		cfg.Identify = Identify
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	var b [4]byte
	rand.Read(b[:])
	kill, killNow := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, prefix: hex.EncodeToString(b[:]) + "-", limiter: newConnLimiter(cfg.Conns),
		refusing: make(chan struct{}, maxRefusing),
		conns:    make(map[*clientConn]struct{}), listeners: make(map[net.Listener]struct{}),
		kill: kill, killNow: killNow}
	s.SetSettings(Settings{Limits: cfg.Limits, HeaderTimeout: cfg.HeaderTimeout, IdleTimeout: cfg.IdleTimeout})
	return s
}

// maxUnadmitted bounds, per listener, the connections accepted but not
// yet admitted or refused: the ones whose caller is being identified. On a
// Unix socket that takes no input from the client and ends at once; a TLS
// handshake is bounded by handshakeTimeout. When the bound is reached the
// listener stops accepting until one is through, and new connections wait
// in the kernel's backlog: a flood is slowed, never answered by closing
// the connections of callers nobody has identified yet.
const maxUnadmitted = 64

// maxRefusing bounds the refusals for load that wait for their request
// head, so that a flood of refused connections costs at most that many
// waits of refuseDeadline.
const maxRefusing = 64

// Serve accepts connections on l until ctx ends, then closes l and every
// connection and waits for their goroutines. It returns nil after ctx ends,
// or, after Shutdown began, once every connection has ended.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.kill, cancel)()
	if !s.addListener(l) {
		l.Close()
		return nil
	}
	defer s.removeListener(l)
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	unadmitted := make(chan struct{}, maxUnadmitted)
	var tempDelay time.Duration
	for {
		select {
		case unadmitted <- struct{}{}:
		case <-ctx.Done():
			s.closeAll()
			s.wg.Wait()
			return nil
		}
		c, err := l.Accept()
		if err != nil {
			<-unadmitted
			if ctx.Err() != nil {
				s.closeAll()
				s.wg.Wait()
				return nil
			}
			if s.isDraining() {
				// Returning cancels ctx, which the connections serve
				// under: they finish first (or Shutdown kills them).
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of file descriptors: back off instead of spinning.
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				s.cfg.Log.Warn().Err(err).Msg("accept failed; retrying")
				time.Sleep(tempDelay)
				continue
			}
			s.closeAll()
			s.wg.Wait()
			return fmt.Errorf("accept: %w", err)
		}
		tempDelay = 0
		cc := s.newConn(c)
		cc.admitted = func() { <-unadmitted }
		if !s.track(cc) {
			// Accepted just as Shutdown closed the listener.
			c.Close()
			<-unadmitted
			continue
		}
		go func() {
			defer s.wg.Done()
			cc.serve(ctx)
		}()
	}
}

// track registers a new connection, counted in s.wg, unless Shutdown has
// begun. Under s.mu, so that no connection is added once Shutdown waits.
func (s *Server) track(cc *clientConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.conns[cc] = struct{}{}
	s.wg.Add(1)
	return true
}

// untrack forgets a connection whose goroutine is ending.
func (s *Server) untrack(cc *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, cc)
}

// setIdle marks a connection as waiting for its next request, or as
// serving one. A connection that would become idle while Shutdown runs is
// told to close instead (false): it is between requests, so nothing is cut.
// The connection sets its idle read deadline before it says it is idle, so
// that Shutdown's expired deadline is never overwritten.
//
// Shutdown sets draining before it takes each connection's idleMu to look
// at idle, so either setIdle sees draining or Shutdown sees the connection
// idle; and a connection that stops being idle does so before or after
// Shutdown's look, never during it, so that the deadline it arms for the
// rest of its head is not overwritten with Shutdown's.
func (s *Server) setIdle(cc *clientConn, idle bool) bool {
	cc.idleMu.Lock()
	defer cc.idleMu.Unlock()
	if idle && s.draining.Load() {
		return false
	}
	cc.idle = idle
	return true
}

// expireIdle ends the wait of a connection that is idle (Shutdown).
func (cc *clientConn) expireIdle() {
	cc.idleMu.Lock()
	defer cc.idleMu.Unlock()
	if cc.idle {
		cc.nc.SetReadDeadline(aLongTimeAgo)
	}
}

func (s *Server) isDraining() bool {
	return s.draining.Load()
}

func (s *Server) addListener(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) removeListener(l net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, l)
}

// Shutdown stops the server gracefully. It closes every listener, closes
// the connections that wait between requests at once (an expired read
// deadline ends their wait; a request whose first byte has arrived is
// served), and lets the requests in flight finish: each connection closes
// after its current response. When ctx ends first (the grace period is
// over, or a second SIGTERM), the rest is cut: hijacked sessions, long
// streams (logs -f, events) and slow responses are closed, each with its
// audit record written. Shutdown returns when every connection's goroutine
// has ended: nil if they all finished in time, else ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	for cc := range s.conns {
		cc.expireIdle()
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.killNow()
	s.closeAll()
	<-done
	return ctx.Err()
}

// closeAll closes every client connection; their goroutines then close the
// upstream side.
func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc := range s.conns {
		cc.nc.Close()
	}
}

// AdmittedConns is the number of client connections counted against
// their callers' shares now (fairshare.go).
func (s *Server) AdmittedConns() int {
	total, _ := s.limiter.open("")
	return total
}

// Requests is the number of requests received so far, refused ones
// included.
func (s *Server) Requests() uint64 { return s.seq.Load() }

// ActiveConns is the number of client connections being served.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) nextRequestID() string {
	// Built on the stack: one allocation, the string, not two.
	var b [48]byte
	return string(strconv.AppendUint(append(b[:0], s.prefix...), s.seq.Add(1), 10))
}
