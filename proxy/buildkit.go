package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/proxy/internal/h2relay"
)

// BuildKit's two channels, read as they pass (docs/buildkit.md).
//
// POST /grpc upgrades to h2c and carries BuildKit's control API: the
// client calls, dockerd answers. Every call is judged like a request on a
// route of its own (authz.MatchBuildKitCall), with its request message as
// the body, before that message reaches dockerd.
//
// POST /session upgrades to h2c the other way round: dockerd calls, the
// client serves its files, secrets and credentials. The Dockerfile of a
// build travels here, in the filesync stream of the directory the build
// names; it is judged with the build it belongs to (sessionWatcher)
// before the frame that completes it reaches dockerd.

// The actions of BuildKit's two upgrades (authz/routes.go).
const (
	sessionStartAction = "session.start"
	grpcStartAction    = "grpc.start"
)

// isBuildKitChannel says whether a switch to another protocol is one of
// BuildKit's two channels, which are relayed and read (relayH2), never
// spliced unread.
func isBuildKitChannel(m *authz.Match, resp *http.Response) bool {
	return resp.StatusCode == http.StatusSwitchingProtocols && m != nil && (m.Action == sessionStartAction || m.Action == grpcStartAction)
}

// relayH2 serves a /grpc or /session connection dockerd switched to h2c.
func (cn *clientConn) relayH2(ctx context.Context, head *requestHead, m *authz.Match, resp *http.Response, up *upstreamConn, rec *audit.Record) bool {
	cn.clearReadDeadline()
	rec.Hijacked = true
	if !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Upgrade")), "h2c") {
		rec.Decision, rec.Reason, rec.Status = audit.DecisionError, "dockerd switched "+m.Action+" to a protocol other than h2c, which dockgate cannot read", http.StatusBadGateway
		cn.finish(rec, rec.Time)
		writeError(cn.bw, head.Method, http.StatusBadGateway, rec.Reason, true)
		return false
	}
	if !cn.startSession(resp, true, rec) {
		return false
	}
	defer cn.s.hijackEnded()

	var res h2relay.Result
	if m.Action == sessionStartAction {
		w := &sessionWatcher{cn: cn, ctx: ctx, id: head.Header.Get("X-Docker-Expose-Session-Uuid")}
		// dockerd opens the calls of a session: it is the HTTP/2 client.
		res = h2relay.Relay(ctx, up.nc, up.br, cn.nc, cn.br, w, h2relay.Options{})
		rec.BytesIn += res.FromServer
		rec.BytesOut += res.FromClient
	} else {
		w := &grpcWatcher{cn: cn, ctx: ctx, solves: map[uint32]func(){}, builds: map[string]runningBuild{}, relay: new(h2relay.Handle)}
		res = h2relay.Relay(ctx, cn.nc, cn.br, up.nc, up.br, w, h2relay.Options{Handle: w.relay})
		rec.BytesIn += res.FromClient
		rec.BytesOut += res.FromServer
	}
	cn.setUpstream(nil) // the relay closed it
	switch {
	case res.Err != nil:
		rec.Reason = "dockgate ended the connection: " + res.Err.Error()
	case errors.Is(context.Cause(ctx), errRefusedBuildSession):
		rec.Reason = "dockgate ended the session: " + errRefusedBuildSession.Error()
	}
	cn.finish(rec, rec.Time)
	return false
}

// judgeCall judges one gRPC call (or a session's Dockerfile) on route m
// for the caller of cn, and writes its audit record. body is what is
// judged: the call's request message, or the Dockerfile.
func (cn *clientConn) judgeCall(ctx context.Context, m *authz.Match, method string, md map[string][]string, body []byte, solve *authz.BuildKitSolve) (authz.Decision, error) {
	start := time.Now()
	h := http.Header{}
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	req := &authz.Request{
		Method: http.MethodPost, URL: &url.URL{Path: method}, Header: h,
		Caller: cn.name, Subjects: cn.subjects, Cred: cn.cred, ContainerID: cn.caller.Container,
		Body: body, Solve: solve,
	}
	d := authz.Judge(ctx, cn.s.cfg.Decider, m, req)
	rec := &audit.Record{Time: start, RequestID: cn.s.nextRequestID(), Caller: cn.caller,
		Method: http.MethodPost, Path: method, Action: m.Action, BytesIn: int64(len(body))}
	rec.Facts, rec.WouldDeny = auditFacts(nil, d.Facts), d.WouldDeny
	if d.Container != nil {
		rec.Caller = judgedContainer(cn.caller, d.Container)
	}
	var err error
	if d.Allow {
		rec.Decision, rec.Reason, rec.Status = audit.DecisionAllow, d.Reason, http.StatusOK
	} else {
		rec.Decision, rec.Reason, rec.Status = audit.DecisionDeny, d.Reason, d.Status
		if d.Status != http.StatusForbidden {
			rec.Decision = audit.DecisionError
		}
		err = errors.New("dockgate: " + d.Reason)
	}
	rec.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	cn.s.cfg.Audit.Write(rec)
	cn.s.observeFinished(rec)
	return d, err
}

