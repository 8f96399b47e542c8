package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRewriteBlock(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
		fails           bool
	}{
		{"the block is replaced, the rest kept", "# T\n\n## Performance\n" + readmeBegin + "\nold table\n" + readmeEnd + "\n\nafter\n",
			"# T\n\n## Performance\n" + readmeBegin + "\nnew table\n" + readmeEnd + "\n\nafter\n", false},
		{"an empty block is filled", "a " + readmeBegin + readmeEnd + " b", "a " + readmeBegin + "\nnew table\n" + readmeEnd + " b", false},
		{"no markers: the README is left alone", "# T\n", "", true},
		{"only the begin marker", readmeBegin + "\n", "", true},
		{"end before begin", readmeEnd + "\n" + readmeBegin, "", true},
		{"two blocks: which one is meant cannot be told", readmeBegin + readmeEnd + readmeBegin + readmeEnd, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rewriteBlock(tc.doc, "\nnew table\n\n")
			if tc.fails {
				if err == nil {
					t.Fatalf("rewrote %q into %q", tc.doc, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteReadmePutsEachEnginesTableInTheBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	doc := "# dockgate\n\n## Performance\n\n" + readmeBegin + "\nnot measured yet\n" + readmeEnd + "\n\n## Next\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(engine string) results {
		return results{Time: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), Engine: engine, DockerdVersion: "20.10.24", CPUs: 2,
			CPUModel: "AMD EPYC", Kernel: "6.1", GoVersion: "go1.26", Rows: []row{
				atLeast(versus(rate("/_ping c=16 dockgate vs bare relay", "req/s", 1000, 900, nil), baseRelay), 0.85),
				atMost(row{Name: "a | piped name", Unit: "ms", Dockgate: 250}, 200),
			}}
	}
	if err := writeReadme(path, []results{run("debian"), run("current")}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"engine debian", "engine current", "2 CPUs (AMD EPYC), kernel 6.1",
		"| /_ping c=16 dockgate vs bare relay | req/s | bare relay | 1000 | 900 | 0.900× | ≥ 0.85× | PASS |",
		`| a \| piped name | ms |  |  | 250 |  | ≤ 200 ms | FAIL |`,
		"## Next\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "not measured yet") {
		t.Errorf("the old block is still there:\n%s", got)
	}
	if _, err := os.Stat(path + ".bench-tmp"); !os.IsNotExist(err) {
		t.Errorf("the temp file is left behind: %v", err)
	}
}
