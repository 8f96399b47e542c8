package main

import (
	"github.com/dockgate/dockgate/internal/syncbuf"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The systemd units are tested with systemd's own tools, which work without
// a running systemd (CI has none): systemd-analyze verify and security, and
// systemd-socket-activate for LISTEN_FDS.

const unitDir = "../../systemd"

// maxExposure is the highest "systemd-analyze security" exposure the
// service may have: 2.5 and below is "OK".
const maxExposure = 2.5

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package systemd); the systemd unit tests need it", name)
	}
	return p
}

func TestSystemdUnitsVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	// verify checks that ExecStart's binary exists: point it at one that
	// does, as an installed dockgate would be.
	dir := t.TempDir()
	for _, name := range []string{"dockgate.service", "dockgate.socket"} {
		b, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "dockgate.service" && !strings.Contains(string(b), "ExecStart=/usr/local/bin/dockgate serve") {
			t.Fatalf("%s: ExecStart does not run /usr/local/bin/dockgate serve", name)
		}
		b = []byte(strings.ReplaceAll(string(b), "/usr/local/bin/dockgate", os.Args[0]))
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "dockgate.service"), filepath.Join(dir, "dockgate.socket")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for dockgate\.service: ([0-9]+\.[0-9]+)`)

func TestSystemdServiceExposureIsOK(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	out, err := exec.Command(analyze, "security", "--offline=true", filepath.Join(unitDir, "dockgate.service")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	if score > maxExposure {
		t.Fatalf("exposure %.1f, want at most %.1f:\n%s", score, maxExposure, out)
	}
	// The documented number is the measured one.
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), m[0]) {
		t.Errorf("docs/operations.md does not record %q", m[0])
	}
}

// readNotify reads notification datagrams until one holds want.
func readNotify(t *testing.T, c *net.UnixConn, want string, seen *[]string) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no %q from dockgate (got %q): %v", want, *seen, err)
		}
		msg := string(buf[:n])
		*seen = append(*seen, msg)
		for _, line := range strings.Split(msg, "\n") {
			if line == want {
				return
			}
		}
	}
}

func TestSocketActivationAndReadiness(t *testing.T) {
	activate := needTool(t, "systemd-socket-activate")
	dir := shortTempDir(t)
	up := fakeDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		io.WriteString(w, "OK")
	}))
	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	sock := filepath.Join(dir, "docker.sock")
	unused := filepath.Join(dir, "unused.sock")
	cmd := exec.Command(activate, "-l", sock,
		"-E", runMainEnv+"=1", "-E", "NOTIFY_SOCKET="+notifyPath, "-E", "WATCHDOG_USEC=400000",
		os.Args[0], "serve", "--listen", "unix://"+unused, "--upstream", "unix://"+up,
		"--audit-log", filepath.Join(dir, "audit.log"))
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	waitForPath(t, sock)

	// The first connection makes systemd-socket-activate start dockgate,
	// which finds the socket in LISTEN_FDS.
	resp, err := unixClient(sock).Get("http://docker/_ping")
	if err != nil {
		t.Fatalf("request through the activated socket: %v\n%s", err, stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Fatalf("ping through the activated socket: %d %q\n%s", resp.StatusCode, body, stderr.String())
	}
	var seen []string
	readNotify(t, notify, "READY=1", &seen)
	if !strings.Contains(strings.Join(seen, "\n"), "STATUS=serving on "+sock) {
		t.Errorf("no STATUS naming the socket in %q", seen)
	}
	if _, err := os.Stat(unused); !os.IsNotExist(err) {
		t.Errorf("--listen socket %s created although systemd passed one: %v", unused, err)
	}
	if !strings.Contains(stderr.String(), "socket-activated") {
		t.Errorf("log does not say it was socket-activated:\n%s", stderr.String())
	}

	// WatchdogSec=0.4s: pinged every 0.2 s.
	readNotify(t, notify, "WATCHDOG=1", &seen)
	readNotify(t, notify, "WATCHDOG=1", &seen)

	// SIGHUP: RELOADING=1, then READY=1 again.
	cmd.Process.Signal(syscall.SIGHUP)
	readNotify(t, notify, "RELOADING=1", &seen)
	readNotify(t, notify, "READY=1", &seen)

	cmd.Process.Signal(syscall.SIGTERM)
	readNotify(t, notify, "STOPPING=1", &seen)
	select {
	case <-exited:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("dockgate did not exit after SIGTERM:\n%s", stderr.String())
	}
}

func waitForPath(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestActivatedTCPSocketIsRefused(t *testing.T) {
	activate := needTool(t, "systemd-socket-activate")
	dir := shortTempDir(t)
	cmd := exec.Command(activate, "-l", "127.0.0.1:0",
		"-E", runMainEnv+"=1", os.Args[0], "serve", "--upstream", "unix://"+filepath.Join(dir, "up.sock"),
		"--audit-log", filepath.Join(dir, "audit.log"))
	out := &syncbuf.Buffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// systemd-socket-activate says where it listens on stderr; connect to
	// start dockgate.
	re := regexp.MustCompile(`Listening on 127\.0\.0\.1:([0-9]+)`)
	var port string
	waitUntil := time.Now().Add(10 * time.Second)
	for port == "" && time.Now().Before(waitUntil) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			port = m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if port == "" {
		t.Skipf("cannot find the port systemd-socket-activate listens on:\n%s", out.String())
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
		c.Close()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("dockgate kept serving a TCP socket from systemd:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out.String(), "only Unix sockets") {
		t.Fatalf("exit %d, want 1 saying only Unix sockets are supported:\n%s", code, out.String())
	}
}
