// Package dockerd is the one client dockgate uses for everything it asks
// dockerd itself, as opposed to what it forwards: the questions the facts
// need answered (a volume's options, a container's mounts, an image's
// provenance, an object's owner), the volumes it creates for a tenant, the
// exit code of a finished session, the tenant garbage collector's lists
// and removals, and the readiness probe. It owns the one connection pool
// to the upstream dockerd, with the timeouts, the retry and the caches
// those questions need.
package dockerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

// DefaultInspectTimeout is the most one question the facts ask dockerd may
// take, retry included. Within it the request being judged bounds the
// question (its context's deadline, and its end when the client goes or
// dockgate stops): a caller waits for its own answer as long as it would
// wait for dockerd's, rather than get a 502 because dockerd is busy. It
// matches the proxy's default header timeout.
const DefaultInspectTimeout = 30 * time.Second

// poolConns is how many idle connections to dockerd the client keeps. Go's
// default of two per host made every lookup beyond the second at once dial
// dockerd anew and then close the connection.
const poolConns = 64

// poolIdle is how long an idle connection is kept: long enough to carry a
// burst, short enough that a quiet dockgate holds none.
const poolIdle = 2 * time.Second

// Client asks the dockerd at one upstream address over one connection
// pool. It is safe for concurrent use. Owners of containers, networks and
// execs named by full ID are cached while WatchEvents runs
// (owner_cache.go).
type Client struct {
	sdk *client.Client
	// identity asks at identityAPI, when dockerd speaks it: the SDK caps
	// negotiation at its own, older, maximum.
	identity *client.Client
	// transport is the pool both SDK clients share; the questions the SDK
	// has no call for (exit.go, ping.go) use it directly.
	transport *http.Transport
	// host is the URL host of those direct requests.
	host   string
	api    serverAPI
	served registryCache
	// Timeout bounds each question the facts ask (DefaultInspectTimeout
	// when zero).
	Timeout time.Duration
	cache   *ownerCache
	daemon  daemonCache
}

// New returns a client of the dockerd at upstream
// ("unix:///var/run/docker.sock", "tcp://host:2375"), negotiating the API
// version on first use.
func New(upstream string) (*Client, error) {
	tr := &http.Transport{
		MaxIdleConns:        poolConns,
		MaxIdleConnsPerHost: poolConns,
		IdleConnTimeout:     poolIdle,
	}
	// WithHost sets the transport's dialer for upstream's scheme.
	c, err := client.NewClientWithOpts(client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithHost(upstream), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("dockerd client for %s: %w", upstream, err)
	}
	id, err := client.NewClientWithOpts(client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithHost(upstream), client.WithVersion(identityAPI))
	if err != nil {
		return nil, fmt.Errorf("dockerd client for %s: %w", upstream, err)
	}
	u, err := client.ParseHostURL(upstream)
	if err != nil {
		return nil, fmt.Errorf("dockerd client for %s: %w", upstream, err)
	}
	// Over a Unix socket the transport dials the socket whatever the URL
	// names; over TCP it dials the URL's host.
	host := u.Host
	if u.Scheme == "unix" {
		host = "docker"
	}
	return &Client{sdk: c, identity: id, transport: tr, host: host, Timeout: DefaultInspectTimeout, cache: newOwnerCache()}, nil
}

// Close drops the idle connections. The client stays usable: a later
// question opens a connection again.
func (d *Client) Close() error {
	return errors.Join(d.sdk.Close(), d.identity.Close())
}

// bound limits one question to Timeout within the request's own context.
func (d *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	t := d.Timeout
	if t <= 0 {
		t = DefaultInspectTimeout
	}
	return context.WithTimeout(ctx, t)
}

// ask runs one idempotent question (a GET) within ctx, and once more if the
// first attempt failed without an answer from dockerd: a broken or refused
// connection, or no answer in the first half of the time left (a
// connection dockerd stopped serving). An answer, even a 404 or a 500, is
// final, and so is the end of ctx.
func (d *Client) ask(ctx context.Context, call func(context.Context) error) error {
	first, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		first, cancel = context.WithTimeout(ctx, time.Until(deadline)/2)
	}
	err := call(first)
	attemptTimedOut := first.Err() != nil
	cancel()
	if err == nil || ctx.Err() != nil || !transient(err, attemptTimedOut) {
		return err
	}
	if err2 := call(ctx); err2 != nil {
		return fmt.Errorf("%w (retried after: %v)", err2, err)
	}
	return nil
}

// transient says whether err means dockerd's answer never arrived, so that
// asking again may get one: the request could not be sent, or the
// connection broke before the answer was read whole. An error response
// (404, 500, ...) is an answer and never matches.
func transient(err error, attemptTimedOut bool) bool {
	if attemptTimedOut && errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return client.IsErrConnectionFailed(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// request is a GET of path for a question the SDK has no call for. Its
// connection is closed after the answer: the readiness probe is to see
// dockerd take a connection now, not answer on one kept from before, and
// an exit question comes once a session, too seldom for a kept connection
// to pay.
func (d *Client) request(ctx context.Context, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.host+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = "docker"
	req.Close = true
	return req, nil
}
