package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// Callers of the fair-share tests, by the name their client socket is
// bound to (see callerBed).
var fairCallers = map[string]*Caller{
	"root":     {UID: 0, GID: 0, User: "root"},
	"alice":    {UID: 1001, GID: 1001, User: "alice"},
	"mallory":  {UID: 1002, GID: 1002, User: "mallory"},
	"nameless": {UID: 1003, GID: 1003},
	"boxroot":  {UID: 0, GID: 0, User: "root", Container: "3f2a9c"},
	"boxroot2": {UID: 0, GID: 0, User: "root", Container: "77b1e0"},
	"ci-a":     {UID: noID, GID: noID, Cert: "ci"},
	"ci-b":     {UID: noID, GID: noID, Cert: "ci"},
	"web":      {UID: noID, GID: noID, Cert: "web"},
}

func TestConnLimiterShares(t *testing.T) {
	type step struct {
		caller string
		refuse string // "" admitted, else the limit that refuses
	}
	cases := []struct {
		name  string
		lim   ConnLimits
		steps []step
	}{
		{"a caller at its share is refused, the next caller is not", ConnLimits{Max: 100, PerCaller: 2},
			[]step{{"mallory", ""}, {"mallory", ""}, {"mallory", LimitPerCaller}, {"alice", ""}, {"root", ""}}},
		{"many callers fill what is not root's: root still gets in", ConnLimits{Max: 4, PerCaller: 4},
			// RootReserve(4) is 1: three for everyone, the fourth for root.
			[]step{{"mallory", ""}, {"alice", ""}, {"nameless", ""}, {"alice", LimitTotal}, {"root", ""}, {"root", LimitTotal}}},
		{"root has a share like everyone", ConnLimits{Max: 100, PerCaller: 1},
			[]step{{"root", ""}, {"root", LimitPerCaller}}},
		{"root in a container is not host root: no reserve", ConnLimits{Max: 2, PerCaller: 2},
			[]step{{"boxroot", ""}, {"boxroot", LimitTotal}, {"root", ""}}},
		{"root in a container draws on its container's share, not root's", ConnLimits{Max: 100, PerCaller: 1},
			[]step{{"boxroot", ""}, {"boxroot", LimitPerCaller}, {"boxroot2", ""}, {"root", ""}}},
		{"TLS callers share by common name", ConnLimits{Max: 100, PerCaller: 1},
			[]step{{"ci-a", ""}, {"ci-b", LimitPerCaller}, {"web", ""}}},
		{"no limits", ConnLimits{},
			[]step{{"mallory", ""}, {"mallory", ""}, {"mallory", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newConnLimiter(tc.lim)
			var releases []func()
			for i, s := range tc.steps {
				release, refused := l.acquire(fairCallers[s.caller])
				switch {
				case s.refuse == "" && refused != nil:
					t.Fatalf("step %d: %s refused: %s", i, s.caller, refused.msg)
				case s.refuse != "" && refused == nil:
					t.Fatalf("step %d: %s admitted, want refused by the %s limit", i, s.caller, s.refuse)
				case refused != nil && refused.limit != s.refuse:
					t.Fatalf("step %d: %s refused by the %s limit, want %s: %s", i, s.caller, refused.limit, s.refuse, refused.msg)
				case refused == nil:
					releases = append(releases, release)
				}
			}
			for _, r := range releases {
				r()
				r() // a second release must not free a second slot
			}
			if total, _ := l.open(""); total != 0 || len(l.by) != 0 {
				t.Errorf("after every release: %d open, shares %v", total, l.by)
			}
		})
	}
}

func TestConnLimiterNamesTheCaller(t *testing.T) {
	cases := []struct {
		name, caller string
		lim          ConnLimits
		want         []string
	}{
		{"per caller, with the user name", "mallory", ConnLimits{PerCaller: 1},
			[]string{"uid:1002 (user mallory) has 1 connections open", "--max-connections-per-caller"}},
		{"per caller, a uid without a name", "nameless", ConnLimits{PerCaller: 1},
			[]string{"uid:1003 has 1 connections open"}},
		{"per caller, a container", "boxroot", ConnLimits{PerCaller: 1},
			[]string{"container:3f2a9c (uid:0) has 1"}},
		{"per caller, a certificate", "web", ConnLimits{PerCaller: 1},
			[]string{"cert:web has 1"}},
		{"total, what is left is root's", "alice", ConnLimits{Max: 2},
			[]string{"uid:1001 (user alice) may not open another connection", "kept for root", "--max-connections"}},
		{"total, for root", "root", ConnLimits{Max: 1},
			[]string{"uid:0 (user root) may not open another connection: 1 are open, all that --max-connections allows"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newConnLimiter(tc.lim)
			c := fairCallers[tc.caller]
			var refused *loadRefusal
			for range 3 {
				if _, refused = l.acquire(c); refused != nil {
					break
				}
			}
			if refused == nil {
				t.Fatal("never refused")
			}
			for _, w := range tc.want {
				if !strings.Contains(refused.msg, w) {
					t.Errorf("message %q does not say %q", refused.msg, w)
				}
			}
		})
	}
}

func TestRootReserve(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, 0}, {1, 0}, {2, 1}, {16, 1}, {64, 4}, {1024, 64}, {1 << 20, 64}} {
		if got := RootReserve(tc.max); got != tc.want {
			t.Errorf("RootReserve(%d) = %d, want %d", tc.max, got, tc.want)
		}
	}
}

