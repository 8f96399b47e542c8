package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
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
}

// Server accepts client connections and serves each one's requests in order.
type Server struct {
	cfg    Config
	prefix string
	seq    atomic.Uint64

	mu    sync.Mutex
	conns map[*clientConn]struct{}
	wg    sync.WaitGroup
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
	return &Server{cfg: cfg, prefix: hex.EncodeToString(b[:]) + "-", conns: make(map[*clientConn]struct{})}
}

// Serve accepts connections on l until ctx ends, then closes l and every
// connection and waits for their goroutines. It returns nil after ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var tempDelay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.closeAll()
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
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			cc.serve(ctx)
		}()
	}
}

func (s *Server) track(cc *clientConn, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.conns[cc] = struct{}{}
	} else {
		delete(s.conns, cc)
	}
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

// ActiveConns is the number of client connections being served.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) nextRequestID() string {
	return s.prefix + strconv.FormatUint(s.seq.Add(1), 10)
}

// RejectBusy answers a connection above the connection limit with 503 and
// records it; it is LimitListener's onReject.
func (s *Server) RejectBusy(c net.Conn) {
	cn := s.newConn(c)
	start := time.Now()
	rec := cn.newRecord(start, nil)
	rec.Decision, rec.Status = audit.DecisionError, http.StatusServiceUnavailable
	rec.Reason = "too many connections; try again later"
	cn.finish(rec, start)
	writeError(cn.bw, "", rec.Status, rec.Reason, true)
}
