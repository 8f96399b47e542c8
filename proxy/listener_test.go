package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// needRoot skips tests that chown to other groups or run as other users.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// setUmask sets the process umask for one test and restores it after.
func setUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func statSocket(t *testing.T, path string) (os.FileMode, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("stat socket: %v", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s is %v, want a socket", path, fi.Mode().Type())
	}
	return fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid
}

func TestListenUnixSetsExactModeAndGroup(t *testing.T) {
	needRoot(t)
	// A permissive umask must not leak into the socket's mode.
	setUmask(t, 0)
	tests := []struct {
		name    string
		mode    os.FileMode
		group   string
		wantGID uint32
	}{
		{"0660 for a group named nogroup", 0o660, "nogroup", 65534},
		{"0666 for a numeric gid", 0o666, "65534", 65534},
		{"0640 for a gid with no name", 0o640, "54321", 54321},
		{"0600 keeps the process group", 0o600, "", uint32(os.Getgid())},
		{"0000 for nobody but root", 0, "nogroup", 65534},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docker.sock")
			l, err := ListenUnix(path, tt.mode, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			mode, gid := statSocket(t, path)
			if mode != tt.mode || gid != tt.wantGID {
				t.Errorf("socket mode %#o gid %d, want %#o gid %d", mode, gid, tt.mode, tt.wantGID)
			}
		})
	}
}

func TestListenUnixIsNeverMoreOpenThanMode(t *testing.T) {
	needRoot(t)
	// With umask 0 a bind-then-chmod implementation would create the
	// socket 0777 for a moment; the watcher would see it.
	setUmask(t, 0)
	tests := []struct {
		name  string
		mode  os.FileMode
		group string
		gid   uint32
	}{
		{"owner only", 0o600, "", 0},
		{"group bits only once the group is set", 0o660, "nogroup", 65534},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docker.sock")
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var bad []string
			wg.Add(1)
			go func() {
				defer wg.Done()
				// stat(2) reads an inode's gid before its mode without a
				// lock, so one stat racing chown+chmod can pair the old gid
				// with the new mode. Group bits on the wrong group count
				// only when two stats of the same inode in a row see them.
				var lastBadIno uint64
				for {
					select {
					case <-stop:
						return
					default:
					}
					fi, err := os.Lstat(path)
					if err != nil {
						continue
					}
					st := fi.Sys().(*syscall.Stat_t)
					perm, gid := fi.Mode().Perm(), st.Gid
					if perm&^tt.mode != 0 {
						bad = append(bad, fmt.Sprintf("%v gid %d", fi.Mode(), gid))
					}
					if perm&0o070 != 0 && gid != tt.gid {
						if lastBadIno == st.Ino {
							bad = append(bad, fmt.Sprintf("%v gid %d", fi.Mode(), gid))
						}
						lastBadIno = st.Ino
					} else {
						lastBadIno = 0
					}
				}
			}()
			for range 500 {
				l, err := ListenUnix(path, tt.mode, tt.group)
				if err != nil {
					close(stop)
					wg.Wait()
					t.Fatal(err)
				}
				l.Close()
			}
			close(stop)
			wg.Wait()
			if len(bad) > 0 {
				t.Errorf("socket seen more open than %#o: %v", tt.mode, bad)
			}
		})
	}
}

func TestListenUnixRestoresUmask(t *testing.T) {
	setUmask(t, 0o027)
	l, err := ListenUnix(filepath.Join(t.TempDir(), "docker.sock"), 0o600, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := syscall.Umask(0o027); got != 0o027 {
		t.Errorf("umask after ListenUnix is %#o, want %#o", got, 0o027)
	}
}

func TestListenUnixCreatesParentDirectory(t *testing.T) {
	setUmask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "run", "dockgate")
	l, err := ListenUnix(filepath.Join(dir, "docker.sock"), 0o660, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("parent is %v, want a 0755 directory", fi.Mode())
	}
}

func TestListenUnixReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docker.sock")
	// A server that died without cleaning up leaves its socket file.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()

	l, err := ListenUnix(path, 0o600, "")
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer l.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial new socket: %v", err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("accept on new socket: %v", err)
	}
}

