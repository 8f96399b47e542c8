package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageLayers keeps the layout of docs/architecture.md true: each
// package's dependencies (direct and indirect, non-test code) among
// dockgate's packages are only those of the layers below it.
func TestPackageLayers(t *testing.T) {
	const mod = "github.com/dockgate/dockgate/"
	allowed := map[string][]string{
		"audit":                     nil,
		"internal/dockerd":          nil,
		"internal/signature":        nil,
		"internal/policygen":        nil,
		"test/signing":              nil,
		"authz/internal/dockermux":  nil,
		"authz/internal/jsonfields": nil,
		"authz/internal/strictjson": {"authz/internal/jsonfields"},
		"policies":                  nil,
		"authz/policy":              {"policies", "internal/signature"},
		"authz":                     {"authz/policy", "policies", "authz/internal/dockermux", "authz/internal/strictjson", "authz/internal/jsonfields", "internal/dockerd", "internal/signature"},
		"proxy/internal/h2relay":    nil,
		"proxy/internal/filesync":   nil,
		"proxy":                     {"proxy/internal/h2relay", "proxy/internal/filesync", "audit", "authz", "authz/policy", "policies", "authz/internal/dockermux", "authz/internal/strictjson", "authz/internal/jsonfields", "internal/dockerd", "internal/signature"},
		"tenancy":                   {"authz", "authz/policy", "policies", "authz/internal/dockermux", "authz/internal/strictjson", "authz/internal/jsonfields", "internal/dockerd", "internal/signature"},
		"policytest":                {"authz", "authz/policy", "policies", "authz/internal/dockermux", "authz/internal/strictjson", "authz/internal/jsonfields", "internal/dockerd", "internal/signature"},
		"replay":                    {"audit", "authz", "authz/policy", "policies", "authz/internal/dockermux", "authz/internal/strictjson", "authz/internal/jsonfields", "internal/dockerd", "internal/signature"},
		"suggest":                   {"audit", "authz", "authz/policy", "policies", "authz/internal/dockermux", "authz/internal/strictjson", "authz/internal/jsonfields", "internal/dockerd", "internal/signature"},
		"drift":                     {"audit"},
		"metrics":                   {"proxy/internal/h2relay", "proxy/internal/filesync", "audit", "proxy", "authz", "authz/policy", "policies", "authz/internal/dockermux", "authz/internal/strictjson", "authz/internal/jsonfields", "internal/dockerd", "internal/signature"},
	}
	for pkg, ok := range allowed {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		may := map[string]bool{pkg: true}
		for _, p := range ok {
			may[p] = true
		}
		for _, dep := range strings.Fields(string(out)) {
			if rel, ours := strings.CutPrefix(dep, mod); ours && !may[rel] {
				t.Errorf("%s depends on %s, a package of its own layer or above", pkg, rel)
			}
		}
	}
}
