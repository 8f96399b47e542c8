package proxy

import (
	"fmt"
	"strconv"
	"sync"
)

// Fair share of connections (BRIEF §7 class 14): one caller must never lock
// out another. A connection is counted against its caller once the caller
// is identified, so that a refusal for load names who was refused, both in
// the 503 and in its audit record. Callers are keyed by what the policy
// sees as one caller:
//
//   - a TLS client by its certificate's common name (cert:<CN>), the
//     identity its policy rows use; a CA that issues many names to one
//     client gives it many shares, which is the CA's decision to make;
//   - a process in a container of this daemon by the container
//     (container:<id>), never by its uid: root in a container must not
//     draw on host root's share or reserve;
//   - any other local process by its uid (uid:<n>).
//
// Host root (uid 0, not in a container) has a reserve of the total that
// nobody else may take, so that an administrator can always look at and
// stop what is flooding the socket.

// ConnLimits are the connection limits of a Server. A field below 1 means
// no limit of that kind.
type ConnLimits struct {
	// Max is the number of client connections all callers together may
	// have open.
	Max int
	// PerCaller is the number one caller may have open.
	PerCaller int
}

// RootReserve is how many of total connections only host root may use:
// one sixteenth, at least 1 and at most 64, and none when total allows only
// one connection (or has no limit).
func RootReserve(total int) int {
	if total < 2 {
		return 0
	}
	return min(max(total/16, 1), 64)
}

// Which limit refused a connection, as metrics label it.
const (
	LimitPerCaller = "per_caller"
	LimitTotal     = "total"
)

// connLimiter counts the open connections of every caller and in total.
type connLimiter struct {
	lim     ConnLimits
	reserve int

	mu    sync.Mutex
	total int
	by    map[string]int
}

func newConnLimiter(lim ConnLimits) *connLimiter {
	return &connLimiter{lim: lim, reserve: RootReserve(lim.Max), by: make(map[string]int)}
}

// loadRefusal says why a caller may not open another connection.
type loadRefusal struct {
	limit string // LimitPerCaller or LimitTotal
	msg   string
}

// acquire counts a new connection of caller, or says why it may not be
// opened. release undoes the count; calling it more than once is harmless.
func (l *connLimiter) acquire(c *Caller) (release func(), refused *loadRefusal) {
	key, root := shareKey(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.by[key]
	if l.lim.PerCaller > 0 && n >= l.lim.PerCaller {
		return nil, &loadRefusal{limit: LimitPerCaller, msg: fmt.Sprintf(
			"%s has %d connections open, the limit per caller (--max-connections-per-caller); close one or try again later",
			loadName(c), n)}
	}
	if l.lim.Max > 0 {
		allowed := l.lim.Max
		if !root {
			allowed -= l.reserve
		}
		if l.total >= allowed {
			msg := fmt.Sprintf("%s may not open another connection: %d are open, all that --max-connections allows", loadName(c), l.total)
			if !root && l.reserve > 0 {
				msg = fmt.Sprintf("%s may not open another connection: %d are open, and the other %d of --max-connections (%d) are kept for root",
					loadName(c), l.total, l.lim.Max-allowed, l.lim.Max)
			}
			return nil, &loadRefusal{limit: LimitTotal, msg: msg + "; try again later"}
		}
	}
	l.by[key] = n + 1
	l.total++
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, nil
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.by[key]--; l.by[key] <= 0 {
		delete(l.by, key)
	}
}

// open is the number of connections counted, in total and of the caller
// whose share key is key.
func (l *connLimiter) open(key string) (total, ofKey int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.by[key]
}

// shareKey is the caller a connection counts against, and whether that is
// host root.
func shareKey(c *Caller) (key string, root bool) {
	switch {
	case c.Cert != "":
		return "cert:" + c.Cert, false
	case c.Container != "":
		return "container:" + c.Container, false
	default:
		return "uid:" + strconv.FormatUint(uint64(c.UID), 10), c.UID == 0
	}
}

// loadName names the caller in a refusal for load by its share key, with
// its user name (or uid) alongside, so that an operator can tell who to
// look at: "uid:1002 (user ci)", "container:3f2a… (uid:0)", "cert:ci".
func loadName(c *Caller) string {
	key, _ := shareKey(c)
	switch {
	case c.Cert != "":
		return key
	case c.Container != "":
		return key + " (uid:" + strconv.FormatUint(uint64(c.UID), 10) + ")"
	case c.User != "":
		return key + " (user " + c.User + ")"
	default:
		return key
	}
}
