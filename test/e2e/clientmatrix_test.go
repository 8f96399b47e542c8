package e2e

// The client matrix (issue 13 part 2): clients other than the docker CLI
// that CI users run every day, each run twice — as root straight to
// dockerd, and as a CI tenant (policies/ci/ci.csv) through dockgate — with
// the same result both ways.

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

//go:embed testdata/clients/dockerpy_flow.py
var dockerPyFlow string

// clientTimeout bounds one client run: a hang detector, generous because
// a flow is a dozen daemon round trips on a loaded machine.
const clientTimeout = 4 * time.Minute

// matrixSide is one way a client reaches dockerd in the matrix.
type matrixSide struct {
	name string
	user *tnUser
}

// matrixSides are root on dockerd's own socket and the CI tenant azUID
// through a dockgate on the CI example policy plus extra rows.
func matrixSides(t *testing.T, extra ...string) []matrixSide {
	t.Helper()
	env := testbed.Shared(t)
	g := azStartGate(t, env, tnPolicy(t, extra...))
	c := azDirect(t, env)
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })
	return []matrixSide{
		{name: sideDirect, user: tnNewUser(t, env.DirectHost(), 0)},
		{name: sideProxied, user: tnNewUser(t, g.Host, azUID)},
	}
}

// sameBothWays fails t unless every side's transcript equals the first.
func sameBothWays(t *testing.T, client string, sides []matrixSide, got []string) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i] != got[0] {
			t.Errorf("%s: %s and %s differ\n%s:\n%s\n%s:\n%s", client, sides[0].name, sides[i].name, sides[0].name, got[0], sides[i].name, got[i])
		}
	}
}

func requireFile(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if testbed.Required() {
			t.Fatalf("%s is missing (Debian package %s; .ci/run installs it): %v", path, pkg, err)
		}
		t.Skipf("%s is missing (Debian package %s)", path, pkg)
	}
}

func TestClientDockerPy(t *testing.T) {
	python := "/usr/bin/python3"
	requireFile(t, python, "python3")
	requireFile(t, "/usr/lib/python3/dist-packages/docker/__init__.py", "python3-docker")
	sides := matrixSides(t)
	env := testbed.Shared(t)
	var got []string
	for i, s := range sides {
		script := filepath.Join(s.user.home, "flow.py")
		if err := os.WriteFile(script, []byte(dockerPyFlow), 0o644); err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("ci.local/e2e-matrix-py:%d", i)
		r := s.user.runProg(clientTimeout, nil, python, script, "py", env.Image, tag)
		if r.code != 0 {
			t.Fatalf("docker-py as %s: %v", s.name, r)
		}
		got = append(got, r.stdout)
	}
	// The tags differ by side only in their last digit.
	got[1] = strings.ReplaceAll(got[1], "e2e-matrix-py:1", "e2e-matrix-py:0")
	sameBothWays(t, "docker-py", sides, got)
	if strings.Contains(got[0], `"error"`) {
		t.Errorf("docker-py: a step failed on both sides:\n%s", got[0])
	}
}

// composeFile is a project as docker-compose v1 users write them: a
// service with a named volume and the project's default network.
const composeFile = `version: "2.4"
services:
  web:
    image: %s
    command: ["sh", "-c", "echo hello from web; echo data > /data/f; exec sleep 120"]
    labels:
      e2e.matrix: compose
    volumes:
      - data:/data
volumes:
  data: {}
`

func TestClientDockerComposeV1(t *testing.T) {
	compose := "/usr/bin/docker-compose"
	requireFile(t, compose, "docker-compose")
	sides := matrixSides(t)
	env := testbed.Shared(t)
	// Compose without COMPOSE_INTERACTIVE_NO_CLI execs through the docker
	// CLI it finds in PATH.
	cliDir := filepath.Dir(newCLI(t))
	steps := []struct {
		env  []string
		args []string
	}{
		{nil, []string{"up", "-d"}},
		{nil, []string{"ps", "--services", "--filter", "status=running"}},
		{nil, []string{"logs", "--no-color", "--no-log-prefix", "web"}},
		{[]string{"COMPOSE_INTERACTIVE_NO_CLI=1"}, []string{"exec", "-T", "web", "sh", "-c", "cat /data/f; echo api-exec; exit 4"}},
		{nil, []string{"exec", "-T", "web", "sh", "-c", "echo cli-exec; exit 5"}},
		{nil, []string{"run", "--rm", "-T", "web", "cat", "/data/f"}},
		{nil, []string{"down", "-v", "--timeout", "1"}},
	}
	var got []string
	for _, s := range sides {
		dir := filepath.Join(s.user.home, "proj")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "docker-compose.yml")
		if err := os.WriteFile(file, []byte(fmt.Sprintf(composeFile, env.Image)), 0o644); err != nil {
			t.Fatal(err)
		}
		if s.user.uid != 0 {
			if err := os.Chown(dir, s.user.uid, s.user.uid); err != nil {
				t.Fatal(err)
			}
		}
		var b strings.Builder
		for _, st := range steps {
			envs := append([]string{"PATH=" + cliDir + ":" + os.Getenv("PATH")}, st.env...)
			args := append([]string{"--no-ansi", "-p", "e2ematrix", "-f", file}, st.args...)
			r := s.user.runProg(clientTimeout, envs, compose, args...)
			fmt.Fprintf(&b, "$ %s %s\nexit %d\n%s%s", strings.Join(st.env, " "), strings.Join(st.args, " "), r.code, r.stdout, composeStderr(r.stderr))
		}
		got = append(got, b.String())
	}
	sameBothWays(t, "docker-compose v1", sides, got)
	for _, want := range []string{"exit 4\ndata\napi-exec", "exit 5\ncli-exec", "hello from web"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("docker-compose v1: %q missing from\n%s", want, got[0])
		}
	}
}

// composeStderr keeps compose's progress lines but not its deprecation
// warning and the container name suffixes that vary from run to run; and
// not the one known difference: compose compares the labels of the
// network and volume it finds with its file's, and warns that dockgate's
// owner and expiry labels "changed" (docs/tenancy.md).
func composeStderr(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "--no-ansi option is deprecated") || composeOwnerWarning.MatchString(l) || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, composeRunName.ReplaceAllString(l, "e2ematrix_web_run_X"))
	}
	return strings.Join(keep, "\n") + "\n"
}

var composeOwnerWarning = regexp.MustCompile(`^(Network|Volume) \S+: label "io\.dockgate\.(owner|expires)" has changed\. It may need to be recreated\.$`)

var composeRunName = regexp.MustCompile(`e2ematrix_web_run_[0-9a-f]+`)