func TestListenUnixRefusesWhatItMustNotReplace(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{
			name: "socket another process serves",
			prepare: func(t *testing.T, path string) {
				l, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
			},
			wantErr: "another process is serving",
		},
		{
			name: "regular file",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a socket",
		},
		{
			name: "directory",
			prepare: func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a socket",
		},
		{
			name: "symlink to a stale socket",
			prepare: func(t *testing.T, path string) {
				target := path + ".real"
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: target, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				l.SetUnlinkOnClose(false)
				l.Close()
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a socket",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docker.sock")
			tt.prepare(t, path)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ListenUnix(path, 0o660, "")
			if err == nil {
				l.Close()
				t.Fatal("ListenUnix succeeded, want a refusal")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q, want it to name %s and say %q", err, path, tt.wantErr)
			}
			after, err := os.Lstat(path)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("%s was touched: %v", path, err)
			}
		})
	}
}

func TestListenUnixRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		mode    os.FileMode
		group   string
		wantErr string
	}{
		{"unknown group", "docker.sock", 0o660, "no-such-group-dockgate", "no-such-group-dockgate"},
		{"setuid bit in mode", "docker.sock", os.ModeSetuid | 0o660, "", "bits other than permissions"},
		{"path too long for sockaddr_un", strings.Repeat("x", 120) + ".sock", 0o660, "", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.path)
			l, err := ListenUnix(path, tt.mode, tt.group)
			if err == nil {
				l.Close()
				t.Fatal("ListenUnix succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to say %q", err, tt.wantErr)
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file left behind after a refusal: %v", err)
			}
		})
	}
}

func TestListenUnixCloseRemovesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docker.sock")
	l, err := ListenUnix(path, 0o660, "")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file still there after Close: %v", err)
	}
}

func TestParseListenURL(t *testing.T) {
	tests := []struct {
		in          string
		wantNetwork string
		wantAddr    string
		wantErr     string // substring; the bad value is always named
	}{
		{"unix:///run/dockgate/docker.sock", "unix", "/run/dockgate/docker.sock", ""},
		{"unix:///run/dockgate/../dockgate/docker.sock", "unix", "/run/dockgate/docker.sock", ""},
		{"tcp://127.0.0.1:2376", "tcp", "127.0.0.1:2376", ""},
		{"tcp://[::1]:2376", "tcp", "[::1]:2376", ""},
		{"tcp://:2376", "tcp", ":2376", ""},
		{"tcp://localhost:2376/", "tcp", "localhost:2376", ""},
		{"unix://run/docker.sock", "", "", "not absolute"},
		{"unix://", "", "", "no socket path"},
		{"unix:///" + strings.Repeat("x", 120), "", "", "longer than"},
		{"unix:///run/a\x00b", "", "", "NUL"},
		{"tcp://127.0.0.1", "", "", "no port"},
		{"tcp://127.0.0.1:http", "", "", "invalid port"},
		{"tcp://127.0.0.1:70000", "", "", "not a number"},
		{"tcp://127.0.0.1:2376/v1.41", "", "", "nothing else"},
		{"tcp://user@127.0.0.1:2376", "", "", "nothing else"},
		{"tcp://127.0.0.1:2376?x=1", "", "", "nothing else"},
		{"/run/dockgate/docker.sock", "", "", "want unix:///path or tcp://host:port"},
		{"http://127.0.0.1:2376", "", "", "want unix:///path or tcp://host:port"},
		{"fd://", "", "", "want unix:///path or tcp://host:port"},
		{"", "", "", "want unix:///path"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			network, addr, err := ParseListenURL(tt.in)
			if tt.wantNetwork != "" {
				if err != nil || network != tt.wantNetwork || addr != tt.wantAddr {
					t.Errorf("got %q %q %v, want %q %q", network, addr, err, tt.wantNetwork, tt.wantAddr)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q %q, want an error", network, addr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
				t.Errorf("error %q, want it to name %q and say %q", err, tt.in, tt.wantErr)
			}
		})
	}
}

// limitHarness serves a LimitListener: admitted connections arrive on
// accepted, refused ones are answered "busy" by onReject.
type limitHarness struct {
	path     string
	l        net.Listener
	accepted chan net.Conn
	rejected chan struct{}
	done     chan struct{}
}

