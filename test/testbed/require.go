package testbed

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// DefaultImage is the busybox image every bed has.
const DefaultImage = "test/busybox:1"

// Required reports whether DOCKGATE_E2E=required: a missing prerequisite is
// then a failure, not a reason to skip (CI sets it so that a machine without
// dockerd cannot pass by skipping everything).
func Required() bool { return os.Getenv("DOCKGATE_E2E") == "required" }

// Missing lists what this machine lacks for a bed: root, the engines
// (Debian's dockerd, the go tool to build the current Engine), the static
// busybox, docker-registry. Empty means a bed can start.
func Missing() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (dockerd needs it)")
	}
	engines, err := Engines()
	if err != nil {
		missing = append(missing, err.Error())
	}
	for _, engine := range engines {
		switch engine {
		case EngineCurrent:
			if !engineBuilt(EngineCacheDir()) {
				if _, err := exec.LookPath("go"); err != nil {
					missing = append(missing, "the go tool to build the current Engine into "+EngineCacheDir())
				}
			}
		default:
			if _, err := exec.LookPath("dockerd"); err != nil {
				missing = append(missing, "dockerd (apt-get install docker.io)")
			}
		}
	}
	if busyboxPath() == "" {
		missing = append(missing, "busybox (apt-get install busybox-static)")
	}
	if _, err := exec.LookPath("docker-registry"); err != nil {
		missing = append(missing, "docker-registry (apt-get install docker-registry)")
	}
	return missing
}

// Require skips t when the machine lacks what a bed needs, or fails it with
// the list of what is missing when DOCKGATE_E2E=required.
func Require(t testing.TB) {
	t.Helper()
	missing := Missing()
	if len(missing) == 0 {
		return
	}
	msg := "testbed: missing " + strings.Join(missing, ", ")
	if Required() {
		t.Fatal(msg + " (DOCKGATE_E2E=required)")
	}
	t.Skip(msg + " (set DOCKGATE_E2E=required to fail instead)")
}

// RequireBinary returns the path of an executable that some tests need
// beyond the bed (a docker CLI), skipping or failing like Require without it.
func RequireBinary(t testing.TB, path string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err == nil {
		return p
	}
	if Required() {
		t.Fatalf("testbed: missing %s (DOCKGATE_E2E=required)", path)
	}
	t.Skipf("testbed: missing %s", path)
	return ""
}

func busyboxPath() string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}
