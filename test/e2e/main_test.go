// Package e2e drives real docker clients through dockgate and compares what
// they see with the same commands run directly against dockerd.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/testbed"
)

func TestMain(m *testing.M) {
	// A copy of this binary run as a client user (TestClientTestcontainersGo).
	clientflows.RunTestcontainersIfAsked()
	// A copy run as a BuildKit client of its own (TestBuildKitGoClientAsAProcess).
	clientflows.RunBuildKitIfAsked()
	os.Exit(testbed.Main(m, testbed.Options{LeakCheck: true}))
}

const (
	image       = testbed.DefaultImage
	cmdTimeout  = 60 * time.Second
	auditWait   = 5 * time.Second
	newCLIPath  = "/usr/local/bin/docker"
	oldCLIPath  = "/usr/bin/docker"
	sideDirect  = "direct"
	sideProxied = "dockgate"
)

// newCLI is the current docker CLI: /usr/local/bin/docker, else docker in PATH.
func newCLI(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(newCLIPath); err == nil {
		return newCLIPath
	}
	return testbed.RequireBinary(t, "docker")
}

// side is one way of reaching dockerd: directly, or through dockgate.
type side struct {
	name    string // sideDirect or sideProxied
	host    string
	proxied bool // through dockgate (false too when DOCKGATE_E2E_DIRECT=1)
}

func sides(env *testbed.Env) []side {
	return []side{
		{name: sideDirect, host: env.DirectHost()},
		{name: sideProxied, host: env.ProxyHost, proxied: env.Dockgate != nil},
	}
}

// result is one finished client command.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
	pid    int
	err    error // the command could not run or timed out
}

func (r result) String() string {
	return fmt.Sprintf("docker %s: exit %d\nstdout: %q\nstderr: %q", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// session runs one flow's client commands on one side and keeps their
// transcript for the comparison with the other side.
type session struct {
	t     *testing.T // this side's subtest
	top   *testing.T // the test, whose name names its resources
	env   *testbed.Env
	side  side
	cli   string
	home  string
	extra []string // environment, e.g. DOCKER_BUILDKIT=0
	start time.Time

	mu         sync.Mutex
	transcript []result
	audits     []auditWant // checked after the flow on the proxied side
	cleanups   []func()
}

// flow is a sequence of client actions whose outcome must be the same
// directly and through dockgate; it asserts its promises itself.
type flow func(s *session)

// compare runs f directly, then through dockgate, checks the audit records
// of the proxied run, and compares the two transcripts with norm (shape when
// nil): same commands, same exit codes, same output.
func compare(t *testing.T, cli string, norm func(string) string, f flow) {
	t.Helper()
	env := testbed.Shared(t)
	if norm == nil {
		norm = shape
	}
	var runs [2]*session
	for i, sd := range sides(env) {
		s := newSession(t, env, sd, cli)
		t.Run(sd.name, func(t *testing.T) {
			s.t = t
			defer s.cleanup()
			f(s)
			if s.side.proxied && !t.Failed() {
				s.checkAudit()
			}
		})
		runs[i] = s
	}
	if t.Failed() {
		return
	}
	d, p := runs[0].transcript, runs[1].transcript
	if len(d) != len(p) {
		t.Fatalf("direct ran %d commands, through dockgate %d", len(d), len(p))
	}
	for i := range d {
		a, b := d[i], p[i]
		if a.code != b.code {
			t.Errorf("exit code differs: direct %v\nthrough dockgate %v", a, b)
			continue
		}
		if norm(a.stdout) != norm(b.stdout) {
			t.Errorf("stdout of `docker %s` differs:\ndirect:          %q\nthrough dockgate: %q", strings.Join(a.args, " "), norm(a.stdout), norm(b.stdout))
		}
		if norm(a.stderr) != norm(b.stderr) {
			t.Errorf("stderr of `docker %s` differs:\ndirect:          %q\nthrough dockgate: %q", strings.Join(a.args, " "), norm(a.stderr), norm(b.stderr))
		}
	}
}

func newSession(t *testing.T, env *testbed.Env, sd side, cli string) *session {
	home := t.TempDir()
	return &session{t: t, top: t, env: env, side: sd, cli: cli, home: home, start: time.Now()}
}

// environ is a clean client environment: no user config, no DOCKER_* of the
// caller, HOME in a temp dir.
func (s *session) environ() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.home,
		"DOCKER_HOST=" + s.side.host,
		"DOCKER_CLI_HINTS=false",
		"LANG=C.UTF-8",
	}
	return append(env, s.extra...)
}