// grpcWatcher judges the calls a client makes on /grpc.
type grpcWatcher struct {
	cn  *clientConn
	ctx context.Context
	// solves unregisters, by stream, the allowed Solves still running;
	// builds are the running Control/Solves by ref.
	mu     sync.Mutex
	solves map[uint32]func()
	builds map[string]runningBuild
	// relay refuses a running Solve whose Dockerfile was refused.
	relay *h2relay.Handle
}

// runningBuild is a running Control/Solve: what it asked and its stream.
type runningBuild struct {
	solve  *authz.BuildKitSolve
	stream uint32
}

// controlSolveMethod is the call that starts a build on /grpc.
const controlSolveMethod = "/moby.buildkit.v1.Control/Solve"

func (w *grpcWatcher) Start(c *h2relay.Call) (h2relay.Watch, error) {
	m := authz.MatchBuildKitCall(c.Method)
	if m.NeedsBody {
		return h2relay.Watch{Requests: true}, nil
	}
	_, err := w.cn.judgeCall(w.ctx, m, c.Method, c.Metadata, nil, nil)
	return h2relay.Watch{}, err
}

// Message judges the first message of a call that reads its body.
func (w *grpcWatcher) Message(c *h2relay.Call, response bool, msg []byte) (bool, []byte, error) {
	m := authz.MatchBuildKitCall(c.Method)
	d, err := w.cn.judgeCall(w.ctx, m, c.Method, c.Metadata, msg, nil)
	if err != nil {
		return false, nil, err
	}
	if d.Solve != nil {
		w.register(c, *d.Solve)
	}
	// The judged message with what dockgate records in it (a tenant's
	// owner labels), when not nil.
	replace := d.Body
	return false, replace, nil
}

func (w *grpcWatcher) End(c *h2relay.Call) {
	w.mu.Lock()
	unregister := w.solves[c.Stream]
	delete(w.solves, c.Stream)
	if unregister != nil {
		unregister()
	}
	w.mu.Unlock()
}

// register records an allowed solve for the Dockerfile its session will
// carry. A client-side frontend's solve (LLBBridge/Solve) reads the session
// of the build it runs in, the Control/Solve with its ref. A refused
// Dockerfile ends the call that asked for it, and with it the build: the
// Control/Solve, or for a client-side frontend both its solve and the
// Control/Solve of its build.
func (w *grpcWatcher) register(c *h2relay.Call, solve authz.BuildKitSolve) {
	w.mu.Lock()
	parent, inBuild := w.builds[solve.Ref]
	w.mu.Unlock()
	if c.Method == controlSolveMethod {
		inBuild = false
	}
	if inBuild && solve.Session == "" {
		solve.Session = parent.solve.Session
		if solve.DockerfileSession == "" {
			solve.DockerfileSession = parent.solve.Session
		}
	}
	refuse := func(err error) {
		w.relay.Refuse(c.Stream, err)
		if inBuild {
			w.relay.Refuse(parent.stream, err)
		}
	}
	unregister := w.cn.s.buildSessions.register(&solve, w.cn, refuse)
	w.mu.Lock()
	defer w.mu.Unlock()
	isBuild := c.Method == controlSolveMethod && solve.Ref != ""
	if isBuild {
		w.builds[solve.Ref] = runningBuild{solve: &solve, stream: c.Stream}
	}
	w.solves[c.Stream] = func() {
		unregister()
		if isBuild && w.builds[solve.Ref].stream == c.Stream {
			delete(w.builds, solve.Ref)
		}
	}
}
