package e2e

// Live reload and graceful stop of a dockgate of the test's own: a
// SIGHUP with a changed policy changes the decisions for new
// requests while a `docker logs -f` and an attached `docker exec -it` stay
// up; a SIGTERM during a 256 MiB upload lets the upload finish within
// --shutdown-grace while new connections are refused, and dockgate exits 0.

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// opsAllowRoot lets root do everything; opsDenyList adds a deny row for
// container.list (a deny row wins over every allow row).
const (
	opsAllowRoot = "p, uid:0, *, **, allow\n"
	opsDenyList  = opsAllowRoot + "p, uid:0, endpoint, container.list, deny\n"
)

// opsSession is a client session on one host that is not compared with
// anything: the flows here check their own outcome.
func opsSession(t *testing.T, env *testbed.Env, host string) *session {
	s := newSession(t, env, side{name: "ops", host: host}, newCLI(t))
	t.Cleanup(s.cleanup)
	return s
}

// opsWritePolicy replaces the policy file atomically (a rename), so that
// dockgate's poller never reads half a file.
func opsWritePolicy(t *testing.T, dir, csv string) {
	t.Helper()
	tmp := filepath.Join(dir, ".ci.csv.tmp")
	if err := os.WriteFile(tmp, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "ci.csv")); err != nil {
		t.Fatal(err)
	}
}

