package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// "One local user locks everyone out" (BRIEF §7 class 14): a
// caller holding every connection it may open stops nobody else, the
// refusals name it, and a connection that sends nothing is closed after
// --header-timeout.

const (
	fsHeaderTimeout = 2 * time.Second
	fsMaxConns      = 8
	fsRootReserve   = 1 // of fsMaxConns: a sixteenth, at least one (docs/operations.md)
	fsPerCaller     = 4
	fsFlooder       = 1002
	fsNeighbour     = 1003
	fsUser          = 1001
)

// fsPolicy lets everyone ping and ask versions, and root do anything.
const fsPolicy = "p, *, endpoint, system.*, allow\np, uid:0, *, **, allow\n"

// fsHolder is a process running as another uid that opens connections to
// dockgate and keeps them until it is told to let go. Each connection it
// holds made one request (so that it is known to be admitted) and is then
// idle, as keep-alive connections of the docker CLI and SDK are; each
// extra connection makes a request and reports the answer.
type fsHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines []string
}

// fsHolderScript is perl (perl-base is in every Debian): a test helper
// run with setpriv, like the docker CLI as other uids elsewhere. It
// prints one line per connection, "held STATUS" or "extra STATUS BODY",
// then "ready", and closes everything when its stdin ends.
const fsHolderScript = `
use strict; use Socket; use IO::Socket::UNIX;
my ($path, $hold, $extra) = @ARGV;
$| = 1;
sub ping {
	my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path) or die "connect $path: $!";
	print $s "GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n";
	my $status = <$s> // "closed\r\n";
	$status =~ s/\r?\n$//;
	my $len = 0;
	while (my $l = <$s>) { last if $l eq "\r\n"; $len = $1 if $l =~ /^Content-Length:\s*(\d+)/i; }
	my $body = "";
	read($s, $body, $len) if $len;
	$body =~ s/\n//g;
	return ($s, $status, $body);
}
my @held;
for (1..$hold) { my ($s, $st, $b) = ping(); print "held $st $b\n"; push @held, $s; }
for (1..$extra) { my ($s, $st, $b) = ping(); print "extra $st $b\n"; close $s; }
print "ready\n";
<STDIN>;
`

// fsHold starts a holder as uid and waits until it holds its connections.
func fsHold(t *testing.T, socket string, uid, hold, extra int) *fsHolder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	id := strconv.Itoa(uid)
	cmd := exec.CommandContext(ctx, testbed.RequireBinary(t, "setpriv"), "--reuid="+id, "--regid="+id, "--clear-groups",
		testbed.RequireBinary(t, "perl"), "-e", fsHolderScript, socket, strconv.Itoa(hold), strconv.Itoa(extra))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C"}
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &fsHolder{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		h.release()
		cancel()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(azTimeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("holder as uid %d ended before it was ready: %q; stderr %q", uid, h.lines, stderr.String())
			}
			if l == "ready" {
				go func() {
					for range lines {
					}
				}()
				return h
			}
			h.lines = append(h.lines, l)
		case <-timeout:
			t.Fatalf("holder as uid %d not ready after %v: %q", uid, azTimeout, h.lines)
		}
	}
}

// release closes the holder's connections and waits for it.
func (h *fsHolder) release() {
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
		h.cmd.Wait()
	}
}

