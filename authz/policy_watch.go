package authz

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
)

// PolicyReloader keeps a PolicyDecider's policy in step with its directory:
// Reload on demand (SIGHUP), Watch on change. A policy that does not load
// leaves the one in force in place.
//
// Watch polls the directory's listing and the size, mtime and inode of
// model.conf and every *.csv file rather than using inotify: polling sees
// every way a file is replaced (editors that write a new file and rename
// it, Kubernetes ConfigMap volumes that swap a symlinked directory, NFS),
// needs no extra dependency, and costs a few stat calls every interval.
type PolicyReloader struct {
	Dir     string
	Decider *PolicyDecider
	// Log is told about every reload: the policy now in force, or the
	// error and (Decider.Policy()) the policy kept. trigger says why.
	Log func(trigger string, loaded *Policy, err error)

	mu sync.Mutex
}

// Reload loads the directory and puts it in force.
func (r *PolicyReloader) Reload(trigger string) (*Policy, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := r.Decider.ReloadDir(r.Dir)
	if r.Log != nil {
		r.Log(trigger, p, err)
	}
	return p, err
}

// Watch starts reloading whenever the policy files change, checking every
// interval, until ctx is done. It returns at once; the files as they are
// now are the baseline. A change that does not load is reported once, and
// the next change is tried again.
func (r *PolicyReloader) Watch(ctx context.Context, interval time.Duration) {
	last := policyDirState(r.Dir)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := policyDirState(r.Dir)
			if now == last {
				continue
			}
			last = now
			r.Reload("policy files changed")
		}
	}()
}

// policyDirState fingerprints what LoadPolicyDir reads: names, sizes,
// modification times and inodes, symlinks followed.
func policyDirState(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	if st, err := os.Stat(dir); err == nil {
		fmt.Fprintf(&b, "dir %d %d\n", st.ModTime().UnixNano(), inode(st))
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || (n != modelFile && !strings.HasSuffix(n, ".csv")) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
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
