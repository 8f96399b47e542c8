package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchPolicyLines(t *testing.T) {
	for _, n := range []int{1, 13, 1000, 10000} {
		lines := benchPolicyLines(n)
		p := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "p, ") {
				p++
			}
		}
		if p != n {
			t.Errorf("benchPolicyLines(%d) has %d p rows", n, p)
		}
	}
}

func TestWritePolicyFilesSplitsByPRows(t *testing.T) {
	dir := t.TempDir()
	if err := writePolicyFiles(dir, benchPolicyLines(2500), 1000); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, strings.Count(string(b), "\np, ")+map[bool]int{true: 1}[strings.HasPrefix(string(b), "p, ")])
	}
	if len(counts) != 3 || counts[0] != 1000 || counts[1] != 1000 || counts[2] != 500 {
		t.Errorf("p rows per file %v, want [1000 1000 500]", counts)
	}
}

func TestDecisionRowsMeasureTheGeneratedPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a 10,000-row policy")
	}
	rows, err := decisionRowsIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Name, r.Error)
		}
		if r.Dockgate <= 0 {
			t.Errorf("%s: measured %v", r.Name, r.Dockgate)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 13000: "13,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