// opsReload rewrites the policy, sends SIGHUP and waits until dockgate's log
// shows a SIGHUP reload after the signal.
func opsReload(t *testing.T, g *azGate, csv string) {
	t.Helper()
	before, _ := os.ReadFile(g.Stderr)
	opsWritePolicy(t, g.policy, csv)
	if err := syscall.Kill(g.Pid, syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(g.Stderr)
		if len(b) > len(before) && strings.Contains(string(b[len(before):]), `"trigger":"SIGHUP"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SIGHUP reload in dockgate's log:\n%s", b[len(before):])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOpsReloadKeepsStreamsAndSessions(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, opsAllowRoot)
	s := opsSession(t, env, g.Host)

	name := unique(t, "c")
	s.rmContainer(name)
	s.must("run", "-d", "--name", name, image, ticker[0], ticker[1], ticker[2])
	logs := s.background(nil, "logs", "-f", name)
	if !logs.waitFor("line 1\n", 15*time.Second) {
		out, errOut := logs.output()
		t.Fatalf("logs -f shows nothing: %q %q", out, errOut)
	}
	args := []string{"exec", "-it", name, "sh"}
	p := s.tty(args...)
	typeAndSee(s, p, "", "# ")
	typeAndSee(s, p, "echo $((40+2))\r", "42")
	s.must("ps")

	opsReload(t, g, opsDenyList)
	r := s.docker("ps")
	if r.code == 0 || !strings.Contains(r.stderr, "container.list") {
		t.Errorf("after the reload, docker ps: want refused naming container.list: %v", r)
	}
	if !strings.Contains(r.stderr, "dockgate") {
		t.Errorf("the refusal does not say it is dockgate's: %v", r)
	}

	// The stream and the session opened under the old policy are still up.
	out, _ := logs.output()
	n := strings.Count(out, "\n")
	if !logs.waitUntil(func(out, _ string) bool { return strings.Count(out, "\n") >= n+5 }, 15*time.Second) {
		out, errOut := logs.output()
		t.Errorf("logs -f stopped receiving after the reload: %q %q", out[max(0, len(out)-200):], errOut)
	}
	typeAndSee(s, p, "echo $((600+66))\r", "666")
	// New requests of other kinds still go through.
	if r := s.docker("inspect", "-f", "{{.State.Running}}", name); r.code != 0 || r.stdout != "true\n" {
		t.Errorf("inspect after the reload: %v", r)
	}

	opsReload(t, g, opsAllowRoot)
	if r := s.docker("ps", "--format", "{{.Names}}"); r.code != 0 || !strings.Contains(r.stdout, name) {
		t.Errorf("after the second reload, docker ps: want it allowed again: %v", r)
	}
	typeAndSee(s, p, "exit 3\r", "")
	if code, err := p.Wait(15 * time.Second); err != nil || code != 3 {
		t.Errorf("exec -it: want exit 3: %d %v", code, err)
	}
	select {
	case <-logs.done:
		out, errOut := logs.output()
		t.Errorf("logs -f ended: %q %q", out[max(0, len(out)-200):], errOut)
	default:
	}
}

// opsUpload is a tar stream of one file of size bytes of ChaCha8 data,
// produced as it is read: nothing is written to disk. It stops after pause
// bytes of data until resume is closed.
type opsUpload struct {
	size, pause int64
	paused      chan struct{} // closed when pause bytes are out
	resume      chan struct{}
	sum         string // sha256 of the file, set when the stream ended
}

func (u *opsUpload) reader() io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		hdr := &tar.Header{Name: "big", Mode: 0o644, Size: u.size, Typeflag: tar.TypeReg, ModTime: time.Now()}
		if err := tw.WriteHeader(hdr); err != nil {
			pw.CloseWithError(err)
			return
		}
		rng := rand.NewChaCha8([32]byte{5})
		h := sha256.New()
		buf := make([]byte, 1<<20)
		var sent int64
		for sent < u.size {
			if sent == u.pause {
				close(u.paused)
				<-u.resume
			}
			n := int64(len(buf))
			if u.pause > sent {
				n = min(n, u.pause-sent)
			}
			n = min(n, u.size-sent)
			_, _ = rng.Read(buf[:n])
			h.Write(buf[:n])
			if _, err := tw.Write(buf[:n]); err != nil {
				pw.CloseWithError(err)
				return
			}
			sent += n
		}
		u.sum = hex.EncodeToString(h.Sum(nil))
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

func TestOpsSIGTERMLetsAnUploadFinish(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, opsAllowRoot, "--shutdown-grace", "60s")
	direct := opsSession(t, env, env.DirectHost())
	name := unique(t, "c")
	direct.rmContainer(name)
	direct.must("run", "-d", "--name", name, image, "sleep", "600")

	c, err := client.NewClientWithOpts(client.WithHost(g.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Big enough that a quarter of it is a moment in flight; its size
	// is not what is tested.
	const size = 256 << 20
	u := &opsUpload{size: size, pause: size / 4, paused: make(chan struct{}), resume: make(chan struct{})}
	var resumed bool
	defer func() {
		if !resumed {
			close(u.resume)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	body := u.reader()
	defer body.Close()
	uploaded := make(chan error, 1)
	start := time.Now()
	go func() {
		uploaded <- c.CopyToContainer(ctx, name, "/tmp", body, container.CopyToContainerOptions{})
	}()
	select {
	case <-u.paused:
	case err := <-uploaded:
		t.Fatalf("upload ended before a quarter was sent: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("a quarter of the upload not sent within 2 minutes")
	}

	// SIGTERM with the upload in flight: the socket goes, dockgate stays.
	if err := syscall.Kill(g.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", g.Socket)
		if err != nil {
			t.Logf("a new connection during the grace period: %v", err)
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("dockgate still accepts connections 10 s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !g.Running() {
		t.Fatal("dockgate exited with an upload in flight, before the grace period ended")
	}
	resumed = true
	close(u.resume)
	select {
	case err := <-uploaded:
		if err != nil {
			t.Fatalf("upload through a stopping dockgate: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("upload not finished 2 minutes after it resumed")
	}
	t.Logf("256 MiB uploaded in %v, %v of it after SIGTERM", time.Since(start).Round(time.Millisecond), time.Since(signalled).Round(time.Millisecond))
	if time.Since(signalled) > 60*time.Second {
		t.Errorf("the upload took longer than the grace period after SIGTERM: it may have been cut")
	}

	deadline = time.Now().Add(15 * time.Second)
	for g.Running() {
		if time.Now().After(deadline) {
			t.Fatal("dockgate still running 15 s after its last request finished")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := g.Stop(); err != nil { // returns how it exited
		t.Errorf("dockgate after SIGTERM: want exit 0: %v", err)
	}
	if _, err := os.Stat(g.Socket); !os.IsNotExist(err) {
		t.Errorf("socket %s still there after the stop: %v", g.Socket, err)
	}

	r := direct.docker("exec", name, "sh", "-c", "stat -c %s /tmp/big; sha256sum /tmp/big")
	want := strconv.Itoa(size) + "\n" + u.sum + "  /tmp/big\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("the file in the container: want %q: %v", want, r)
	}
	direct.docker("exec", name, "rm", "-f", "/tmp/big")
}