// callerBed is a proxy whose callers are told apart by the name each test
// client binds its socket to: Identify reads the peer's address.
type callerBed struct {
	t   *testing.T
	dir string
	p   *testProxy
	n   atomic.Int64
}

func newCallerBed(t *testing.T, up func(dir string) Upstream, opts ...proxyOption) *callerBed {
	t.Helper()
	b := &callerBed{t: t, dir: shortDir(t)}
	identify := func(c net.Conn) (*Caller, error) {
		a, ok := c.RemoteAddr().(*net.UnixAddr)
		if !ok {
			return nil, fmt.Errorf("peer address %v", c.RemoteAddr())
		}
		name, _, _ := strings.Cut(filepath.Base(a.Name), ".")
		if cl, ok := fairCallers[name]; ok {
			return cl, nil
		}
		return nil, fmt.Errorf("unknown test caller %q", name)
	}
	b.p = startProxy(t, b.dir, up(b.dir), append([]proxyOption{withIdentify(identify)}, opts...)...)
	return b
}

// dial connects as caller.
func (b *callerBed) dial(caller string) *client {
	b.t.Helper()
	laddr := &net.UnixAddr{Net: "unix", Name: filepath.Join(b.dir, fmt.Sprintf("%s.%d", caller, b.n.Add(1)))}
	c, err := net.DialUnix("unix", laddr, &net.UnixAddr{Net: "unix", Name: b.p.sock})
	if err != nil {
		b.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	b.t.Cleanup(func() { c.Close() })
	return &client{t: b.t, c: c, br: bufio.NewReader(c)}
}

// holding waits until caller has n connections counted.
func (b *callerBed) holding(caller string, n int) {
	b.t.Helper()
	key, _ := shareKey(fairCallers[caller])
	waitFor(b.t, fmt.Sprintf("%s to hold %d connections", caller, n), ioTimeout, func() bool {
		_, got := b.p.srv.limiter.open(key)
		return got == n
	})
}

// noSlotsLeft waits until the server counts no connection at all: every
// slot came back.
func (b *callerBed) noSlotsLeft() {
	b.t.Helper()
	waitFor(b.t, "every connection slot to be released", ioTimeout, func() bool {
		total, _ := b.p.srv.limiter.open("")
		return total == 0
	})
}

// The lock-out attack (BRIEF §7 class 14): one local user opens every connection it may and
// sends nothing. It is refused with a 503 that names it, on record under
// its uid; other users and root are served all along.
func TestOneCallerHoldingItsShareLocksOutNobody(t *testing.T) {
	obs := &recordingObserver{}
	b := newCallerBed(t, func(dir string) Upstream { return newHTTPDockerd(t, dir, pingHandler()).upstream() },
		withConnLimits(ConnLimits{Max: 8, PerCaller: 3}), withObserver(obs))
	var held []*client
	for range 3 {
		held = append(held, b.dial("mallory"))
	}
	b.holding("mallory", 3)

	over := b.dial("mallory")
	wantDockerError(t, over.roundTrip("GET", pingReq), http.StatusServiceUnavailable, "uid:1002 (user mallory) has 3 connections open", "limit per caller")
	over.expectEOF()

	for _, who := range []string{"alice", "root", "alice"} {
		c := b.dial(who)
		if r := c.roundTrip("GET", pingReq); r.StatusCode != 200 {
			t.Fatalf("%s while mallory holds its share: %d %s", who, r.StatusCode, r.body)
		}
		c.c.Close()
	}

	// The share comes back when mallory lets go.
	held[0].c.Close()
	b.holding("mallory", 2)
	if r := b.dial("mallory").roundTrip("GET", pingReq); r.StatusCode != 200 {
		t.Fatalf("mallory after closing one: %d %s", r.StatusCode, r.body)
	}

	var busy []auditLine
	for _, r := range b.p.finalRecords() {
		if r.Status == http.StatusServiceUnavailable {
			busy = append(busy, r)
		}
	}
	if len(busy) != 1 {
		t.Fatalf("%d records of a 503, want 1", len(busy))
	}
	if c := busy[0].Caller; c == nil || c.UID != 1002 || c.User != "mallory" {
		t.Errorf("the 503's record names caller %+v, want uid 1002 (mallory)", c)
	}
	if r := busy[0]; r.Decision != audit.DecisionError || !strings.Contains(r.Reason, "uid:1002") || r.Method != "GET" || r.Path != "/v1.41/_ping" {
		t.Errorf("the 503's record: decision %q, reason %q, request %s %s; want error, the caller, GET /v1.41/_ping", r.Decision, r.Reason, r.Method, r.Path)
	}
	if refused, _ := obs.conns(); len(refused) != 1 || refused[0] != LimitPerCaller {
		t.Errorf("observer heard of refusals %v, want [%s]", refused, LimitPerCaller)
	}
	b.noSlotsLeft()
}

// Many callers, each within its share, fill the total: what is kept for
// root stays free, and root's own 503 names root.
func TestManyCallersFillingTheTotalLeaveRootItsReserve(t *testing.T) {
	b := newCallerBed(t, func(dir string) Upstream { return newHTTPDockerd(t, dir, pingHandler()).upstream() },
		withConnLimits(ConnLimits{Max: 4, PerCaller: 4}))
	for _, who := range []string{"mallory", "alice", "nameless"} {
		b.dial(who)
		b.holding(who, 1)
	}
	over := b.dial("mallory")
	wantDockerError(t, over.read(""), http.StatusServiceUnavailable, "uid:1002 (user mallory) may not open another connection", "kept for root")

	root := b.dial("root")
	if r := root.roundTrip("GET", pingReq); r.StatusCode != 200 {
		t.Fatalf("root with the rest full: %d %s", r.StatusCode, r.body)
	}
	wantDockerError(t, b.dial("root").read(""), http.StatusServiceUnavailable, "uid:0 (user root) may not open another connection")
}

// A slot is held exactly as long as its connection, whatever the
// connection did: a hijacked session, a stream that never ends, a
// request, nothing at all. After each ends the slot is free again.
func TestConnectionSlotsComeBackWhenConnectionsEnd(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequestRaw(br)
			if err != nil {
				return
			}
			switch {
			case strings.Contains(req.URL.Path, "/attach"):
				io.WriteString(c, head101+"attached\n")
				io.Copy(io.Discard, br)
				return
			case strings.HasSuffix(req.URL.Path, "/events"):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
				io.WriteString(c, "3\r\n{}\n\r\n")
				io.Copy(io.Discard, br) // never ends on its own
				return
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
			}
		}
	})
	obs := &recordingObserver{}
	b := &callerBed{t: t, dir: dir}
	b.p = startProxy(t, dir, up.upstream(), withConnLimits(ConnLimits{Max: 8, PerCaller: 1}),
		withHeaderTimeout(2*time.Second), withObserver(obs), withIdentify(func(c net.Conn) (*Caller, error) {
			return fairCallers["mallory"], nil
		}))

	cases := []struct {
		name string
		hold func(t *testing.T, c *client)
	}{
		{"a hijacked attach session", func(t *testing.T, c *client) {
			c.send(attachUpgrade)
			if r := c.readHead("POST"); r.StatusCode != 101 {
				t.Fatalf("attach: %d", r.StatusCode)
			}
		}},
		{"an events stream", func(t *testing.T, c *client) {
			c.send("GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
			if r := c.readHead("GET"); r.StatusCode != 200 {
				t.Fatalf("events: %d", r.StatusCode)
			}
		}},
		{"a keep-alive connection between requests", func(t *testing.T, c *client) {
			if r := c.roundTrip("GET", pingReq); r.StatusCode != 200 {
				t.Fatalf("ping: %d", r.StatusCode)
			}
		}},
		{"a connection that never sent a request", func(*testing.T, *client) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := b.dial("mallory")
			b.holding("mallory", 1)
			tc.hold(t, c)
			wantDockerError(t, b.dial("mallory").read(""), http.StatusServiceUnavailable, "has 1 connections open")
			c.c.Close()
			b.noSlotsLeft()
		})
	}
	// A silent connection is closed by the header timeout, its slot with it.
	c := b.dial("mallory")
	c.expectEOF()
	b.noSlotsLeft()
	if _, silent := obs.conns(); silent < 1 {
		t.Error("observer did not hear of the silent connection closed")
	}
}