func newLimitHarness(t *testing.T, max int, onReject func(net.Conn)) *limitHarness {
	t.Helper()
	h := &limitHarness{
		path:     filepath.Join(t.TempDir(), "docker.sock"),
		accepted: make(chan net.Conn, 16),
		rejected: make(chan struct{}, 16),
		done:     make(chan struct{}),
	}
	inner, err := ListenUnix(h.path, 0o600, "")
	if err != nil {
		t.Fatal(err)
	}
	if onReject == nil {
		onReject = func(c net.Conn) {
			io.WriteString(c, "busy\n")
			h.rejected <- struct{}{}
		}
	}
	h.l = LimitListener(inner, max, onReject)
	go func() {
		defer close(h.done)
		for {
			c, err := h.l.Accept()
			if err != nil {
				return
			}
			h.accepted <- c
		}
	}()
	t.Cleanup(func() {
		h.l.Close()
		<-h.done
		close(h.accepted)
		for c := range h.accepted {
			c.Close()
		}
	})
	return h
}

func (h *limitHarness) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", h.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (h *limitHarness) admitted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-h.accepted:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("connection not admitted")
		return nil
	}
}

// refused checks that c got onReject's answer and was then closed.
func refused(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "busy\n" {
		t.Fatalf("refused connection read %q, %v; want \"busy\\n\" then EOF", b, err)
	}
}

func TestLimitListenerRefusesAboveMaxAndAdmitsAfterClose(t *testing.T) {
	h := newLimitHarness(t, 2, nil)
	h.dial(t)
	first := h.admitted(t)
	h.dial(t)
	h.admitted(t)

	refused(t, h.dial(t))

	first.Close()
	h.dial(t)
	h.admitted(t)
	refused(t, h.dial(t))
}

func TestLimitListenerDoubleCloseFreesOneSlot(t *testing.T) {
	h := newLimitHarness(t, 2, nil)
	h.dial(t)
	first := h.admitted(t)
	h.dial(t)
	h.admitted(t)
	first.Close()
	first.Close()

	h.dial(t)
	h.admitted(t)
	refused(t, h.dial(t))
}

func TestLimitListenerWithoutOnRejectClosesRefused(t *testing.T) {
	h := newLimitHarness(t, 1, func(net.Conn) {})
	h.dial(t)
	h.admitted(t)
	c := h.dial(t)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Errorf("refused connection read %q, %v; want EOF", b, err)
	}
}

func TestLimitListenerBoundsASilentRefusedClient(t *testing.T) {
	// onReject that waits for a request line: a client that never sends
	// one must not hold it (or Close) longer than the refusal deadline.
	var (
		mu     sync.Mutex
		readOK = true
	)
	returned := make(chan struct{})
	h := newLimitHarness(t, 1, func(c net.Conn) {
		_, err := bufio.NewReader(c).ReadString('\n')
		mu.Lock()
		readOK = err == nil
		mu.Unlock()
		close(returned)
	})
	h.dial(t)
	h.admitted(t)
	h.dial(t) // says nothing

	select {
	case <-returned:
	case <-time.After(rejectDeadline + 5*time.Second):
		t.Fatal("onReject still blocked on a silent client")
	}
	mu.Lock()
	defer mu.Unlock()
	if readOK {
		t.Error("onReject read a line from a client that sent none")
	}
	start := time.Now()
	h.l.Close()
	if d := time.Since(start); d > rejectDeadline+time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestLimitListenerKeepsUnixConnReachable(t *testing.T) {
	h := newLimitHarness(t, 1, nil)
	client := h.dial(t)
	server := h.admitted(t)

	if _, ok := UnwrapConn(server).(*net.UnixConn); !ok {
		t.Fatalf("UnwrapConn gave %T, want *net.UnixConn", UnwrapConn(server))
	}
	// Half-close: the client sees EOF and can still answer.
	cw, ok := server.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T has no CloseWrite", server)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	client.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(client); err != nil || len(b) != 0 {
		t.Fatalf("client read %q, %v; want EOF", b, err)
	}
	if _, err := io.WriteString(client, "still here"); err != nil {
		t.Fatal(err)
	}
	client.Close()
	server.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(server); err != nil || string(b) != "still here" {
		t.Errorf("server read %q, %v after half-close", b, err)
	}
}

func TestLimitListenerBelowOneIsNoLimit(t *testing.T) {
	inner, err := ListenUnix(filepath.Join(t.TempDir(), "docker.sock"), 0o600, "")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	if l := LimitListener(inner, 0, nil); l != inner {
		t.Errorf("LimitListener(l, 0) wrapped l as %T", l)
	}
}
