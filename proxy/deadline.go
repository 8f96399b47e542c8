package proxy

import "time"

// The client connection's read deadline, kept in step with what is armed.
//
// Arming a deadline adds a runtime timer, and a timer that becomes the
// earliest of its P wakes another thread to watch it (wakeNetPoller): on
// a keep-alive connection that arms its idle deadline before every request
// and clears it after every head, that is a thread wake-up per request,
// which on /_ping costs more than the parsing. So the idle deadline stays
// armed through requests that never read the client again (no body, no
// switch of protocols), and is moved only when it has fallen behind by
// more than idleSlack: a connection may close up to that much before a
// full IdleTimeout of silence. Every other deadline on the client
// connection goes through setReadDeadline, so that what is armed is known.

// idleSlack is how far the armed idle deadline may lag behind the ideal
// one before it is moved.
func idleSlack(idle time.Duration) time.Duration { return idle / 32 }

// setReadDeadline arms t (zero: none) on the client connection.
func (cn *clientConn) setReadDeadline(t time.Time) {
	cn.nc.SetReadDeadline(t)
	cn.readDeadline, cn.idleArmed = t, false
}

// armIdle makes sure the connection closes after about IdleTimeout of
// silence from now.
func (cn *clientConn) armIdle(now time.Time) {
	want := now.Add(cn.set.IdleTimeout)
	if cn.idleArmed && want.Sub(cn.readDeadline) <= idleSlack(cn.set.IdleTimeout) {
		return
	}
	cn.nc.SetReadDeadline(want)
	cn.readDeadline, cn.idleArmed = want, true
}

// headRead ends the head's deadline once the head is in: the idle one may
// stay for a request that will not read the client again, any other goes.
func (cn *clientConn) headRead(head *requestHead) {
	if cn.idleArmed && head != nil && !head.hasBody() && !head.Upgrade {
		return
	}
	cn.clearReadDeadline()
}

// clearReadDeadline removes any read deadline before the client is read
// for as long as a request takes: a body, a session, a stream's watcher.
func (cn *clientConn) clearReadDeadline() {
	if !cn.readDeadline.IsZero() {
		cn.setReadDeadline(time.Time{})
	}
}