// defer_ registers a cleanup that runs when this side's flow ends, so that
// the other side can reuse the same names.
func (s *session) defer_(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *session) cleanup() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

// command builds the exec.Cmd of a client command on this side.
func (s *session) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.cli, args...)
	cmd.Env = s.environ()
	cmd.Dir = s.home
	cmd.WaitDelay = 5 * time.Second
	// A client must not outlive a test binary that panicked: it would keep
	// a stream open through dockgate until the bed is torn down.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// run runs a client command to its end (or cmdTimeout) and records it in
// the transcript.
func (s *session) run(stdin io.Reader, args ...string) result {
	return s.runTimeout(cmdTimeout, stdin, args...)
}

func (s *session) runTimeout(timeout time.Duration, stdin io.Reader, args ...string) result {
	s.t.Helper()
	r := s.exec(timeout, stdin, args...)
	s.record(r, true)
	return r
}

// look runs a command whose raw output is not compared (the flow notes what
// is comparable about it), but whose audit records are still expected.
func (s *session) look(args ...string) result {
	s.t.Helper()
	r := s.exec(cmdTimeout, nil, args...)
	s.record(r, false)
	return r
}

// maskLast replaces the outputs of the last transcript entry with what is
// comparable about them (a temp path differs between the sides).
func (s *session) maskLast(stdout, stderr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := &s.transcript[len(s.transcript)-1]
	last.stdout, last.stderr = stdout, stderr
}

// note adds a value derived from this side's outputs to the transcript.
func (s *session) note(label, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcript = append(s.transcript, result{args: []string{"(note)", label}, stdout: value})
}

// docker is run without stdin.
func (s *session) docker(args ...string) result {
	s.t.Helper()
	return s.run(nil, args...)
}

// quiet runs a setup or cleanup command that is not compared.
func (s *session) quiet(args ...string) result {
	s.t.Helper()
	return s.exec(cmdTimeout, nil, args...)
}

// must is docker, failing the test unless the command exits 0.
func (s *session) must(args ...string) result {
	s.t.Helper()
	r := s.docker(args...)
	if r.code != 0 {
		s.t.Fatalf("%s: %v", s.side.name, r)
	}
	return r
}

func (s *session) exec(timeout time.Duration, stdin io.Reader, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Start()
	r := result{args: args}
	if err == nil {
		r.pid = cmd.Process.Pid
		err = cmd.Wait()
	}
	r.stdout, r.stderr, r.code = stdout.String(), stderr.String(), exitCode(err)
	if ctx.Err() != nil {
		r.err = fmt.Errorf("timed out after %v", timeout)
		s.t.Errorf("%s: `docker %s` %v\n%v", s.side.name, strings.Join(args, " "), r.err, r)
	} else if r.code < 0 {
		r.err = err
		s.t.Errorf("%s: `docker %s`: %v", s.side.name, strings.Join(args, " "), err)
	}
	return r
}

// record adds r to the transcript (when compared) and, through dockgate,
// expects at least one audit record from r's process.
func (s *session) record(r result, compared bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if compared {
		s.transcript = append(s.transcript, r)
	}
	if s.side.proxied && r.pid != 0 {
		s.audits = append(s.audits, auditWant{pid: r.pid, what: "any request of `docker " + strings.Join(r.args, " ") + "`"})
	}
}

