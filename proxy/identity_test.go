package proxy

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	cid  = "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
	cid2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		name          string
		content       string
		wantPath      string
		wantUnit      string
		wantContainer string
	}{
		{
			name:     "v2 system service",
			content:  "0::/system.slice/jenkins.service\n",
			wantPath: "/system.slice/jenkins.service", wantUnit: "jenkins.service",
		},
		{
			name:     "v2 login session",
			content:  "0::/user.slice/user-1000.slice/session-3.scope\n",
			wantPath: "/user.slice/user-1000.slice/session-3.scope", wantUnit: "session-3.scope",
		},
		{
			name:     "v2 user manager app is the user manager's unit",
			content:  "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1b2c.scope\n",
			wantPath: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1b2c.scope",
			wantUnit: "user@1000.service",
		},
		{
			name:     "user unit named like a system unit does not impersonate it",
			content:  "0::/user.slice/user-1000.slice/user@1000.service/app.slice/jenkins.service\n",
			wantPath: "/user.slice/user-1000.slice/user@1000.service/app.slice/jenkins.service",
			wantUnit: "user@1000.service",
		},
		{
			name:     "delegated subgroup of a service",
			content:  "0::/system.slice/jenkins.service/payload\n",
			wantPath: "/system.slice/jenkins.service/payload", wantUnit: "jenkins.service",
		},
		{
			name:     "delegated service cannot fake a docker scope",
			content:  "0::/system.slice/gitlab-runner.service/docker-" + cid + ".scope\n",
			wantPath: "/system.slice/gitlab-runner.service/docker-" + cid + ".scope", wantUnit: "gitlab-runner.service",
		},
		{
			name:     "rootless docker container is the user's, not this daemon's",
			content:  "0::/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + cid + ".scope\n",
			wantPath: "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + cid + ".scope",
			wantUnit: "user@1000.service",
		},
		{
			name:     "socket unit running ExecStartPre",
			content:  "0::/system.slice/dockgate.socket\n",
			wantPath: "/system.slice/dockgate.socket", wantUnit: "dockgate.socket",
		},
		{
			name:     "init scope",
			content:  "0::/init.scope\n",
			wantPath: "/init.scope", wantUnit: "init.scope",
		},
		{
			name:     "nested slices",
			content:  "0::/system.slice/system-getty.slice/getty@tty1.service\n",
			wantPath: "/system.slice/system-getty.slice/getty@tty1.service", wantUnit: "getty@tty1.service",
		},
		{
			name:     "removed cgroup",
			content:  "0::/system.slice/backup.service (deleted)\n",
			wantPath: "/system.slice/backup.service", wantUnit: "backup.service",
		},
		{
			name:          "docker systemd driver, v2",
			content:       "0::/system.slice/docker-" + cid + ".scope\n",
			wantPath:      "/system.slice/docker-" + cid + ".scope",
			wantContainer: cid,
		},
		{
			name:          "docker systemd driver, subgroup inside the container",
			content:       "0::/system.slice/docker-" + cid + ".scope/init.scope\n",
			wantPath:      "/system.slice/docker-" + cid + ".scope/init.scope",
			wantContainer: cid,
		},
		{
			name:          "docker systemd driver under a custom cgroup parent slice",
			content:       "0::/ci.slice/ci-jobs.slice/docker-" + cid + ".scope\n",
			wantPath:      "/ci.slice/ci-jobs.slice/docker-" + cid + ".scope",
			wantContainer: cid,
		},
		{
			name:          "docker cgroupfs driver, v2",
			content:       "0::/docker/" + cid + "\n",
			wantPath:      "/docker/" + cid,
			wantContainer: cid,
		},
		{
			name:          "docker in docker is the outer container",
			content:       "0::/docker/" + cid + "/docker/" + cid2 + "\n",
			wantPath:      "/docker/" + cid + "/docker/" + cid2,
			wantContainer: cid,
		},
		{
			name: "docker cgroupfs driver, v1",
			content: "12:freezer:/docker/" + cid + "\n" +
				"11:memory:/docker/" + cid + "\n" +
				"10:cpu,cpuacct:/docker/" + cid + "\n" +
				"9:pids:/docker/" + cid + "\n" +
				"1:name=systemd:/docker/" + cid + "\n",
			wantPath:      "/docker/" + cid,
			wantContainer: cid,
		},
		{
			name: "v1 hybrid: name=systemd wins over an empty v2 line",
			content: "11:memory:/system.slice/jenkins.service\n" +
				"4:pids:/system.slice/jenkins.service\n" +
				"1:name=systemd:/system.slice/jenkins.service\n" +
				"0::/\n",
			wantPath: "/system.slice/jenkins.service", wantUnit: "jenkins.service",
		},
		{
			name: "v1 hybrid docker systemd driver",
			content: "5:devices:/system.slice/docker-" + cid + ".scope\n" +
				"1:name=systemd:/system.slice/docker-" + cid + ".scope\n" +
				"0::/system.slice/docker-" + cid + ".scope\n",
			wantPath:      "/system.slice/docker-" + cid + ".scope",
			wantContainer: cid,
		},
		{
			name: "v2 host with a named systemd hierarchy for old containers",
			content: "1:name=systemd:/\n" +
				"0::/system.slice/jenkins.service\n",
			wantPath: "/system.slice/jenkins.service", wantUnit: "jenkins.service",
		},
		{
			name: "v1 hybrid: container not yet moved in the v2 tree is still the container",
			content: "1:name=systemd:/docker/" + cid + "\n" +
				"0::/system.slice/docker.service\n",
			wantPath:      "/docker/" + cid,
			wantContainer: cid,
		},
		{
			name:     "v1 legacy root",
			content:  "1:name=systemd:/\n",
			wantPath: "/",
		},
		{
			name:     "v1 without systemd names nothing",
			content:  "4:memory:/docker/" + cid + "\n3:cpu:/docker/" + cid + "\n",
			wantPath: "",
		},
		{
			name:     "kubepods cgroupfs is not docker",
			content:  "0::/kubepods/burstable/pod6f1e6c1e-0c1a-4c57-9f0e-2d1b7c1a2b3c/" + cid + "\n",
			wantPath: "/kubepods/burstable/pod6f1e6c1e-0c1a-4c57-9f0e-2d1b7c1a2b3c/" + cid,
		},
		{
			name:     "containerd scope is a unit, not a docker container",
			content:  "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-" + cid + ".scope\n",
			wantPath: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-" + cid + ".scope",
			wantUnit: "cri-containerd-" + cid + ".scope",
		},
		{
			name:     "short container ID is not a container",
			content:  "0::/docker/4f1c9a2e8b7d\n",
			wantPath: "/docker/4f1c9a2e8b7d",
		},
		{
			name:     "upper-case hex is not docker's",
			content:  "0::/docker/" + strings.ToUpper(cid) + "\n",
			wantPath: "/docker/" + strings.ToUpper(cid),
		},
		{
			name:     "docker directory deeper than the top is not a container",
			content:  "0::/lxc.payload.c1/docker/" + cid + "\n",
			wantPath: "/lxc.payload.c1/docker/" + cid,
		},
		{
			name:     "root cgroup, or a private cgroup namespace",
			content:  "0::/\n",
			wantPath: "/",
		},
		{
			name:     "only slices",
			content:  "0::/user.slice\n",
			wantPath: "/user.slice",
		},
		{
			name:     "bare suffix is no unit name",
			content:  "0::/system.slice/.service\n",
			wantPath: "/system.slice/.service",
		},
		{
			name:     "no trailing newline",
			content:  "0::/system.slice/cron.service",
			wantPath: "/system.slice/cron.service", wantUnit: "cron.service",
		},
		{
			name:    "two v2 lines are ambiguous",
			content: "0::/system.slice/cron.service\n0::/system.slice/jenkins.service\n",
		},
		{
			name:    "two name=systemd lines are ambiguous",
			content: "1:name=systemd:/docker/" + cid + "\n2:name=systemd:/system.slice/jenkins.service\n",
		},
		{name: "empty", content: ""},
		{name: "garbage", content: "hello world\n\x00\xff:::\n"},
		{name: "relative path", content: "0::system.slice/jenkins.service\n"},
		{name: "no path field", content: "0:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, unit, container := parseCgroup(tt.content)
			if path != tt.wantPath || unit != tt.wantUnit || container != tt.wantContainer {
				t.Errorf("parseCgroup = (%q, %q, %q), want (%q, %q, %q)",
					path, unit, container, tt.wantPath, tt.wantUnit, tt.wantContainer)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name       string
		content    string
		wantUID    uint32
		wantGID    uint32
		wantGroups []uint32
		wantErr    bool
	}{
		{
			name:    "effective ids, not real ones",
			content: "Name:\tsudo\nUid:\t1000\t0\t0\t0\nGid:\t1000\t0\t0\t0\nGroups:\t4 27 1000 \n",
			wantUID: 0, wantGID: 0, wantGroups: []uint32{4, 27, 1000},
		},
		{
			name:    "no supplementary groups",
			content: "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t\n",
			wantUID: 65534, wantGID: 65534,
		},
		{name: "no Uid line", content: "Gid:\t0\t0\t0\t0\n", wantErr: true},
		{name: "only a real uid", content: "Uid:\t0\nGid:\t0\t0\t0\t0\n", wantErr: true},
		{name: "group that is not a number", content: "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\tx\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, gid, groups, err := parseStatus(tt.content)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseStatus = %d %d %v, want an error", uid, gid, groups)
				}
				return
			}
			if err != nil || uid != tt.wantUID || gid != tt.wantGID || !slices.Equal(groups, tt.wantGroups) {
				t.Errorf("parseStatus = %d %d %v %v, want %d %d %v", uid, gid, groups, err, tt.wantUID, tt.wantGID, tt.wantGroups)
			}
		})
	}
}

