package policytest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
)

// Every shipped policy carries tests of what its comments promise, and
// they pass: make test fails when a policy change breaks one.
func TestShippedPolicies(t *testing.T) {
	dirs, _ := filepath.Glob("../policies/*")
	examples, _ := filepath.Glob("../policies/examples/*")
	var policies []string
	for _, d := range append(dirs, examples...) {
		if csv, _ := filepath.Glob(filepath.Join(d, "*.csv")); len(csv) > 0 {
			policies = append(policies, d)
		}
	}
	if len(policies) < 7 {
		t.Fatalf("found %d shipped policies: %v", len(policies), policies)
	}
	for _, dir := range policies {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			paths, err := FindFiles(dir)
			if err != nil || len(paths) == 0 {
				t.Fatalf("%s has no policy tests (%v)", dir, err)
			}
			p, err := policy.LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []*File
			for _, path := range paths {
				f, err := ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
			}
			results, err := Run(context.Background(), p, files)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if Print(&out, results, false) > 0 {
				t.Errorf("%s", out.String())
			}
		})
	}
}

func TestMalformedTestFiles(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		msg        string
	}{
		{"a misspelt field", "tests:\n  - name: a\n    as: [user:a]\n    method: GET\n    path: /_ping\n    expext: allow\n", 6, `unknown field "expext"`},
		{"no expectation", "tests:\n  - name: a\n    as: [user:a]\n    method: GET\n    path: /_ping\n", 2, "want allow or deny"},
		{"no caller", "tests:\n  - name: a\n    method: GET\n    path: /_ping\n    expect: allow\n", 2, "want one caller"},
		{"two callers", "tests:\n  - name: a\n    as: [user:a]\n    container: {name: c}\n    method: GET\n    path: /_ping\n    expect: allow\n", 2, "want one caller"},
		{"a tenant's container without its creator", "tests:\n  - name: a\n    container: {name: c, tenant: user:a}\n    method: GET\n    path: /_ping\n    expect: allow\n", 2, "needs created_by"},
		{"a refused fact on an allow", "tests:\n  - name: a\n    as: [x]\n    method: GET\n    path: /_ping\n    expect: allow\n    refused: endpoint x\n", 2, "go with expect: deny"},
		{"two cases of one name", "tests:\n  - {name: a, as: [x], method: GET, path: /_ping, expect: allow}\n  - {name: a, as: [x], method: GET, path: /_ping, expect: allow}\n", 3, "also on line 2"},
		{"an undeclared body file", "tests:\n  - {name: a, as: [x], method: POST, path: /containers/create, body_file: nope.json, expect: allow}\n", 2, "body_file"},
		{"not YAML", "tests: [\n", 0, ""},
		{"no tests", "other: 1\n", 1, "field other not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x_test.yaml")
			os.WriteFile(path, []byte(tt.yaml), 0o644)
			_, err := ReadFile(path)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a test file error", err)
			}
			if tt.line > 0 && fe.Line != tt.line && !strings.Contains(fe.Msg, "line "+strconv.Itoa(tt.line)) {
				t.Errorf("error %q, want it on line %d", err, tt.line)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error %q, want %q after the file name", err, tt.msg)
			}
		})
	}
}

// A case that needs an object it does not declare fails and says so,
// rather than pass on a guess.
func TestUndeclaredObjectFails(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.csv"), []byte("p, *, endpoint, *, allow\np, *, tenant, user, allow\np, *, owner, **, allow\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "p_test.yaml"), []byte("tests:\n  - {name: start, as: [user:a], method: POST, path: /containers/web/start, expect: allow}\n"), 0o644)
	p, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(filepath.Join(dir, "p_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), p, []*File{f})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Pass || !strings.Contains(strings.Join(res[0].Why, " "), "declare container web under objects") {
		t.Errorf("pass %v, why %q", res[0].Pass, res[0].Why)
	}
}
