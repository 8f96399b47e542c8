package main

import (
	"bytes"
	"context"
	"github.com/dockgate/dockgate/internal/syncbuf"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary act as dockgate itself, so that a test
// can start "dockgate serve" as a process of its own and signal it.
const runMainEnv = "DOCKGATE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// shortTempDir is a temp dir whose path fits in a Unix socket address.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "dg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fakeDockerd serves h on a Unix socket in dir and returns its path.
func fakeDockerd(t *testing.T, dir string, h http.Handler) string {
	t.Helper()
	path := filepath.Join(dir, "up.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return path
}

// dockgateProc is "dockgate serve" running as a child process.
type dockgateProc struct {
	cmd    *exec.Cmd
	sock   string
	stderr *syncbuf.Buffer
	done   chan struct{} // closed when the process has exited
}

// startDockgate runs the test binary as "dockgate serve args..." and waits
// for its socket.
func startDockgate(t *testing.T, sock string, args ...string) *dockgateProc {
	t.Helper()
	p := &dockgateProc{sock: sock, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockgate did not listen on %s:\n%s", sock, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *dockgateProc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("dockgate still running %v later:\n%s", within, p.stderr.String())
		return -1
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func TestSIGTERMLetsARequestInFlightFinishAndExitsZero(t *testing.T) {
	dir := shortTempDir(t)
	arrived := make(chan struct{}, 1)
	up := fakeDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/containers/x/json") {
			// dockgate's own questions (the owner cache's events
			// subscription) are not the request in flight.
			http.NotFound(w, r)
			return
		}
		arrived <- struct{}{}
		time.Sleep(time.Second)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Id":"slow"}`)
	}))
	sock := filepath.Join(dir, "dg.sock")
	auditLog := filepath.Join(dir, "audit.log")
	p := startDockgate(t, sock, "--listen", "unix://"+sock, "--upstream", "unix://"+up, "--audit-log", auditLog, "--shutdown-grace", "10s")

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := unixClient(sock).Get("http://docker/v1.41/containers/x/json")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	p.cmd.Process.Signal(syscall.SIGTERM)
	r := <-got
	if r.err != nil || r.status != http.StatusOK || r.body != `{"Id":"slow"}` {
		t.Fatalf("request in flight at SIGTERM: %d %q %v, want 200 and the whole body", r.status, r.body, r.err)
	}
	if code := p.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
	logs := p.stderr.String()
	for _, want := range []string{"stopping: no new connections", "dockgate stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	b, _ := os.ReadFile(auditLog)
	if !bytes.Contains(b, []byte(`"path":"/v1.41/containers/x/json"`)) || !bytes.Contains(b, []byte(`"status":200`)) {
		t.Errorf("the finished request is not in the audit log:\n%s", b)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind: %v", sock, err)
	}
}

func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	dir := shortTempDir(t)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	up := fakeDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/containers/x/logs") {
			// dockgate's own questions (the owner cache's events
			// subscription) are not the stream.
			http.NotFound(w, r)
			return
		}
		// A stream that never ends on its own, like logs -f.
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	sock := filepath.Join(dir, "dg.sock")
	p := startDockgate(t, sock, "--listen", "unix://"+sock, "--upstream", "unix://"+up, "--audit-log", filepath.Join(dir, "audit.log"), "--shutdown-grace", "1h")
	resp, err := unixClient(sock).Get("http://docker/v1.41/containers/x/logs?follow=1&stdout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-arrived
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("dockgate exited at the first SIGTERM with a stream open:\n%s", p.stderr.String())
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 3*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "second signal: closing every connection now") {
		t.Errorf("log lacks the second signal:\n%s", p.stderr.String())
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Log("stream ended cleanly") // either way it ended
	}
}

func TestServeRefusesANegativeShutdownGrace(t *testing.T) {
	code, _, stderr := runCmd(t, "serve", "--shutdown-grace", "-1s", "--listen", "unix://"+filepath.Join(t.TempDir(), "s.sock"))
	if code != 2 || !strings.Contains(stderr, "--shutdown-grace") {
		t.Errorf("exit %d, want 2 naming the flag:\n%s", code, stderr)
	}
}