// connectedPair returns both ends of a connection over a socket from
// ListenUnix.
func connectedPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := ListenUnix(filepath.Join(t.TempDir(), "docker.sock"), 0o600, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

func ourExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestIdentifyOurOwnProcess(t *testing.T) {
	server, client := connectedPair(t)
	wantGroups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	cgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	wantPath, wantUnit, wantContainer := parseCgroup(string(cgroup))

	for _, end := range []struct {
		name string
		conn net.Conn
	}{{"wrapped server end", server}, {"plain client end", client}} {
		t.Run(end.name, func(t *testing.T) {
			c, err := Identify(end.conn)
			if err != nil {
				t.Fatal(err)
			}
			if c.UID != uint32(os.Geteuid()) || c.GID != uint32(os.Getegid()) || c.PID != int32(os.Getpid()) {
				t.Errorf("uid/gid/pid %d/%d/%d, want %d/%d/%d", c.UID, c.GID, c.PID, os.Geteuid(), os.Getegid(), os.Getpid())
			}
			if c.Exe != ourExe(t) {
				t.Errorf("exe %q, want %q", c.Exe, ourExe(t))
			}
			if len(c.GIDs) == 0 || c.GIDs[0] != c.GID {
				t.Errorf("GIDs %v do not start with the primary gid %d", c.GIDs, c.GID)
			}
			for _, g := range wantGroups {
				if !slices.Contains(c.GIDs, uint32(g)) {
					t.Errorf("GIDs %v miss supplementary group %d", c.GIDs, g)
				}
			}
			if c.Cgroup != wantPath || c.Unit != wantUnit || c.Container != wantContainer {
				t.Errorf("cgroup %q unit %q container %q, want %q %q %q", c.Cgroup, c.Unit, c.Container, wantPath, wantUnit, wantContainer)
			}
			if os.Geteuid() == 0 && (c.User != "root" || !slices.Contains(c.Groups, "root")) {
				t.Errorf("user %q groups %v, want root in both", c.User, c.Groups)
			}
		})
	}
}

func TestIdentifyNeedsAUnixSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tcp, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	pipe, pipe2 := net.Pipe()
	defer pipe.Close()
	defer pipe2.Close()

	for _, tt := range []struct {
		name string
		conn net.Conn
	}{{"TCP", tcp}, {"in-memory pipe", pipe}} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Identify(tt.conn)
			if err == nil || !strings.Contains(err.Error(), "needs a Unix socket") {
				t.Errorf("Identify = %+v, %v; want an error saying it needs a Unix socket", c, err)
			}
		})
	}
}

