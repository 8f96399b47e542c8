package proxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/proxy/internal/filesync"
	"github.com/dockgate/dockgate/proxy/internal/h2relay"
)

// buildSessions are the BuildKit builds dockgate allowed that are still
// running, by the session they read their files from: a Dockerfile that
// passes on a session is judged with every build that uses it.
type buildSessions struct {
	mu     sync.Mutex
	builds map[string][]*pendingBuild
	// open are the /session connections being relayed, and refused the
	// sessions of refused builds (session_end.go), by session ID.
	open    map[string][]*openSession
	refused map[string]refusedSession
	// endGrace is refusedSessionGrace, shorter in tests.
	endGrace time.Duration
}

// pendingBuild is one allowed build: what it asks (solve) and the
// connection of its caller, whose identity judges its Dockerfile.
type pendingBuild struct {
	solve *authz.BuildKitSolve
	cn    *clientConn
	// refuse, when not nil, ends the build's own call (a Solve on
	// /grpc) with a refusal, so that its client gets dockgate's message
	// whatever dockerd makes of the refused Dockerfile.
	refuse func(error)
}

// register records an allowed build, under the session its Dockerfile
// is read from, until the returned func is called.
func (b *buildSessions) register(solve *authz.BuildKitSolve, cn *clientConn, refuse func(error)) func() {
	id := solve.DockerfileSession
	if id == "" {
		id = solve.Session
	}
	if id == "" {
		return func() {}
	}
	p := &pendingBuild{solve: solve, cn: cn, refuse: refuse}
	b.mu.Lock()
	if b.builds == nil {
		b.builds = map[string][]*pendingBuild{}
	}
	b.builds[id] = append(b.builds[id], p)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		removeFrom(b.builds, id, p)
	}
}

// removeFrom takes v out of m's list under key, and the key out of m when
// its list is left empty.
func removeFrom[T comparable](m map[string][]T, key string, v T) {
	list := m[key]
	if i := slices.Index(list, v); i >= 0 {
		list = append(list[:i:i], list[i+1:]...)
	}
	if len(list) == 0 {
		delete(m, key)
	} else {
		m[key] = list
	}
}

// of returns the builds running on session id.
func (b *buildSessions) of(id string) []*pendingBuild {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*pendingBuild(nil), b.builds[id]...)
}

// Methods of the session dockerd calls to read the client's files.
const (
	diffCopyMethod  = "/moby.filesync.v1.FileSync/DiffCopy"
	tarStreamMethod = "/moby.filesync.v1.FileSync/TarStream"
)

// sessionWatcher reads the Dockerfile of each build as dockerd fetches it
// over the build's session, and has it judged for that build.
type sessionWatcher struct {
	cn  *clientConn
	ctx context.Context
	id  string // the session's ID, as the client announced it

	mu    sync.Mutex
	reads map[uint32]*dockerfileRead
}

// dockerfileRead is one transfer of a directory that holds a Dockerfile.
type dockerfileRead struct {
	builds []*pendingBuild
	r      *filesync.Reader
}

func (w *sessionWatcher) Start(c *h2relay.Call) (h2relay.Watch, error) {
	if c.Method != diffCopyMethod && c.Method != tarStreamMethod {
		return h2relay.Watch{}, nil
	}
	dir := first(sessionOpt(c.Metadata, "dir-name"))
	var builds []*pendingBuild
	for _, b := range w.cn.s.buildSessions.of(w.id) {
		if b.solve.ReadsDockerfile && b.solve.DockerfileDir == dir {
			builds = append(builds, b)
		}
	}
	if len(builds) == 0 {
		return h2relay.Watch{}, nil
	}
	for _, b := range builds {
		if b.cn.name != w.cn.name {
			// A build may read only its own caller's files: another
			// caller's session would give it their secrets too.
			return h2relay.Watch{}, refuseBuilds(builds, fmt.Errorf("dockgate: the build of %s may not read the session of %s", b.cn.name, w.cn.name))
		}
	}
	if c.Method == tarStreamMethod {
		return h2relay.Watch{}, refuseBuilds(builds, errors.New("dockgate: the Dockerfile of a build is read only from a filesync DiffCopy, not a TarStream"))
	}
	want := sessionOpt(c.Metadata, "followpaths")
	if len(want) == 0 {
		return h2relay.Watch{}, refuseBuilds(builds, errors.New("dockgate: dockerd asked for the Dockerfile's directory without naming the files it follows"))
	}
	w.mu.Lock()
	if w.reads == nil {
		w.reads = map[uint32]*dockerfileRead{}
	}
	w.reads[c.Stream] = &dockerfileRead{builds: builds, r: filesync.NewReader(want, filesync.WithFreshStats(randomNonce()))}
	w.mu.Unlock()
	return h2relay.Watch{Requests: true, Responses: true}, nil
}

