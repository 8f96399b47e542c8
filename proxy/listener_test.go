package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
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
