// Package proxy serves dockgate's sockets: it accepts client connections,
// reads each caller's identity from the kernel (never from what the client
// sends), parses every request off the wire, has it judged (authz.Judge),
// forwards what is allowed to dockerd as the bytes that were judged
// (streams and hijacked sessions included), answers the rest with a
// Docker-style error, and writes one audit record for every request.
//
// Where things are: server.go and settings.go hold the server and its
// limits, listener.go and tls.go accept, identity.go and caller.go say who
// is calling, fairshare.go bounds each caller's connections, wire.go and
// chunked.go parse HTTP/1.1, conn.go serves one connection's requests in
// order, spool.go reads a body to judge, forward.go sends an allowed
// request (upstream.go the dockerd side, response.go the answer, hijack.go
// a raw session and exitcode.go its exit, http2.go BuildKit's h2c,
// upstreamcut.go the cut at shutdown), rewrite.go, respfilter.go and
// verify.go apply what the decision changes, objectid.go names what was
// created, respond.go writes refusals, and observe.go feeds the metrics.
package proxy
