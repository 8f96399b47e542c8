package e2e

// Policy reloads are atomic and recorded: a policy file
// rewritten in place a line at a time, as `sh -c 'echo ROW >> FILE'` does,
// while a non-root caller sends a steady stream of requests, never decides
// a request by a policy that was never complete; the reload (SIGHUP, or the
// opt-in watcher after its quiet period) puts the complete one in force,
// and the audit trail holds exactly one policy record per policy put in
// force, with the rows added and removed.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

const (
	// prOld is the policy in force at startup: a non-root caller may ping
	// and read system info, nothing else.
	prOld = "p, *, endpoint, system.ping, allow\n" +
		"p, *, endpoint, system.info, allow\n" +
		"p, uid:0, *, **, allow\n"
	// prQuiet is the watcher's quiet period in the watcher case: far
	// longer than the pauses of the line-by-line writer.
	prQuiet = 3 * time.Second
	// prWait bounds waiting for a reload or a record (it only detects a
	// hang: the machine is shared and loaded).
	prWait = 60 * time.Second
)

// prNew is the policy written over prOld a line at a time. Its allow-all
// row comes before the deny rows, so that the policy read in the middle of
// the edit allows container.list and image.list, which both the old and
// the new policy refuse; and while the file is empty even ping is refused.
var prNew = []string{
	"p, *, endpoint, system.ping, allow",
	"p, uid:0, *, **, allow",
	"p, *, endpoint, *, allow",
	"p, *, endpoint, container.*, deny",
	"p, *, endpoint, image.*, deny",
	"p, *, endpoint, system.info, deny",
}

// prProbes are the requests of the load, with their status under the old
// and under the new policy.
var prProbes = []struct {
	path     string
	old, new int
}{
	{"/_ping", 200, 200},
	{"/v1.41/containers/json", 403, 403},
	{"/v1.41/images/json", 403, 403},
	{"/v1.41/networks", 403, 200},
	{"/v1.41/info", 200, 403},
}

// prLoad is a steady stream of requests through dockgate from uid 65534:
// loops of curl, each sending every probe on one connection, until the
// stop file exists.
type prLoad struct {
	stop  string
	cmds  []*exec.Cmd
	mu    sync.Mutex
	lines []string
	wg    sync.WaitGroup
}

func prStartLoad(t *testing.T, socket, stop string, loops int) *prLoad {
	t.Helper()
	setpriv := testbed.RequireBinary(t, "setpriv")
	curl := testbed.RequireBinary(t, "curl")
	args := []string{curl, "-s", "--unix-socket", socket, "-w", `%{url_effective} %{http_code}\n`}
	for _, p := range prProbes {
		args = append(args, "-o", "/dev/null", "http://docker"+p.path)
	}
	script := `while [ ! -e "$0" ]; do "$@"; done`
	l := &prLoad{stop: stop}
	uid := strconv.Itoa(azUID)
	for range loops {
		cmd := exec.Command(setpriv, append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", "sh", "-c", script, stop}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		l.cmds = append(l.cmds, cmd)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				l.mu.Lock()
				l.lines = append(l.lines, sc.Text())
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.finish(t) })
	return l
}

// results are the lines answered so far.
func (l *prLoad) results() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// waitFor waits until ok accepts the results.
func (l *prLoad) waitFor(t *testing.T, what string, ok func([]string) bool) {
	t.Helper()
	for deadline := time.Now().Add(prWait); !ok(l.results()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("load: no %s after %v; %d results", what, prWait, len(l.results()))
		}
	}
}

