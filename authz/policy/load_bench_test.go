package policy

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dockgate/dockgate/internal/policygen"
)

// BenchmarkLoadDir loads a generated policy directory of 10,000 p rows
// (and the g rows of their roles) in the shape of the decision benchmark's
// 1,000-row one: what a reload of a large site's policy costs. Target:
// ≤ 200 ms.
func BenchmarkLoadDir(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n)+"-rows", func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "site.csv"), []byte(policygen.Site(n)), 0o644); err != nil {
				b.Fatal(err)
			}
			p, err := LoadDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Rules) != n {
				b.Fatalf("%d rules, want %d", len(p.Rules), n)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := LoadDir(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
