package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/dockgate/dockgate/policies"
)

func TestPolicySnapshotDigests(t *testing.T) {
	files := map[string]string{
		"b.csv":      "p, *, endpoint, *, allow\n",
		"a.csv":      "p, *, endpoint, system.ping, allow\n",
		"model.conf": policies.Model,
		".a.csv.swp": "garbage",
		"a.csv~":     "p, *, endpoint, *, alow\n",
	}
	dir := writePolicy(t, files)
	s, err := ReadSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range s.Files {
		names = append(names, f.Name)
		sum := sha256.Sum256([]byte(files[f.Name]))
		if f.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: digest %s, want the sha256 of its bytes", f.Name, f.SHA256)
		}
	}
	if got := strings.Join(names, " "); got != "model.conf a.csv b.csv" {
		t.Fatalf("files %q, want model.conf first, then the *.csv in order, and nothing else", got)
	}
	p, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	q, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hash != q.Hash || len(p.FileSums) != 3 || p.FileSums[2] != s.Files[2] {
		t.Fatalf("a snapshot's policy differs from the directory's: %s %s %+v", p.Hash, q.Hash, p.FileSums)
	}
}

// changingFS serves a.csv with one more row on each read until it has
// been read changes times, then the same bytes: a file being written
// while it is read.
type changingFS struct {
	mu             sync.Mutex
	reads, changes int
}

func (c *changingFS) content(next bool) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	rows := "p, *, endpoint, system.ping, allow\n"
	for i := 1; i <= min(c.reads, c.changes); i++ {
		rows += "p, *, endpoint, system.v" + strconv.Itoa(i) + ", allow\n"
	}
	if next {
		c.reads++
	}
	return []byte(rows)
}

func (c *changingFS) Open(name string) (fs.File, error) {
	return fstest.MapFS{"a.csv": {Data: c.content(false)}}.Open(name)
}

func (c *changingFS) ReadFile(name string) ([]byte, error) {
	if name != "a.csv" {
		return nil, fs.ErrNotExist
	}
	return c.content(true), nil
}

func TestPolicySnapshotRereads(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes int
		wantErr bool
	}{
		{"a file that reads the same twice is loaded", 0, false},
		{"a file written while read is read again until it is stable", 3, false},
		{"a file that never reads the same twice is refused", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &changingFS{changes: tc.changes}
			s, err := readStableSnapshot(c, "/etc/dockgate/policy", 0)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "changed while they were read") {
					t.Fatalf("got %v, %v; want a refusal", s, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Load()
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Rules) != tc.changes+1 {
				t.Fatalf("loaded %d rules, want the stable file's %d", len(p.Rules), tc.changes+1)
			}
		})
	}
}