func TestIdentifyPID(t *testing.T) {
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	exited := exec.Command("/bin/true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		uid, gid   uint32
		pid        int32
		wantGIDs   []uint32 // exactly; nil to skip
		wantProc   bool     // exe and cgroup read from /proc
		wantUser   string   // "-" to skip
		wantGroups []string // exactly; nil to skip
	}{
		{"our own process reads /proc", uid, gid, int32(os.Getpid()), nil, true, "-", nil},
		{"pid reused by another uid grants no groups, unit or exe", 54321, gid, int32(os.Getpid()), []uint32{gid}, false, "", nil},
		{"pid reused by another gid grants no groups, unit or exe", uid, 54321, int32(os.Getpid()), []uint32{54321}, false, "-", []string{}},
		{"exited peer keeps only the connection's ids", uid, gid, int32(exited.Process.Pid), []uint32{gid}, false, "-", nil},
		{"peer in a pid namespace we cannot see", uid, gid, 0, []uint32{gid}, false, "-", nil},
		{"uid and gid with no names", 54321, 54321, 0, []uint32{54321}, false, "", []string{}},
		{"nobody by name", 65534, 65534, 0, []uint32{65534}, false, "nobody", []string{"nogroup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := IdentifyPID(tt.uid, tt.gid, tt.pid)
			if c.UID != tt.uid || c.GID != tt.gid || c.PID != tt.pid {
				t.Errorf("uid/gid/pid %d/%d/%d, want %d/%d/%d", c.UID, c.GID, c.PID, tt.uid, tt.gid, tt.pid)
			}
			if tt.wantGIDs != nil && !slices.Equal(c.GIDs, tt.wantGIDs) {
				t.Errorf("GIDs %v, want %v", c.GIDs, tt.wantGIDs)
			}
			if gotProc := c.Exe != "" || c.Cgroup != ""; gotProc != tt.wantProc {
				t.Errorf("exe %q cgroup %q; want /proc read: %v", c.Exe, c.Cgroup, tt.wantProc)
			}
			if tt.wantUser != "-" && c.User != tt.wantUser {
				t.Errorf("user %q, want %q", c.User, tt.wantUser)
			}
			if tt.wantGroups != nil && !slices.Equal(c.Groups, tt.wantGroups) && !(len(c.Groups) == 0 && len(tt.wantGroups) == 0) {
				t.Errorf("groups %v, want %v", c.Groups, tt.wantGroups)
			}
		})
	}
}

