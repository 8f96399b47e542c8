package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dockgate/dockgate/internal/signature"
)

// Triggers of a policy load, as the audit trail names them.
const (
	TriggerStartup = "startup"
	TriggerSignal  = "signal"
	TriggerWatcher = "watcher"
)

// Reload is what one load of a policy directory did.
type Reload struct {
	Trigger string
	Dir     string
	// Previous is the policy in force before; Loaded the one put in force,
	// nil when the load failed (Err says why, and Previous stays).
	Previous, Loaded *Policy
	// Files are the files read with their digests; empty when they could
	// not be read as one snapshot.
	Files []File
	Err   error
}

// Changed says whether the reload put a policy in force that differs from
// the one before.
func (r *Reload) Changed() bool {
	return r.Err == nil && r.Loaded != nil && (r.Previous == nil || r.Previous.Hash != r.Loaded.Hash)
}

// LoadReload reads dir as one snapshot and loads it, for a reload that
// replaces previous. It changes nothing: the caller puts Loaded in force.
func LoadReload(dir, trigger string, previous *Policy) Reload {
	ev := Reload{Trigger: trigger, Dir: dir, Previous: previous}
	s, err := ReadSnapshot(dir)
	if err != nil {
		ev.Err = err
		return ev
	}
	ev.Files = s.Files
	ev.Loaded, ev.Err = s.Load()
	return ev
}

// Holder holds the policy in force (authz.PolicyDecider does): Policy
// returns it, SetPolicy puts another in force and returns the one it
// replaces.
type Holder interface {
	Policy() *Policy
	SetPolicy(*Policy) *Policy
}

// Reloader keeps the policy of a Holder in step with its directory:
// Reload on demand, Watch (opt-in) when the files have changed and then
// stayed unchanged for a quiet period. A policy that does not load leaves
// the one in force in place.
//
// Watch polls the size, mtime and inode of model.conf and every *.csv file
// rather than using inotify: polling sees every way a file is replaced
// (editors that write a new file and rename it, Kubernetes ConfigMap
// volumes that swap a symlinked directory, NFS), needs no extra
// dependency, and costs a few stat calls every interval.
type Reloader struct {
	Dir    string
	Holder Holder
	// Log is told about every reload (Reload.Changed says whether it
	// changed the policy in force).
	Log func(Reload)

	mu sync.Mutex
}

// Reload loads the directory as one snapshot and puts it in force.
func (r *Reloader) Reload(trigger string) Reload {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := LoadReload(r.Dir, trigger, r.Holder.Policy())
	if ev.Err == nil {
		r.Holder.SetPolicy(ev.Loaded)
	}
	if r.Log != nil {
		r.Log(ev)
	}
	return ev
}

// Watch starts reloading when the policy files change, until ctx is done,
// checking every interval. A change is loaded only once the files have
// stayed as they are for quiet: a file written in place a line at a time,
// or several files written one after the other, is loaded when the writer
// has paused for that long, not at every step. (A writer that pauses
// longer than quiet in the middle of an edit is seen in the middle: such
// edits are written elsewhere and renamed into place, or made with the
// watcher off and put in force by a reload signal.) The files as they are
// now are the baseline; Watch returns at once. stop ends the watch and
// waits for a reload in progress, so that once it returns the watch
// applies and logs nothing more.
func (r *Reloader) Watch(ctx context.Context, interval, quiet time.Duration) (stop func()) {
	w := newWatch(r, quiet, time.Now())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				w.tick(now)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// watch is Watch's state between ticks.
type watch struct {
	r     *Reloader
	quiet time.Duration
	// loaded is the state of the files last loaded (or the baseline);
	// seen the state last seen, unchanged since since.
	loaded, seen string
	since        time.Time
}

func newWatch(r *Reloader, quiet time.Duration, now time.Time) *watch {
	s := dirState(r.Dir)
	return &watch{r: r, quiet: quiet, loaded: s, seen: s, since: now}
}

// tick looks at the files at time now, and reloads when they differ from
// what was loaded and have stayed as they are for the quiet period. It
// says whether it reloaded.
func (w *watch) tick(now time.Time) bool {
	s := dirState(w.r.Dir)
	if s != w.seen {
		w.seen, w.since = s, now
		return false
	}
	if w.seen == w.loaded || now.Sub(w.since) < w.quiet {
		return false
	}
	// The snapshot's own second read catches a write that starts now; the
	// next tick sees it as a new change.
	w.loaded = w.seen
	w.r.Reload(TriggerWatcher)
	return true
}

// dirState fingerprints what ReadSnapshot reads: the names,
// sizes, modification times and inodes of the policy's files, symlinks
// followed. The directory's own mtime is left out: an editor's swap file
// coming and going is not a change of the policy.
func dirState(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if isPolicyFileName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if keys, err := os.ReadDir(filepath.Join(dir, keysDir)); err == nil {
		for _, e := range keys {
			if signature.IsKeyFile(e.Name()) {
				names = append(names, keysDir+"/"+e.Name())
			}
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			fmt.Fprintf(&b, "%s error %v\n", n, err)
			continue
		}
		fmt.Fprintf(&b, "%s %d %d %d\n", n, st.Size(), st.ModTime().UnixNano(), inode(st))
	}
	return b.String()
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}
