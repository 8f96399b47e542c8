package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// ModuleRoot finds the directory of dockgate's go.mod by walking up from the
// working directory (a test runs in its package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/dockgate/dockgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testbed: no go.mod of github.com/dockgate/dockgate above the working directory")
		}
		dir = parent
	}
}

// BuildDockgate builds ./cmd/dockgate into outDir and returns the binary's path.
func BuildDockgate(ctx context.Context, outDir string) (string, error) {
	return buildDockgate(ctx, outDir, false)
}

// BuildDockgateRace is BuildDockgate with the race detector compiled in.
func BuildDockgateRace(ctx context.Context, outDir string) (string, error) {
	return buildDockgate(ctx, outDir, true)
}

func buildDockgate(ctx context.Context, outDir string, race bool) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(outDir, "dockgate"))
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("testbed: no go tool in PATH: %w", err)
	}
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/dockgate")
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// Dockgate is a running `dockgate serve` on a socket in its own dir, with its
// audit log and its stderr (operational log) in that dir.
type Dockgate struct {
	Dir      string `json:"dir"`
	Socket   string `json:"socket"`
	Host     string `json:"host"` // unix://Socket
	AuditLog string `json:"audit_log"`
	Stderr   string `json:"stderr"` // dockgate's stdout and stderr
	Pid      int    `json:"pid"`

	proc *process
}

// StartDockgate runs `bin serve --listen unix://DIR/docker.sock --upstream
// upstreamHost --audit-log DIR/audit.log args...` and waits until /_ping
// answers through it.
func StartDockgate(ctx context.Context, bin, dir, upstreamHost string, args ...string) (*Dockgate, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	g := &Dockgate{
		Dir:      dir,
		Socket:   filepath.Join(dir, "docker.sock"),
		AuditLog: filepath.Join(dir, "audit.log"),
		Stderr:   filepath.Join(dir, "dockgate.log"),
	}
	g.Host = "unix://" + g.Socket
	if len(g.Socket) > 107 {
		return nil, fmt.Errorf("dockgate socket path %s is too long", g.Socket)
	}
	argv := append([]string{"serve", "--listen", g.Host, "--upstream", upstreamHost, "--audit-log", g.AuditLog}, args...)
	env := append(baseEnv(), "GOTRACEBACK=all", "GORACE=halt_on_error=0 exitcode=66")
	p, err := startProcess(g.Stderr, env, bin, argv...)
	if err != nil {
		return nil, fmt.Errorf("start dockgate: %w", err)
	}
	g.proc, g.Pid = p, p.pid()
	err = waitReady(ctx, p, g.Stderr, 30*time.Second, func(ctx context.Context) error { return ping(ctx, g.Socket) })
	if err != nil {
		_ = p.stop(syscall.SIGKILL, 5*time.Second)
		return nil, fmt.Errorf("dockgate: %w", err)
	}
	return g, nil
}

// Stop sends SIGTERM and waits, then SIGKILL. A dockgate that needs SIGKILL
// or exits non-zero on SIGTERM is reported as an error.
func (g *Dockgate) Stop() error {
	if g.proc == nil {
		return errors.New("testbed: this dockgate belongs to another process")
	}
	if err := g.proc.stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return fmt.Errorf("dockgate stop: %w%s", err, tail(g.Stderr, 64<<10))
	}
	return nil
}

// Running reports whether the process is still alive (false for a borrowed
// Dockgate whose pid is gone).
func (g *Dockgate) Running() bool {
	if g.proc != nil {
		return !g.proc.exited()
	}
	return syscall.Kill(g.Pid, 0) == nil
}

// AuditRecords reads every audit record written so far: the lines of the
// audit log whose "type" is "audit". A line that is not JSON is an error.
func (g *Dockgate) AuditRecords() ([]map[string]any, error) {
	f, err := os.Open(g.AuditLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []map[string]any
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; s.Scan(); n++ {
		line := s.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			return recs, fmt.Errorf("%s:%d: not JSON: %v: %.200q", g.AuditLog, n, err, line)
		}
		if rec["type"] == "audit" {
			recs = append(recs, rec)
		}
	}
	return recs, s.Err()
}

// Problems scans dockgate's stderr for what must never be there: data race
// reports, panics, fatal runtime errors.
func (g *Dockgate) Problems() []string {
	b, err := os.ReadFile(g.Stderr)
	if err != nil {
		return nil
	}
	var out []string
	for _, marker := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if i := bytes.Index(b, []byte(marker)); i >= 0 {
			end := min(i+3000, len(b))
			out = append(out, string(b[i:end]))
		}
	}
	return out
}

// Goroutines makes dockgate dump its goroutines with SIGQUIT (which ends it)
// and returns how many there were and their top frames, most frequent first.
// It is the last thing done to a dockgate: its leak check.
func (g *Dockgate) Goroutines() (int, []string, error) {
	if g.proc == nil {
		return 0, nil, errors.New("testbed: this dockgate belongs to another process")
	}
	before, _ := os.ReadFile(g.Stderr)
	_ = g.proc.stop(syscall.SIGQUIT, 10*time.Second)
	b, err := os.ReadFile(g.Stderr)
	if err != nil {
		return 0, nil, err
	}
	return parseGoroutineDump(b[min(len(before), len(b)):])
}

var goroutineHeader = regexp.MustCompile(`^goroutine \d+ (?:gp=\S+ )?(?:m=\S+ )?(?:mp=\S+ )?\[([^\],]*)[^\]]*\]:`)

// parseGoroutineDump counts the goroutines of a SIGQUIT dump and groups them
// by state and by their innermost frame outside the runtime and standard
// library plumbing, which is where a leaked goroutine shows its owner.
func parseGoroutineDump(dump []byte) (int, []string, error) {
	if !bytes.Contains(dump, []byte("SIGQUIT")) {
		return 0, nil, fmt.Errorf("no goroutine dump after SIGQUIT (does dockgate catch SIGQUIT?): %.300q", dump)
	}
	count := map[string]int{}
	n := 0
	for block := range strings.SplitSeq(string(dump), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		m := goroutineHeader.FindStringSubmatch(lines[0])
		if m == nil {
			continue
		}
		n++
		where, outermost := "", ""
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by ") {
				continue
			}
			fn := l // "pkg.(*T).Method(args...)": the arguments are the last parentheses
			if i := strings.LastIndex(l, "("); i > 0 {
				fn = l[:i]
			}
			outermost = fn
			if !plumbing(fn) {
				where = fn
				break
			}
		}
		if where == "" {
			where = outermost
		}
		count[where+" ["+m[1]+"]"]++
	}
	var tops []string
	for k, c := range count {
		tops = append(tops, fmt.Sprintf("%4d %s", c, k))
	}
	sort.Sort(sort.Reverse(sort.StringSlice(tops)))
	return n, tops, nil
}

func plumbing(fn string) bool {
	for _, p := range []string{"runtime.", "internal/", "sync.", "net.", "net/http.", "io.", "bufio.", "os.", "syscall.", "time.", "context.", "os/signal."} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}