const (
	helperSockEnv = "DOCKGATE_HELPER_SOCK"
	helperExitEnv = "DOCKGATE_HELPER_EXIT" // hang up and exit right after connecting
)

// TestHelperDial is not a test: TestIdentifyOtherUser runs the test binary
// as another user with only this test selected, and it connects to the
// socket named in the environment and holds the connection until the
// parent closes it (or exits at once, to play a peer that is gone).
func TestHelperDial(t *testing.T) {
	sock := os.Getenv(helperSockEnv)
	if sock == "" {
		t.Skip("child process of TestIdentifyOtherUser")
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if os.Getenv(helperExitEnv) != "" {
		return
	}
	io.Copy(io.Discard, c)
}

func TestIdentifyOtherUser(t *testing.T) {
	needRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	// t.TempDir and go test's build directory are 0700: the other user
	// needs its own copy of the binary in a directory it can enter.
	dir, err := os.MkdirTemp("", "dockgate-identity-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "proxy.test")
	copyFile(t, ourExe(t), bin, 0o755)

	tests := []struct {
		name       string
		args       []string
		wantUID    uint32
		wantUser   string
		wantGIDs   []uint32
		wantGroups []string
		exitFirst  bool // the helper is gone before Identify runs
		wantNoExe  bool
	}{
		{
			name:     "nobody with no supplementary groups",
			args:     []string{"--reuid=65534", "--regid=65534", "--clear-groups"},
			wantUID:  65534,
			wantUser: "nobody", wantGIDs: []uint32{65534}, wantGroups: []string{"nogroup"},
		},
		{
			name:     "supplementary groups follow the primary one",
			args:     []string{"--reuid=65534", "--regid=65534", "--groups=54321,65534,100"},
			wantUID:  65534,
			wantUser: "nobody", wantGIDs: []uint32{65534, 100, 54321}, wantGroups: []string{"nogroup", "users"},
		},
		{
			name:     "effective ids are the ones that count",
			args:     []string{"--euid=65534", "--egid=65534", "--clear-groups"},
			wantUID:  65534,
			wantUser: "nobody", wantGIDs: []uint32{65534}, wantGroups: []string{"nogroup"},
		},
		{
			// Its pid may belong to another process by now: only what the
			// kernel kept with the connection counts.
			name:     "caller that exited before it was identified",
			args:     []string{"--reuid=65534", "--regid=65534", "--groups=100"},
			wantUID:  65534,
			wantUser: "nobody", wantGIDs: []uint32{65534}, wantGroups: []string{"nogroup"},
			exitFirst: true, wantNoExe: true,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(dir, "s"+string(rune('0'+i))+".sock")
			ul, err := ListenUnix(sock, 0o660, "nogroup")
			if err != nil {
				t.Fatal(err)
			}
			defer ul.Close()
			ul.(*net.UnixListener).SetDeadline(time.Now().Add(30 * time.Second))

			args := append(append([]string{}, tt.args...), bin, "-test.run=^TestHelperDial$")
			cmd := exec.Command(setpriv, args...)
			// GORACE: the race runtime otherwise sleeps a second at exit.
			cmd.Env = []string{helperSockEnv + "=" + sock, "HOME=" + dir, "PATH=/usr/bin:/bin", "GORACE=atexit_sleep_ms=0"}
			if tt.exitFirst {
				cmd.Env = append(cmd.Env, helperExitEnv+"=1")
			}
			cmd.Dir = dir
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			conn, err := ul.Accept()
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper did not connect: %v\n%s", err, out.String())
			}
			var waitErr error
			if tt.exitFirst {
				waitErr = cmd.Wait()
			}
			c, idErr := Identify(conn)
			conn.Close()
			if !tt.exitFirst {
				waitErr = cmd.Wait()
			}
			if waitErr != nil {
				t.Errorf("helper: %v\n%s", waitErr, out.String())
			}
			if idErr != nil {
				t.Fatal(idErr)
			}
			if c.UID != tt.wantUID || c.GID != tt.wantGIDs[0] || c.PID != int32(cmd.Process.Pid) {
				t.Errorf("uid/gid/pid %d/%d/%d, want %d/%d/%d", c.UID, c.GID, c.PID, tt.wantUID, tt.wantGIDs[0], cmd.Process.Pid)
			}
			if c.User != tt.wantUser || !slices.Equal(c.GIDs, tt.wantGIDs) || !slices.Equal(c.Groups, tt.wantGroups) {
				t.Errorf("user %q GIDs %v groups %v, want %q %v %v", c.User, c.GIDs, c.Groups, tt.wantUser, tt.wantGIDs, tt.wantGroups)
			}
			wantExe := bin
			if tt.wantNoExe {
				wantExe = ""
			}
			if c.Exe != wantExe {
				t.Errorf("exe %q, want %q", c.Exe, wantExe)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
