package authz

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// updateGenerated: go test ./authz -run 'UpToDate' -update rewrites the
// generated files instead of comparing them.
var updateGenerated = flag.Bool("update", false, "rewrite the generated files (docs/policy.md, apifields_gen.go)")

// TestPolicyDocUpToDate keeps docs/policy.md in step with the route table:
// a route added without regenerating the doc fails here.
func TestPolicyDocUpToDate(t *testing.T) {
	checkGeneratedDoc(t, "policy.md", "TestPolicyDocUpToDate", NewRouter().PolicyDoc())
}

// checkGeneratedDoc fails t unless docs/name is want; -update writes it.
func checkGeneratedDoc(t *testing.T, name, test, want string) {
	t.Helper()
	file := filepath.Join("..", "docs", name)
	if *updateGenerated {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run: go test ./authz -run %s -update)", err, test)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date; run: go test ./authz -run %s -update", file, test)
	}
}
