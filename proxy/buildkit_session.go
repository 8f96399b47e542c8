package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

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
}

// pendingBuild is one allowed build: what it asks (solve) and the
// connection of its caller, whose identity judges its Dockerfile.
type pendingBuild struct {
	solve *authz.BuildKitSolve
	cn    *clientConn
}

// register records an allowed build until the returned func is called.
func (b *buildSessions) register(solve *authz.BuildKitSolve, cn *clientConn) func() {
	if solve.SessionID == "" {
		return func() {}
	}
	p := &pendingBuild{solve: solve, cn: cn}
	b.mu.Lock()
	if b.builds == nil {
		b.builds = map[string][]*pendingBuild{}
	}
	b.builds[solve.SessionID] = append(b.builds[solve.SessionID], p)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		list := b.builds[solve.SessionID]
		for i, q := range list {
			if q == p {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(b.builds, solve.SessionID)
		} else {
			b.builds[solve.SessionID] = list
		}
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
	dir := first(c.Metadata["dir-name"])
	var builds []*pendingBuild
	for _, b := range w.cn.s.buildSessions.of(w.id) {
		if b.solve.DockerfileLocal == dir {
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
			return h2relay.Watch{}, fmt.Errorf("dockgate: the build of %s may not read the session of %s", b.cn.name, w.cn.name)
		}
	}
	if c.Method == tarStreamMethod {
		return h2relay.Watch{}, errors.New("dockgate: the Dockerfile of a build is read only from a filesync DiffCopy, not a TarStream")
	}
	want := c.Metadata["followpaths"]
	if len(want) == 0 {
		return h2relay.Watch{}, errors.New("dockgate: dockerd asked for the Dockerfile's directory without naming the files it follows")
	}
	w.mu.Lock()
	if w.reads == nil {
		w.reads = map[uint32]*dockerfileRead{}
	}
	w.reads[c.Stream] = &dockerfileRead{builds: builds, r: filesync.NewReader(want)}
	w.mu.Unlock()
	return h2relay.Watch{Requests: true, Responses: true}, nil
}

// Message reads the filesync packets of a Dockerfile's directory: dockerd's
// requests (h2relay's requests) and the client's answers (responses).
func (w *sessionWatcher) Message(c *h2relay.Call, response bool, msg []byte) (bool, error) {
	w.mu.Lock()
	rd := w.reads[c.Stream]
	w.mu.Unlock()
	if rd == nil {
		return false, nil
	}
	if !response {
		if err := rd.r.FromReceiver(msg); err != nil {
			return false, fmt.Errorf("dockgate: reading dockerd's side of the Dockerfile's transfer: %w", err)
		}
		return true, nil
	}
	ev, err := rd.r.FromSender(msg)
	if err != nil {
		return false, fmt.Errorf("dockgate: reading the Dockerfile's transfer: %w", err)
	}
	switch ev := ev.(type) {
	case filesync.FileComplete:
		if isDockerignore(ev.Path) {
			return true, nil
		}
		for _, b := range rd.builds {
			m := authz.MatchBuildKitDockerfile()
			if _, err := b.cn.judgeCall(w.ctx, m, c.Method, c.Metadata, ev.Content, b.solve); err != nil {
				return false, err
			}
		}
	case filesync.Finished:
		for _, p := range ev.Missing {
			if !isDockerignore(p) {
				return false, fmt.Errorf("dockgate: dockerd did not ask for the content of %s (it had a copy), so dockgate cannot judge the Dockerfile it would build", p)
			}
		}
		return false, nil
	}
	return true, nil
}

func (w *sessionWatcher) End(c *h2relay.Call) {
	w.mu.Lock()
	delete(w.reads, c.Stream)
	w.mu.Unlock()
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