// finish stops the loops and waits for them.
func (l *prLoad) finish(t *testing.T) []string {
	t.Helper()
	if l.cmds == nil {
		return l.results()
	}
	if err := os.WriteFile(l.stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for _, c := range l.cmds {
			c.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(prWait):
		for _, c := range l.cmds {
			c.Process.Kill()
		}
		<-done
		t.Errorf("the load did not stop within %v of its stop file", prWait)
	}
	l.wg.Wait()
	l.cmds = nil
	return l.results()
}

// prStatus reads a result line: the probe's path and its status.
func prStatus(t *testing.T, line string) (string, int) {
	t.Helper()
	url, code, ok := strings.Cut(line, " ")
	n, err := strconv.Atoi(code)
	if !ok || err != nil || !strings.HasPrefix(url, "http://docker/") {
		t.Fatalf("load result %q: want URL and status", line)
	}
	return strings.TrimPrefix(url, "http://docker"), n
}

// prCheck says which results no complete policy explains: under onlyOld,
// any result other than the old policy's; otherwise one that is neither
// the old nor the new policy's. It also counts each probe's new-only
// results (network list allowed).
func prCheck(t *testing.T, results []string, onlyOld bool) (wrong []string, sawNew bool) {
	t.Helper()
	for _, line := range results {
		path, got := prStatus(t, line)
		for _, p := range prProbes {
			if p.path != path {
				continue
			}
			if got != p.old && (onlyOld || got != p.new) {
				wrong = append(wrong, line)
			}
			if got == p.new && p.new != p.old {
				sawNew = true
			}
		}
	}
	return wrong, sawNew
}

// prRewriteInPlace empties file and appends rows one at a time, each by a
// shell of its own, with a pause after each: an operator's edit in place.
func prRewriteInPlace(t *testing.T, file string, rows []string, pause time.Duration) {
	t.Helper()
	if out, err := exec.Command("sh", "-c", `: > "$0"`, file).CombinedOutput(); err != nil {
		t.Fatalf("truncate %s: %v %s", file, err, out)
	}
	for _, row := range rows {
		time.Sleep(pause)
		if out, err := exec.Command("sh", "-c", `echo "$1" >> "$0"`, file, row).CombinedOutput(); err != nil {
			t.Fatalf("append to %s: %v %s", file, err, out)
		}
	}
}

// prPolicyRecords are the "type":"policy" lines of an audit log.
func prPolicyRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for line := range bytes.SplitSeq(bytes.TrimSpace(b), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("audit log line is not JSON: %.200s", line)
		}
		if rec["type"] == "policy" {
			recs = append(recs, rec)
		}
	}
	return recs
}

func prWaitPolicyRecords(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	for deadline := time.Now().Add(prWait); ; time.Sleep(50 * time.Millisecond) {
		recs := prPolicyRecords(t, path)
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
	}
}

func prStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, s := range list {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}

// prCheckRecords checks the startup record and the one reload record.
func prCheckRecords(t *testing.T, recs []map[string]any, trigger, signal, newText string) {
	t.Helper()
	if len(recs) != 2 {
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprint(r))
		}
		t.Fatalf("%d policy records, want exactly 2 (startup, then %s):\n%s", len(recs), trigger, strings.Join(got, "\n"))
	}
	start, reload := recs[0], recs[1]
	if start["trigger"] != "startup" || start["result"] != "applied" || start["previous_policy_hash"] != nil ||
		strings.Join(prStrings(start["rows_added"]), "|") != "ci.csv:1: p, *, endpoint, system.ping, allow|ci.csv:2: p, *, endpoint, system.info, allow|ci.csv:3: p, uid:0, *, **, allow" {
		t.Errorf("startup record: %v", start)
	}
	sum := sha256.Sum256([]byte(newText))
	files, _ := reload["files"].([]any)
	file, _ := func() (map[string]any, bool) {
		if len(files) != 1 {
			return nil, false
		}
		m, ok := files[0].(map[string]any)
		return m, ok
	}()
	if reload["trigger"] != trigger || reload["result"] != "applied" || reload["previous_policy_hash"] != start["policy_hash"] ||
		reload["policy_hash"] == start["policy_hash"] || file["name"] != "ci.csv" || file["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("%s record: %v", trigger, reload)
	}
	if signal != "" && reload["signal"] != signal {
		t.Errorf("%s record names signal %v, want %s", trigger, reload["signal"], signal)
	}
	wantAdded := "ci.csv:3: p, *, endpoint, *, allow|ci.csv:4: p, *, endpoint, container.*, deny|ci.csv:5: p, *, endpoint, image.*, deny|ci.csv:6: p, *, endpoint, system.info, deny"
	if got := strings.Join(prStrings(reload["rows_added"]), "|"); got != wantAdded {
		t.Errorf("rows added:\n%s\nwant\n%s", got, wantAdded)
	}
	if got := strings.Join(prStrings(reload["rows_removed"]), "|"); got != "ci.csv:2: p, *, endpoint, system.info, allow" {
		t.Errorf("rows removed: %s", got)
	}
}