// A connection must send its first request within the header timeout of
// being accepted, even when the idle timeout is long; between requests a
// keep-alive connection keeps the idle timeout.
func TestSilentConnectionClosedAfterHeaderTimeoutNotIdleTimeout(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	const headerTimeout = time.Second
	p := startProxy(t, dir, up.upstream(), withHeaderTimeout(headerTimeout), func(c *Config) { c.IdleTimeout = time.Hour })

	t.Run("nothing sent", func(t *testing.T) {
		c := p.dial()
		c.expectEOF()
	})
	t.Run("a head begun but not finished", func(t *testing.T) {
		c := p.dial()
		c.send("GET /_ping HTTP/1.1\r\n")
		wantDockerError(t, c.read("GET"), http.StatusRequestTimeout, "not received in time")
	})
	t.Run("a keep-alive connection waits longer than the header timeout between requests", func(t *testing.T) {
		c := p.dial()
		if r := c.roundTrip("GET", pingReq); r.StatusCode != 200 {
			t.Fatalf("first ping: %d", r.StatusCode)
		}
		time.Sleep(2 * headerTimeout)
		if r := c.roundTrip("GET", pingReq); r.StatusCode != 200 {
			t.Fatalf("ping after a pause: %d", r.StatusCode)
		}
	})
	// The silent connection is no request: it leaves no record.
	for _, r := range p.finalRecords() {
		if r.Status != 200 && r.Status != http.StatusRequestTimeout {
			t.Errorf("unexpected record: %+v", r.Record)
		}
	}
}