// fsHoldAll holds n connections as uid, all of them admitted. The
// connections of clients that just exited may still be counted for a
// moment, until dockgate reads their end: a holder that got a 503 lets go
// and tries again.
func fsHoldAll(t *testing.T, socket string, uid, n int) *fsHolder {
	t.Helper()
	var h *fsHolder
	for range 20 {
		h = fsHold(t, socket, uid, n, 0)
		held := 0
		for _, l := range h.lines {
			if strings.HasPrefix(l, "held ") && strings.Contains(l, " 200 ") {
				held++
			}
		}
		if held == n {
			return h
		}
		h.release()
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("uid %d could not hold %d connections: %q", uid, n, h.lines)
	return nil
}

// fsSDKPing pings with a Go SDK client of its own, closed after it.
func fsSDKPing(host string) error {
	sdk, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer sdk.Close()
	ctx, cancel := azCtx()
	defer cancel()
	_, err = sdk.Ping(ctx)
	return err
}

// fsPing sends GET /_ping as uid with curl and returns the status and body.
func fsPing(t *testing.T, socket string, uid int) (int, string) {
	t.Helper()
	return tnCurl(t, socket, uid, "GET", "/v1.41/_ping")
}

func TestFairShareOneCallerHoldingItsShareLocksOutNobody(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, fsPolicy,
		"--max-connections", strconv.Itoa(fsMaxConns),
		"--max-connections-per-caller", strconv.Itoa(fsPerCaller))
	user := tnNewUser(t, g.Host, fsUser)
	root := tnNewUser(t, g.Host, 0)
	oldCLI := testbed.RequireBinary(t, "/usr/bin/docker") // 20.10

	// uid 1002 takes its whole share and asks for more.
	flood := fsHold(t, g.Socket, fsFlooder, fsPerCaller, 2)
	wantRefusal := fmt.Sprintf("dockgate: uid:%d has %d connections open, the limit per caller", fsFlooder, fsPerCaller)
	for _, l := range flood.lines {
		switch {
		case strings.HasPrefix(l, "held "):
			if !strings.Contains(l, " 200 ") {
				t.Errorf("uid %d within its share: %q", fsFlooder, l)
			}
		case !strings.Contains(l, " 503 ") || !strings.Contains(l, wantRefusal):
			t.Errorf("uid %d over its share: %q, want 503 %q", fsFlooder, l, wantRefusal)
		}
	}
	if code, body := fsPing(t, g.Socket, fsFlooder); code != http.StatusServiceUnavailable || !strings.Contains(body, wantRefusal) {
		t.Errorf("curl as uid %d over its share: %d %q, want 503 %q", fsFlooder, code, body, wantRefusal)
	}

	// Everyone else is answered, again and again: zero lockouts.
	lockouts := 0
	for round := range 3 {
		if r := user.run("version", "--format", "{{.Server.APIVersion}}"); r.code != 0 {
			lockouts++
			t.Errorf("round %d: uid %d: %v", round, fsUser, r)
		}
		if r := root.run("version", "--format", "{{.Server.APIVersion}}"); r.code != 0 {
			lockouts++
			t.Errorf("round %d: root, docker CLI 28: %v", round, r)
		}
		if out, err := exec.Command(oldCLI, "-H", g.Host, "version", "--format", "{{.Server.APIVersion}}").CombinedOutput(); err != nil {
			lockouts++
			t.Errorf("round %d: root, docker CLI 20.10: %v: %s", round, err, out)
		}
		if err := fsSDKPing(g.Host); err != nil {
			lockouts++
			t.Errorf("round %d: root, Go SDK ping: %v", round, err)
		}
	}
	t.Logf("while uid %d held its share of %d: %d lockouts of uid %d and root in 3 rounds of 4 clients", fsFlooder, fsPerCaller, lockouts, fsUser)

	// A second user fills what is left of the non-root connections: the
	// next non-root caller is refused by name, root still gets in.
	fsHoldAll(t, g.Socket, fsNeighbour, fsMaxConns-fsRootReserve-fsPerCaller)
	code, body := fsPing(t, g.Socket, fsUser)
	if want := fmt.Sprintf("uid:%d may not open another connection", fsUser); code != http.StatusServiceUnavailable || !strings.Contains(body, want) || !strings.Contains(body, "kept for root") {
		t.Errorf("uid %d with every non-root connection taken: %d %q, want 503 naming it and the root reserve", fsUser, code, body)
	}
	if r := root.run("version", "--format", "{{.Server.APIVersion}}"); r.code != 0 {
		t.Errorf("root with every non-root connection taken: %v", r)
	}

	// The refusals are on record under the caller that was refused.
	flood.release()
	rec := g.azRecord(t, "a 503 for uid "+strconv.Itoa(fsFlooder), func(rec map[string]any) bool {
		c, _ := rec["caller"].(map[string]any)
		return num(rec["status"]) == http.StatusServiceUnavailable && c != nil && num(c["uid"]) == fsFlooder
	})
	if reason, _ := rec["reason"].(string); !strings.Contains(reason, "limit per caller") || auditPath(rec) != "/_ping" {
		t.Errorf("503 record: reason %q, path %q", reason, auditPath(rec))
	}
	g.azRecord(t, "a 503 for uid "+strconv.Itoa(fsUser), func(rec map[string]any) bool {
		c, _ := rec["caller"].(map[string]any)
		reason, _ := rec["reason"].(string)
		return num(rec["status"]) == http.StatusServiceUnavailable && c != nil && num(c["uid"]) == fsUser && strings.Contains(reason, "kept for root")
	})
}

func TestFairShareSilentConnectionClosedAfterHeaderTimeout(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, fsPolicy,
		"--max-connections-per-caller", "2",
		"--header-timeout", fsHeaderTimeout.String())

	// A connection that never sends a request is closed, and its slot
	// with it: the caller can connect again afterwards.
	silent := func() {
		// Taken before the dial: dockgate's clock starts at its accept,
		// which can come before the dial returns here.
		opened := time.Now()
		c, err := net.Dial("unix", g.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(opened.Add(azTimeout))
		n, err := c.Read(make([]byte, 1))
		if err != io.EOF {
			t.Fatalf("silent connection: read %d bytes, %v; want EOF", n, err)
		}
		if waited := time.Since(opened); waited < fsHeaderTimeout {
			t.Errorf("silent connection closed after %v, before --header-timeout %v", waited, fsHeaderTimeout)
		} else {
			t.Logf("silent connection closed after %v (--header-timeout %v)", waited.Round(time.Millisecond), fsHeaderTimeout)
		}
	}
	silent()
	silent()
	silent() // a third with a share of two: the first two gave theirs back

	// A keep-alive connection idle between requests for longer than the
	// header timeout is not cut, nor is a stream.
	sdk, err := client.NewClientWithOpts(client.WithHost(g.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer sdk.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*azTimeout)
	defer cancel()
	// Ping first, so that the version negotiation is done before the
	// stream takes a connection: two at a time, the share.
	if _, err := sdk.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, errs := sdk.Events(ctx, events.ListOptions{})
	time.Sleep(fsHeaderTimeout + fsHeaderTimeout/2)
	if _, err := sdk.Ping(ctx); err != nil {
		t.Fatalf("keep-alive ping after a pause longer than --header-timeout: %v", err)
	}
	name := unique(t, "fairshare")
	if _, err := sdk.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: map[string]string{azLabel: "fairshare"}}); err != nil {
		t.Fatal(err)
	}
	defer azDirect(t, env).VolumeRemove(context.Background(), name, true)
	for {
		select {
		case m := <-msgs:
			if m.Type == events.VolumeEventType && m.Actor.ID == name {
				return
			}
		case err := <-errs:
			t.Fatalf("events stream idle longer than --header-timeout was cut: %v", err)
		case <-ctx.Done():
			t.Fatal("the volume's event never came through the events stream")
		}
	}
}
