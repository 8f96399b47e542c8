package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

// relay stands in for dockerd at a socket path of its own, so that a test
// can make "dockerd" vanish and come back without touching the shared one.
type relay struct {
	path, target string
	l            net.Listener
	mu           sync.Mutex
	conns        map[net.Conn]bool
	wg           sync.WaitGroup
}

func startRelay(t *testing.T, path, target string) *relay {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{path: path, target: target, l: l, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(c)
			}()
		}
	}()
	return r
}

func (r *relay) serve(c net.Conn) {
	up, err := net.Dial("unix", r.target)
	if err != nil {
		c.Close()
		return
	}
	r.mu.Lock()
	r.conns[c], r.conns[up] = true, true
	r.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	c.Close()
	up.Close()
	r.mu.Lock()
	delete(r.conns, c)
	delete(r.conns, up)
	r.mu.Unlock()
}

// stop is dockerd dying: the socket goes, every connection breaks.
func (r *relay) stop() {
	r.l.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	os.Remove(r.path)
}

func TestDockerdGoneGives502AndItsReturnNeedsNoRestart(t *testing.T) {
	env := sharedWithDockgate(t)
	dir, err := os.MkdirTemp("/tmp", "dg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	upstream := filepath.Join(dir, "dockerd.sock")
	rl := startRelay(t, upstream, env.Dockerd.Socket)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	g, err := testbed.StartDockgate(ctx, env.Bin, filepath.Join(dir, "g"), "unix://"+upstream)
	if err != nil {
		rl.stop()
		t.Fatal(err)
	}
	defer func() {
		if err := g.Stop(); err != nil {
			t.Errorf("dockgate did not stop cleanly on SIGTERM: %v", err)
		}
		for _, p := range g.Problems() {
			t.Errorf("dockgate's stderr reports: %s", p)
		}
	}()
	s := newSession(t, env, side{name: "dockgate", host: g.Host}, newCLI(t))

	r := s.docker("ps", "-q", "--filter", "name=e2e-no-such")
	if r.code != 0 {
		t.Fatalf("with dockerd there: %v", r)
	}
	rl.stop()
	resp := rawDo(t, g.Host, http.MethodGet, "/v1.41/containers/json", nil, nil)
	var msg struct{ Message string }
	if resp.status != http.StatusBadGateway || !strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(resp.body, &msg) != nil || msg.Message == "" {
		t.Errorf("with dockerd gone: want 502 with a JSON message, got %d %q %q", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	r = s.docker("ps")
	if r.code == 0 || !strings.Contains(r.stderr, "Error response from daemon") {
		t.Errorf("with dockerd gone the CLI should report the daemon's error: %v", r)
	}

	rl = startRelay(t, upstream, env.Dockerd.Socket)
	defer rl.stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = s.docker("ps", "-q", "--filter", "name=e2e-no-such")
		if r.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.code != 0 {
		t.Errorf("dockerd is back but dockgate does not forward again: %v", r)
	}
	recs, err := g.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range recs {
		if num(rec["status"]) == http.StatusBadGateway && callerPid(rec) == os.Getpid() {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit record with status 502 for the request made while dockerd was gone")
	}
}
