package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Slack for the leak check: dockgate may keep a few idle keep-alive
// connections to dockerd (one fd and two goroutines each) that a fresh
// instance does not have yet.
const (
	fdSlack        = 4
	goroutineSlack = 10
)

// leakBaseline is what dockgate holds at rest before the tests: its fds, and
// the goroutines of a fresh instance with the same arguments (a goroutine
// count needs a dump, which ends the process that gives it).
type leakBaseline struct {
	fds        int
	fdList     []string
	goroutines int
	tops       []string
}

func takeLeakBaseline(ctx context.Context, env *Env, opts Options) (*leakBaseline, error) {
	g := env.Dockgate
	b := &leakBaseline{}
	b.fds, b.fdList = settledFDs(g.Pid, -1, 3*time.Second)
	fresh, err := StartDockgate(ctx, env.Bin, filepath.Join(env.Dir, "g0"), env.Dockerd.Host, opts.DockgateArgs...)
	if err != nil {
		return nil, fmt.Errorf("fresh dockgate for the goroutine baseline: %w", err)
	}
	defer os.RemoveAll(fresh.Dir)
	time.Sleep(500 * time.Millisecond)
	b.goroutines, b.tops, err = fresh.Goroutines()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "testbed: leak check baseline: %d fds, %d goroutines\n", b.fds, b.goroutines)
	return b, nil
}

// check compares dockgate after the tests (every client gone with the child
// process) with the baseline, and returns what grew. It ends dockgate.
func (b *leakBaseline) check(env *Env) []string {
	g := env.Dockgate
	var problems []string
	// Closing a client's connections takes dockgate a moment; idle
	// keep-alive connections to dockerd may stay, within the slack.
	fds, list := settledFDs(g.Pid, b.fds, 5*time.Second)
	if fds > b.fds+fdSlack {
		problems = append(problems, fmt.Sprintf("dockgate holds %d fds after the tests, %d before (slack %d); now:\n  %s\nbefore:\n  %s",
			fds, b.fds, fdSlack, strings.Join(list, "\n  "), strings.Join(b.fdList, "\n  ")))
	}
	n, tops, err := g.Goroutines()
	if err != nil {
		return append(problems, err.Error())
	}
	if n > b.goroutines+goroutineSlack {
		problems = append(problems, fmt.Sprintf("dockgate has %d goroutines after the tests, a fresh one %d (slack %d); now:\n  %s\nfresh:\n  %s",
			n, b.goroutines, goroutineSlack, strings.Join(tops, "\n  "), strings.Join(b.tops, "\n  ")))
	}
	fmt.Fprintf(os.Stderr, "testbed: leak check: fds %d before, %d after; goroutines %d fresh, %d after\n", b.fds, fds, b.goroutines, n)
	return problems
}

// settledFDs waits until pid's fd count is at most want (or, with want < 0,
// stops changing) or timeout passes, and returns the count and the fds.
func settledFDs(pid, want int, timeout time.Duration) (int, []string) {
	deadline := time.Now().Add(timeout)
	last := -1
	for {
		n, _ := FDCount(pid)
		if (want >= 0 && n <= want) || (want < 0 && n == last) || time.Now().After(deadline) {
			return n, fdList(pid)
		}
		last = n
		time.Sleep(250 * time.Millisecond)
	}
}

// fdList names a process's fds ("3 -> socket:[1234]"), for the leak report.
func fdList(pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()+" -> "+target)
	}
	sort.Strings(out)
	return out
}