// bg is a client command left running: logs -f, events, attach.
type bg struct {
	s      *session
	cmd    *exec.Cmd
	cancel context.CancelFunc
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
	args   []string
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// background starts a client command without waiting for it.
func (s *session) background(stdin io.Reader, args ...string) *bg {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	b := &bg{s: s, cancel: cancel, done: make(chan struct{}), args: args}
	b.cmd = s.command(ctx, args...)
	b.cmd.Stdin = stdin
	b.cmd.Stdout = lockedWriter{&b.mu, &b.stdout}
	b.cmd.Stderr = lockedWriter{&b.mu, &b.stderr}
	if err := b.cmd.Start(); err != nil {
		cancel()
		s.t.Fatalf("start docker %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	s.defer_(func() { b.kill() })
	return b
}

func (b *bg) output() (string, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stdout.String(), b.stderr.String()
}

// waitFor waits until the command's stdout contains want.
func (b *bg) waitFor(want string, timeout time.Duration) bool {
	return b.waitUntil(func(out, _ string) bool { return strings.Contains(out, want) }, timeout)
}

// waitForStderr waits until the command's stderr contains want.
func (b *bg) waitForStderr(want string, timeout time.Duration) bool {
	return b.waitUntil(func(_, errOut string) bool { return strings.Contains(errOut, want) }, timeout)
}

func (b *bg) waitUntil(ok func(stdout, stderr string) bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok(b.output()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-b.done:
			return ok(b.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for the command to end by itself and records it.
func (b *bg) wait(timeout time.Duration) (result, bool) {
	select {
	case <-b.done:
	case <-time.After(timeout):
		return b.result(), false
	}
	r := b.result()
	b.s.record(r, true)
	return r, true
}

func (b *bg) result() result {
	out, errOut := b.output()
	r := result{args: b.args, stdout: out, stderr: errOut, code: -1, pid: b.cmd.Process.Pid}
	select {
	case <-b.done:
		r.code = exitCode(b.err)
	default:
	}
	return r
}

// backgroundStdin starts a client command whose stdin is a pipe the flow
// writes to and closes when it wants the client to see EOF.
func (s *session) backgroundStdin(args ...string) (*bg, *os.File) {
	s.t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		s.t.Fatal(err)
	}
	b := s.background(r, args...)
	r.Close() // the child has its own copy
	s.defer_(func() { w.Close() })
	return b, w
}

// kill ends the client abruptly, as a person closing the terminal would.
func (b *bg) kill() {
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
	b.cancel()
}

// name names a resource of this test, the same on both sides.
func (s *session) name(what string) string { return unique(s.top, what) }

// unique names a resource for one test.
func unique(t *testing.T, what string) string {
	name := strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"))
	name = strings.Trim(strings.TrimPrefix(name, "test"), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "e2e-" + strings.Trim(name, "-") + "-" + what
}

// rmContainer removes a container on this side when the flow ends.
func (s *session) rmContainer(name string) {
	s.defer_(func() { s.exec(cmdTimeout, nil, "rm", "-f", name) })
}

var (
	longID  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	shortID = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	// detachedWaitCancelled is what the 20.10 CLI's `run -d` may log as
	// it exits: its wait for the container runs on a goroutine that the
	// CLI cancels on return, and the log line races with the process's
	// exit (directly or through dockgate, whichever wins).
	detachedWaitCancelled = regexp.MustCompile(`(?m)^time="[^"]*" level=error msg="error waiting for container: context canceled"\n`)
)

// shape masks what legitimately differs between two runs of one command:
// IDs and digests, and the CLI's own exit race above.
func shape(s string) string {
	s = detachedWaitCancelled.ReplaceAllString(s, "")
	s = longID.ReplaceAllString(s, "<ID>")
	s = shortID.ReplaceAllString(s, "<id>")
	return strings.ReplaceAll(s, "\r\n", "\n")
}

// lines splits output into trimmed non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// auditWant is an audit record a proxied flow must have produced.
type auditWant struct {
	pid    int    // the client process (caller.pid); 0: any
	method string // "" any
	path   string // glob on the path without /vX.Y and query ("*" one segment, "**" any); "" any
	status int    // 0 any
	stream bool   // a "phase":"start" record too (hijack, long stream)
	hijack bool   // the finish record says "hijacked":true
	in     int64  // bytes_in at least
	out    int64  // bytes_out at least
	what   string // for the failure message
}

// expect adds audit records that r's process must have caused through
// dockgate: "POST /containers/*/start 204", "POST /containers/*/attach 101
// hijacked" (with a start record and hijacked:true), "GET /containers/*/logs
// 200 stream" (with a start record).
func (s *session) expect(r result, specs ...string) {
	s.t.Helper()
	if !s.side.proxied {
		return
	}
	for _, spec := range specs {
		f := strings.Fields(spec)
		if len(f) < 2 {
			s.t.Fatalf("bad audit spec %q", spec)
		}
		w := auditWant{pid: r.pid, method: f[0], path: f[1], what: spec}
		for _, x := range f[2:] {
			switch x {
			case "stream":
				w.stream = true
			case "hijacked":
				w.stream, w.hijack = true, true
			default:
				if v, ok := strings.CutPrefix(x, "in>="); ok {
					w.in, _ = strconv.ParseInt(v, 10, 64)
					continue
				}
				if v, ok := strings.CutPrefix(x, "out>="); ok {
					w.out, _ = strconv.ParseInt(v, 10, 64)
					continue
				}
				n, err := strconv.Atoi(x)
				if err != nil {
					s.t.Fatalf("bad audit spec %q", spec)
				}
				w.status = n
			}
		}
		s.mu.Lock()
		s.audits = append(s.audits, w)
		s.mu.Unlock()
	}
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+/`)

// auditPath is the record's path without the API version prefix and query.
func auditPath(rec map[string]any) string {
	p, _ := rec["path"].(string)
	p, _, _ = strings.Cut(p, "?")
	return versionPrefix.ReplaceAllString(p, "/")
}

func num(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return -1
}

func callerPid(rec map[string]any) int {
	c, _ := rec["caller"].(map[string]any)
	return num(c["pid"])
}

func isStart(rec map[string]any) bool { return rec["phase"] == "start" }

func (w auditWant) matches(rec map[string]any) bool {
	if w.pid != 0 && callerPid(rec) != w.pid {
		return false
	}
	if w.method != "" && rec["method"] != w.method {
		return false
	}
	if w.path != "" && !globMatch(w.path, auditPath(rec)) {
		return false
	}
	return true
}

// checkAudit waits until every expected record is in the audit log.
func (s *session) checkAudit() {
	s.t.Helper()
	missing := s.missingAudit(auditWait)
	for _, m := range missing {
		s.t.Errorf("audit: %s", m)
	}
}

func (s *session) missingAudit(wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		recs, err := s.env.Dockgate.AuditRecords()
		if err != nil {
			return []string{err.Error()}
		}
		missing := findMissing(recs, s.audits, s.start)
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func findMissing(recs []map[string]any, wants []auditWant, since time.Time) []string {
	var missing []string
	for _, w := range wants {
		var finish, start []map[string]any
		for _, rec := range recs {
			if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"])); err == nil && ts.Before(since.Add(-time.Second)) {
				continue
			}
			if !w.matches(rec) {
				continue
			}
			if isStart(rec) {
				start = append(start, rec)
			} else {
				finish = append(finish, rec)
			}
		}
		var got []string
		ok := false
		for _, rec := range finish {
			got = append(got, fmt.Sprintf("%v %v %v hijacked=%v in=%v out=%v", rec["method"], rec["path"], rec["status"], rec["hijacked"], rec["bytes_in"], rec["bytes_out"]))
			if w.status != 0 && num(rec["status"]) != w.status {
				continue
			}
			if w.hijack && rec["hijacked"] != true {
				continue
			}
			if w.in > 0 && int64(num(rec["bytes_in"])) < w.in || w.out > 0 && int64(num(rec["bytes_out"])) < w.out {
				continue
			}
			if w.stream && !hasStartFor(start, rec) {
				continue
			}
			ok = true
			break
		}
		if !ok {
			missing = append(missing, fmt.Sprintf("no finished record for %s from pid %d (stream start record needed: %v); matching records: %q, start records: %d",
				w.what, w.pid, w.stream, got, len(start)))
		}
	}
	return missing
}

func hasStartFor(starts []map[string]any, finish map[string]any) bool {
	for _, s := range starts {
		if s["request_id"] != nil && s["request_id"] == finish["request_id"] {
			return true
		}
	}
	return false
}

// globMatch matches a path against a pattern where "*" is any run of
// characters except "/" and "**" any run at all.
func globMatch(pattern, p string) bool {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			re.WriteString(".*")
			i++
		case pattern[i] == '*':
			re.WriteString("[^/]*")
		default:
			re.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(p)
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// fdCount is dockgate's current number of open fds.
func fdCount(s *session) (int, error) { return testbed.FDCount(s.env.Dockgate.Pid) }

// sharedWithDockgate is the shared bed, skipping tests of dockgate itself
// when it runs without one (DOCKGATE_E2E_DIRECT=1).
func sharedWithDockgate(t *testing.T) *testbed.Env {
	t.Helper()
	env := testbed.Shared(t)
	if env.Dockgate == nil {
		t.Skip("no dockgate in this bed (DOCKGATE_E2E_DIRECT)")
	}
	return env
}
