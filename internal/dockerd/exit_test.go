package dockerd

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockerd/dockerdtest"
)

// exitFake is a dockerd whose exec e1 runs for its first asks and then
// exits 3, and whose container c1 never stops.
type exitFake struct {
	mu    sync.Mutex
	asked []*http.Request
}

func (f *exitFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.asked = append(f.asked, r)
	n := len(f.asked)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch strings.TrimPrefix(r.URL.Path, dockerdtest.VersionPrefix.FindString(r.URL.Path)) {
	case "/exec/e1/json":
		if n < 3 {
			w.Write([]byte(`{"ID":"e1","Running":true,"ExitCode":0}`))
			return
		}
		w.Write([]byte(`{"ID":"e1","Running":false,"ExitCode":3}`))
	case "/containers/c1/json":
		w.Write([]byte(`{"Id":"c1","State":{"Running":true,"ExitCode":0}}`))
	case "/containers/c2/json":
		w.Write([]byte(`{"Id":"c2","State":{"Running":false,"ExitCode":137}}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"no such object"}`))
	}
}

func TestExitCodes(t *testing.T) {
	f := &exitFake{}
	c, err := New(dockerdtest.Serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if code, ok := c.ExecExit(ctx, "1.41", "e1"); !ok || code != 3 {
		t.Fatalf("exec: %d %v, want 3 once it stopped running", code, ok)
	}
	f.mu.Lock()
	for _, r := range f.asked {
		if r.URL.Path != "/v1.41/exec/e1/json" || r.UserAgent() != "dockgate" || !r.Close {
			t.Errorf("asked %s, User-Agent %q, Connection: close %v; want the session's API version, dockgate, a connection closed after", r.URL.Path, r.UserAgent(), r.Close)
		}
	}
	f.mu.Unlock()
	if code, ok := c.ContainerExit(ctx, "", "c2"); !ok || code != 137 {
		t.Fatalf("container: %d %v, want 137", code, ok)
	}
	start := time.Now()
	if _, ok := c.ContainerExit(ctx, "1.41", "c1"); ok {
		t.Fatal("a container still running has an exit code")
	}
	if d := time.Since(start); d < attachExitWindow || d > 10*attachExitWindow {
		t.Errorf("a running container was asked about for %v, want about %v", d, attachExitWindow)
	}
	if _, ok := c.ExecExit(ctx, "1.41", "gone"); ok {
		t.Fatal("a 404 has an exit code")
	}

	down, err := New("unix://" + filepath.Join(t.TempDir(), "missing.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if _, ok := down.ExecExit(ctx, "", "e1"); ok {
		t.Fatal("no dockerd, yet an exit code")
	}
}
