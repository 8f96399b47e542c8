package proxy

import "context"

// Cutting dockerd's connection when the server stops.
//
// Shutdown must end a response copy or a hijacked session that waits on a
// quiet dockerd, and closing the client connection does not unblock a read
// from dockerd's. One watcher per client connection does it: when the
// connection's serving context ends, whatever dockerd connection it holds
// then is closed, and none can be set afterwards. A watcher per request
// (context.WithCancel plus context.AfterFunc around each round trip) did the
// same at the cost of two registrations with the server's context, whose
// lock every connection shares, for every request: measurable on /_ping.

// watchUpstream arranges for cutUpstream to run when ctx ends; the
// returned stop undoes that (see context.AfterFunc).
func (cn *clientConn) watchUpstream(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, cn.cutUpstream)
}

// cutUpstream closes the dockerd connection in use, if any, and keeps any
// later one from being used. It runs on its own goroutine.
func (cn *clientConn) cutUpstream() {
	cn.upMu.Lock()
	defer cn.upMu.Unlock()
	cn.upCut = true
	if cn.up != nil {
		cn.up.nc.Close()
	}
}

// setUpstream makes up (nil: none) the connection's dockerd connection. Only
// the serving goroutine changes cn.up, and always through here, so that it
// may read cn.up without the lock. After cutUpstream it closes up and
// reports false.
func (cn *clientConn) setUpstream(up *upstreamConn) bool {
	cn.upMu.Lock()
	defer cn.upMu.Unlock()
	if cn.upCut && up != nil {
		up.nc.Close()
		return false
	}
	cn.up = up
	return true
}
