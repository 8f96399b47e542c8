package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Ending the session of a refused /build.
//
// The docker CLI's classic BuildKit build (/build?version=2, Debian's 20.10
// CLI among them) runs its session and its build side by side and exits
// when both are done. When the /build is refused before the session is up,
// its attempt to close the session comes too early to count (the session's
// Close is a no-op before its Run has started), and the session then runs
// until dockerd drops it: against Engine 29 that took 10 s, and now and then
// never came, leaving the CLI hung with its error unprinted (3 of 80
// refused builds through a plain reverse proxy that refused them: the
// CLI's goroutines wait in errgroup.Wait and in the session's HTTP/2
// server). Any proxy that refuses the /build sees the same.
//
// So a refused /build ends its session, which the build was its only use
// for: the session's connection if it is open, or the session when it
// opens, for a while after the refusal. Only the refused build's caller's
// sessions, and only while no allowed build runs on them. The end comes
// refusedSessionGrace after the refusal (or after the session opened): a
// CLI whose session was up closes it itself at once, and one whose
// session ends while it is still reading the refusal would report the
// session's end instead of the refusal.

// refusedSessionGrace is how long a refused build's session stays before
// dockgate ends it.
const refusedSessionGrace = 2 * time.Second

// refusedSessionMemory is how long a /session whose build was refused is
// refused when it opens after the refusal: the client dials it at once.
const refusedSessionMemory = time.Minute

// errRefusedBuildSession ends a session whose build was refused.
var errRefusedBuildSession = errors.New("its build was refused")

// openSession is a /session connection being relayed.
type openSession struct {
	caller string
	end    context.CancelCauseFunc
}

// refusedSession is a session ID named by a refused /build.
type refusedSession struct {
	caller string
	until  time.Time
}

// opened records a /session (its ID as the client announced it) of caller
// that end ends, and ends it after the grace when a refused build of that
// caller named it. release forgets the session.
func (b *buildSessions) opened(id, caller string, end context.CancelCauseFunc, now time.Time) (release func()) {
	if id == "" {
		return func() {}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &openSession{caller: caller, end: end}
	if r, ok := b.refused[id]; ok && r.caller == caller && now.Before(r.until) {
		b.endLater(s)
	}
	if b.open == nil {
		b.open = map[string][]*openSession{}
	}
	b.open[id] = append(b.open[id], s)
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		removeFrom(b.open, id, s)
	}
}

// refuseBuild ends the sessions with ID id of caller, whose /build was
// refused, unless an allowed build runs on them: those open now and those
// that open within refusedSessionMemory, each after the grace.
func (b *buildSessions) refuseBuild(id, caller string, now time.Time) {
	if id == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.builds[id] {
		if p.cn.name == caller {
			return
		}
	}
	for k, r := range b.refused {
		if !now.Before(r.until) {
			delete(b.refused, k)
		}
	}
	if b.refused == nil {
		b.refused = map[string]refusedSession{}
	}
	b.refused[id] = refusedSession{caller: caller, until: now.Add(refusedSessionMemory)}
	for _, s := range b.open[id] {
		if s.caller == caller {
			b.endLater(s)
		}
	}
}

// endLater ends s after the grace.
func (b *buildSessions) endLater(s *openSession) {
	grace := b.endGrace
	if grace <= 0 {
		grace = refusedSessionGrace
	}
	time.AfterFunc(grace, func() { s.end(errRefusedBuildSession) })
}

// refusedBuildSession is the session a refused request named, when it is
// a classic BuildKit build's: "" otherwise.
func refusedBuildSession(head *requestHead, action string) string {
	if action != "build.run" || head.Method != http.MethodPost {
		return ""
	}
	q := head.URL.Query()
	if q.Get("version") != "2" {
		return ""
	}
	return q.Get("session")
}
