package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a long-running child the bed started: dockerd, the registry or
// dockgate. It runs in its own process group so that a ^C meant for `go test`
// reaches the bed's teardown first, not the daemons.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // the result of Wait; read only after done is closed
}

func startProcess(logPath string, env []string, name string, args ...string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &process{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// quitDumpWait is how long a process that did not stop gets to write the
// goroutine dump SIGQUIT asks of it (every daemon of the bed is a Go
// program) before it is killed.
const quitDumpWait = 3 * time.Second

// stop sends sig, waits up to grace for the exit, then kills. It returns the
// exit error (nil for a clean exit) or a note that SIGKILL was needed. A
// process that did not exit gets SIGQUIT first, so that its log, which
// the test prints, says where each of its goroutines waited.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(quitDumpWait):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return fmt.Errorf("%s did not exit %s after %v: killed (SIGQUIT first: the goroutines it waited in are at the end of its log)", filepath.Base(p.cmd.Path), sig, grace)
}

// baseEnv is the environment for the bed's daemons and clients: the caller's
// without anything that would point a docker client or daemon elsewhere.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DOCKER_") || k == "GOFLAGS" || strings.HasPrefix(k, "GORACE") || k == "GOTRACEBACK" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// socketPath returns the file of a unix:// host.
func socketPath(host string) (string, error) {
	p, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return "", fmt.Errorf("not a unix:// host: %q", host)
	}
	return p, nil
}

// unixClient is an HTTP client that dials one Unix socket whatever the URL
// says; requests use http://docker/... as dockerd's own clients do.
func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
}

// ping sends one GET /_ping on a fresh connection and wants 200 "OK".
func ping(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	c := unixClient(socket)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		return fmt.Errorf("GET /_ping: %s %q", resp.Status, body)
	}
	return nil
}

// waitReady polls check until it succeeds, the process dies, ctx ends or
// timeout passes. The error names the last failure and the log's tail.
func waitReady(ctx context.Context, p *process, logPath string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before it was ready (%v): %s", p.err, tail(logPath, 2000))
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v (last: %v): %s", timeout, last, tail(logPath, 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	_, _ = f.ReadAt(b, off)
	return "\n" + string(b)
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps, s.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or below dir, deepest first, so that
// the dir can be removed even after dockerd died without cleaning up.
func unmountUnder(dir string) error {
	var errs []error
	for range 3 { // a lazy unmount can reveal a mount stacked below it
		mps, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("umount %s: %w", mp, err))
			}
		}
	}
	if mps, _ := mountsUnder(dir); len(mps) > 0 {
		errs = append(errs, fmt.Errorf("still mounted under %s: %v", dir, mps))
	}
	return errors.Join(errs...)
}

// killProcessesMentioning SIGKILLs every process whose command line names a
// path under dir (containerd and its shims, started with our exec-root), and
// returns how many it found.
func killProcessesMentioning(dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(dir+"/")) || bytes.Contains(cmdline, []byte(dir+"\x00")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// killCgroups SIGKILLs every process in the cgroups of the given container
// IDs (cgroup v1 and v2, cgroupfs driver): the containers that outlived a
// dockerd that had to be killed.
func killCgroups(ids []string) int {
	n := 0
	for _, id := range ids {
		var files []string
		for _, pattern := range []string{
			"/sys/fs/cgroup/*/docker/" + id + "/cgroup.procs",
			"/sys/fs/cgroup/docker/" + id + "/cgroup.procs",
			"/sys/fs/cgroup/*/system.slice/docker-" + id + ".scope/cgroup.procs",
			"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cgroup.procs",
		} {
			m, _ := filepath.Glob(pattern)
			files = append(files, m...)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(line); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					n++
				}
			}
		}
	}
	return n
}

// FDCount is the number of open file descriptors of a process.
func FDCount(pid int) (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(entries), nil
}

// ThreadCount is the number of OS threads of a process.
func ThreadCount(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Threads line")
}
