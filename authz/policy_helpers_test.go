package authz

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
)

// writePolicy writes files (name → content) into a new directory.
func writePolicy(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadTestPolicy(t testing.TB, files map[string]string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadDir(writePolicy(t, files))
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	return p
}