// prVerify runs `dockgate audit verify` and `audit query --policy` on the
// gate's trail.
func prVerify(t *testing.T, bin, path string, policyRecords int) {
	t.Helper()
	out, err := exec.Command(bin, "audit", "verify", path).CombinedOutput()
	if err != nil || !bytes.HasPrefix(out, []byte("ok: ")) {
		t.Errorf("dockgate audit verify: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "audit", "query", "--policy", path).CombinedOutput()
	if err != nil || bytes.Count(out, []byte("\n")) != 1+policyRecords {
		t.Errorf("dockgate audit query --policy: %v, want a header and %d rows:\n%s", err, policyRecords, out)
	}
}

func TestPolicyRewrittenInPlaceUnderLoad(t *testing.T) {
	// dockgate's policy watch under load, not the engine's: once per run.
	testbed.OncePerRun(t)
	env := sharedWithDockgate(t)
	newText := strings.Join(prNew, "\n") + "\n"

	t.Run("only a reload signal puts the edit in force", func(t *testing.T) {
		g := azStartGate(t, env, prOld)
		file := filepath.Join(g.policy, "ci.csv")
		load := prStartLoad(t, g.Socket, filepath.Join(g.Dir, "stop-load"), 2)
		load.waitFor(t, "results", func(r []string) bool { return len(r) >= 20 })

		prRewriteInPlace(t, file, prNew, 100*time.Millisecond)
		// Longer than any watcher would wait: the edit must not be loaded
		// by itself.
		time.Sleep(2 * prQuiet)
		before := load.results()
		if wrong, _ := prCheck(t, before, true); len(wrong) > 0 {
			t.Fatalf("%d of %d requests before the reload signal were not decided by the old policy, e.g. %q", len(wrong), len(before), wrong[0])
		}
		if err := syscall.Kill(g.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		load.waitFor(t, "request decided by the new policy", func(r []string) bool {
			_, sawNew := prCheck(t, r[len(before):], false)
			return sawNew
		})
		n := len(load.results())
		load.waitFor(t, "more results", func(r []string) bool { return len(r) >= n+20 })
		all := load.finish(t)
		wrong, _ := prCheck(t, all, false)
		if len(wrong) > 0 {
			t.Fatalf("%d of %d requests were decided by a policy that was never complete, e.g. %q", len(wrong), len(all), wrong[0])
		}
		t.Logf("%d requests: %d before the reload signal, all by the old policy; none by an incomplete one", len(all), len(before))
		prCheckRecords(t, prWaitPolicyRecords(t, g.AuditLog, 2), "signal", "SIGHUP", newText)
		prVerify(t, env.Bin, g.AuditLog, 2)
	})

	t.Run("the watcher loads the edit once, after its quiet period", func(t *testing.T) {
		g := azStartGate(t, env, prOld, "--policy-watch", prQuiet.String())
		file := filepath.Join(g.policy, "ci.csv")
		load := prStartLoad(t, g.Socket, filepath.Join(g.Dir, "stop-load"), 2)
		load.waitFor(t, "results", func(r []string) bool { return len(r) >= 20 })

		prRewriteInPlace(t, file, prNew, 100*time.Millisecond)
		recs := prWaitPolicyRecords(t, g.AuditLog, 2)
		load.waitFor(t, "request decided by the new policy", func(r []string) bool {
			_, sawNew := prCheck(t, r, false)
			return sawNew
		})
		n := len(load.results())
		load.waitFor(t, "more results", func(r []string) bool { return len(r) >= n+20 })
		all := load.finish(t)
		wrong, _ := prCheck(t, all, false)
		if len(wrong) > 0 {
			t.Fatalf("%d of %d requests were decided by a policy that was never complete, e.g. %q", len(wrong), len(all), wrong[0])
		}
		t.Logf("%d requests, none decided by an incomplete policy", len(all))
		// No second load: the watcher saw one change, not six.
		time.Sleep(2 * prQuiet)
		recs = prPolicyRecords(t, g.AuditLog)
		prCheckRecords(t, recs, "watcher", "", newText)
		prVerify(t, env.Bin, g.AuditLog, 2)
	})
}