// Message reads the filesync packets of a Dockerfile's directory: dockerd's
// requests (h2relay's requests) and the client's answers (responses).
func (w *sessionWatcher) Message(c *h2relay.Call, response bool, msg []byte) (bool, []byte, error) {
	w.mu.Lock()
	rd := w.reads[c.Stream]
	w.mu.Unlock()
	if rd == nil {
		return false, nil, nil
	}
	if !response {
		if err := rd.r.FromReceiver(msg); err != nil {
			return false, nil, refuseBuilds(rd.builds, fmt.Errorf("dockgate: reading dockerd's side of the Dockerfile's transfer: %w", err))
		}
		return true, nil, nil
	}
	ev, err := rd.r.FromSender(msg)
	if err != nil {
		return false, nil, refuseBuilds(rd.builds, fmt.Errorf("dockgate: reading the Dockerfile's transfer: %w", err))
	}
	for _, f := range ev.Complete {
		if isDockerignore(f.Name) {
			continue
		}
		for _, b := range rd.builds {
			if _, err := b.cn.judgeCall(w.ctx, authz.MatchBuildKitDockerfile(), c.Method, c.Metadata, f.Content, b.solve); err != nil {
				return false, nil, refuseBuilds(rd.builds, err)
			}
		}
	}
	if ev.Finished {
		for _, p := range ev.Missing {
			if !isDockerignore(p) {
				return false, nil, refuseBuilds(rd.builds, fmt.Errorf("dockgate: dockerd did not ask for the content of %s (it kept a copy from an earlier build), so dockgate cannot judge the Dockerfile it would build", p))
			}
		}
		return false, nil, nil
	}
	// A STAT of a wanted file goes on with a modification time of its
	// own (filesync.WithFreshStats): dockerd then asks for the content
	// even where it kept a file of the same size and time, which
	// BuildKit 0.8 (Engine 20.10) would use unread.
	return true, ev.Replace, nil
}

func (w *sessionWatcher) End(c *h2relay.Call) {
	w.mu.Lock()
	delete(w.reads, c.Stream)
	w.mu.Unlock()
}

// refuseBuilds ends each of builds with err, the refusal of the transfer of
// its Dockerfile, so that its client gets dockgate's message whatever
// dockerd makes of the refused transfer; it returns err.
func refuseBuilds(builds []*pendingBuild, err error) error {
	for _, b := range builds {
		if b.refuse != nil {
			b.refuse(err)
		}
	}
	return err
}

func isDockerignore(p string) bool {
	return strings.HasSuffix(p, ".dockerignore")
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// sessionOpt is the metadata value key of a filesync call as the client's
// side of the session reads it (BuildKit's filesync decodeOpts):
// query-unescaped when key+"-encoded" says so, errors giving "".
func sessionOpt(md map[string][]string, key string) []string {
	vs := md[key]
	if enc, _ := strconv.ParseBool(first(md[key+"-encoded"])); !enc {
		return vs
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i], _ = url.QueryUnescape(v)
	}
	return out
}

// randomNonce makes each transfer's fresh modification times its own.
func randomNonce() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
