package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPolicyReloaderWatch(t *testing.T) {
	dir := writePolicy(t, map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\n"})
	first, err := LoadPolicyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		trigger string
		loaded  *Policy
		err     error
	}
	var mu sync.Mutex
	var events []event
	r := &PolicyReloader{Dir: dir, Decider: NewPolicyDecider(first), Log: func(trigger string, p *Policy, err error) {
		mu.Lock()
		events = append(events, event{trigger, p, err})
		mu.Unlock()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Watch(ctx, 10*time.Millisecond)
	waitFor := func(n int) []event {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			got := append([]event(nil), events...)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no reload %d", n)
		return nil
	}

	// A broken edit: reported with file and line, old policy kept.
	if err := os.WriteFile(filepath.Join(dir, "b.csv"), []byte("p, *, endpoint, *, alow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(1)[0]
	if ev.err == nil || !strings.Contains(ev.err.Error(), "b.csv:1: unknown effect") || ev.trigger != "policy files changed" {
		t.Fatalf("broken edit: %+v", ev)
	}
	if r.Decider.Policy() != first {
		t.Fatal("a broken edit replaced the policy")
	}

	// The fix, written as editors do: a new file renamed over the old.
	tmp := filepath.Join(dir, ".b.csv.tmp")
	if err := os.WriteFile(tmp, []byte("p, *, endpoint, *, allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "b.csv")); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(2)[1]
	if ev.err != nil || ev.loaded == nil || r.Decider.Policy() != ev.loaded || ev.loaded.Hash == first.Hash {
		t.Fatalf("fixed edit: %+v", ev)
	}

	// SIGHUP's path.
	p, err := r.Reload("SIGHUP")
	if err != nil || p.Hash != ev.loaded.Hash {
		t.Fatalf("Reload: %v, hash %s", err, p.Hash)
	}
}

func TestPolicyDirStateSeesChanges(t *testing.T) {
	dir := writePolicy(t, map[string]string{"a.csv": "p, *, endpoint, *, allow\n"})
	s0 := policyDirState(dir)
	if s0 != policyDirState(dir) {
		t.Fatal("state of an unchanged directory changes")
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.Chtimes(dir, time.Unix(1, 0), time.Unix(1, 0))
	s1 := policyDirState(dir)
	os.WriteFile(filepath.Join(dir, "model.conf"), []byte("x"), 0o644)
	if policyDirState(dir) == s1 {
		t.Fatal("a new model.conf is not a change")
	}
}
