package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// holder is the Holder a Reloader keeps in step (the decider, in dockgate).
type holder struct{ p atomic.Pointer[Policy] }

func (h *holder) Policy() *Policy             { return h.p.Load() }
func (h *holder) SetPolicy(p *Policy) *Policy { return h.p.Swap(p) }

// eventLog collects a Reloader's reports.
type eventLog struct {
	mu     sync.Mutex
	events []Reload
}

func (l *eventLog) add(ev Reload) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) all() []Reload {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Reload(nil), l.events...)
}

func newTestReloader(t *testing.T, files map[string]string) (*Reloader, *eventLog) {
	t.Helper()
	dir := writePolicy(t, files)
	first, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := &eventLog{}
	h := &holder{}
	h.SetPolicy(first)
	return &Reloader{Dir: dir, Holder: h, Log: log.add}, log
}

func appendLine(t *testing.T, file, line string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// A half-written policy: a file rewritten in place a line at a time has
// its allow rows before its deny rows, so a step in between allows what
// the finished file denies. The watcher must load it only once the writer
// has been quiet, never at a step in between.
func TestPolicyWatchWaitsForTheQuietPeriod(t *testing.T) {
	r, log := newTestReloader(t, map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\n"})
	const quiet = 2 * time.Second
	t0 := time.Unix(1000, 0)
	w := newWatch(r, quiet, t0)
	file := filepath.Join(r.Dir, "a.csv")
	complete := []string{
		"p, *, endpoint, system.ping, allow",
		"p, *, endpoint, *, allow",
		"p, *, endpoint, container.*, deny",
		"p, *, endpoint, image.*, deny",
	}
	if err := os.Truncate(file, 0); err != nil {
		t.Fatal(err)
	}
	now := t0
	for _, line := range complete {
		// Each step of the edit is seen, and stays for less than quiet.
		now = now.Add(100 * time.Millisecond)
		if w.tick(now) {
			t.Fatalf("reloaded as soon as a change was seen")
		}
		now = now.Add(quiet - time.Millisecond)
		if w.tick(now) {
			t.Fatalf("reloaded before the quiet period ended")
		}
		appendLine(t, file, line)
	}
	now = now.Add(time.Millisecond)
	if w.tick(now) {
		t.Fatal("reloaded on the tick that saw the last line appear")
	}
	if w.tick(now.Add(quiet)) != true {
		t.Fatal("no reload after the quiet period")
	}
	evs := log.all()
	if len(evs) != 1 || evs[0].Err != nil || evs[0].Trigger != TriggerWatcher {
		t.Fatalf("reloads: %+v, want one by the watcher", evs)
	}
	if got := len(r.Holder.Policy().Rules); got != len(complete) {
		t.Fatalf("the policy in force has %d rules, want the complete %d", got, len(complete))
	}
	if w.tick(now.Add(3 * quiet)) {
		t.Fatal("reloaded again with nothing changed")
	}
}

func TestPolicyWatchIgnoresEditorFiles(t *testing.T) {
	r, log := newTestReloader(t, map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\n"})
	t0 := time.Unix(1000, 0)
	w := newWatch(r, time.Second, t0)
	for _, name := range []string{".a.csv.swp", "a.csv~", "#a.csv#", "4913", "sedAbC123", ".#a.csv", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(r.Dir, name), []byte("p, *, endpoint, *, allow\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		w.tick(t0.Add(time.Duration(i) * time.Second))
	}
	if evs := log.all(); len(evs) != 0 {
		t.Fatalf("editor files caused reloads: %+v", evs)
	}
}

func TestPolicyReloaderWatch(t *testing.T) {
	r, log := newTestReloader(t, map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\n"})
	first := r.Holder.Policy()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer r.Watch(ctx, 10*time.Millisecond, 50*time.Millisecond)()
	waitFor := func(n int) []Reload {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if got := log.all(); len(got) >= n {
				return got
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no reload %d", n)
		return nil
	}

	// A broken edit: reported with file and line, old policy kept.
	if err := os.WriteFile(filepath.Join(r.Dir, "b.csv"), []byte("p, *, endpoint, *, alow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(1)[0]
	if ev.Err == nil || !strings.Contains(ev.Err.Error(), "b.csv:1: unknown effect") || ev.Trigger != TriggerWatcher || ev.Previous != first {
		t.Fatalf("broken edit: %+v", ev)
	}
	if len(ev.Files) != 2 || ev.Files[1].Name != "b.csv" {
		t.Fatalf("a failed load does not list the files it read: %+v", ev.Files)
	}
	if r.Holder.Policy() != first {
		t.Fatal("a broken edit replaced the policy")
	}

	// The fix, written as editors do: a new file renamed over the old.
	tmp := filepath.Join(r.Dir, ".b.csv.tmp")
	if err := os.WriteFile(tmp, []byte("p, *, endpoint, *, allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(r.Dir, "b.csv")); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(2)[1]
	if ev.Err != nil || ev.Loaded == nil || r.Holder.Policy() != ev.Loaded || !ev.Changed() {
		t.Fatalf("fixed edit: %+v", ev)
	}

	// A signal's path: the same files again change nothing.
	again := r.Reload(TriggerSignal)
	if again.Err != nil || again.Loaded.Hash != ev.Loaded.Hash || again.Changed() {
		t.Fatalf("Reload: %+v", again)
	}
}

func TestPolicyDirStateSeesChanges(t *testing.T) {
	dir := writePolicy(t, map[string]string{"a.csv": "p, *, endpoint, *, allow\n"})
	s0 := dirState(dir)
	if s0 != dirState(dir) {
		t.Fatal("state of an unchanged directory changes")
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.Chtimes(dir, time.Unix(1, 0), time.Unix(1, 0))
	s1 := dirState(dir)
	if s1 != s0 {
		t.Fatal("a file that is not part of the policy is a change")
	}
	os.WriteFile(filepath.Join(dir, "model.conf"), []byte("x"), 0o644)
	if dirState(dir) == s1 {
		t.Fatal("a new model.conf is not a change")
	}
}
