package e2e

// The client matrix: clients other than the docker CLI
// that CI users run every day (test/clientflows), each run twice — as root
// straight to dockerd, and as a CI tenant (policies/ci/ci.csv) through
// dockgate — with the same transcript both ways. The docker CLI (the
// current one and Debian's 20.10) and the Go SDK are the rest of this
// package.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/testbed"
)

// clientTimeout bounds one client run: a hang detector, generous because
// a flow is a dozen daemon round trips on a loaded machine.
const clientTimeout = 4 * time.Minute

// matrixSide is one way a client reaches dockerd in the matrix.
type matrixSide struct {
	name string
	user *tnUser
}

// runner runs programs as the side's user on the side's socket.
func (s matrixSide) runner() clientflows.Runner {
	return func(_ context.Context, env []string, prog string, args ...string) clientflows.Result {
		r := s.user.runProg(clientTimeout, env, prog, args...)
		return clientflows.Result{Args: append([]string{prog}, args...), Stdout: r.stdout, Stderr: r.stderr, Code: r.code}
	}
}

// dir makes a directory of the side's user in its home.
func (s matrixSide) dir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(s.user.home, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, s.user.uid, s.user.uid); err != nil {
		t.Fatal(err)
	}
	return d
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
	// The bed's dockerd has no default bridge (BRIEF §9), so
	// testcontainers-go creates its reaper_default network on each side.
	nets := matrixNetworks(t, c)
	t.Cleanup(func() {
		ctx, cancel := azCtx()
		defer cancel()
		for id := range matrixNetworks(t, c) {
			if !nets[id] {
				if err := c.NetworkRemove(ctx, id); err != nil {
					t.Errorf("remove network %s: %v", id, err)
				}
			}
		}
	})
	return []matrixSide{
		{name: sideDirect, user: tnNewUser(t, env.DirectHost(), 0)},
		{name: sideProxied, user: tnNewUser(t, g.Host, azUID)},
	}
}

func matrixNetworks(t *testing.T, c *client.Client) map[string]bool {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	ns, err := c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatalf("list networks on dockerd: %v", err)
	}
	ids := map[string]bool{}
	for _, n := range ns {
		ids[n.ID] = true
	}
	return ids
}

// sameBothWays runs flow on every side and fails t unless the transcripts
// are equal; it returns the first.
func sameBothWays(t *testing.T, client string, sides []matrixSide, flow func(s matrixSide) (string, error)) string {
	t.Helper()
	var got []string
	for _, s := range sides {
		out, err := flow(s)
		if err != nil {
			t.Fatalf("%s as %s: %v\n%s", client, s.name, err, out)
		}
		got = append(got, out)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[0] {
			t.Errorf("%s: %s and %s differ\n%s:\n%s\n%s:\n%s", client, sides[0].name, sides[i].name, sides[0].name, got[0], sides[i].name, got[i])
		}
	}
	return got[0]
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
	requireFile(t, clientflows.Python, "python3")
	requireFile(t, clientflows.DockerPyModule, "python3-docker")
	sides := matrixSides(t)
	env := testbed.Shared(t)
	got := sameBothWays(t, "docker-py", sides, func(s matrixSide) (string, error) {
		return clientflows.DockerPy(context.Background(), s.runner(), s.user.home, env.Image, "ci.local/e2e-matrix-py:"+s.name)
	})
	if strings.Contains(got, `"error"`) {
		t.Errorf("docker-py: a step failed on both sides:\n%s", got)
	}
}

func TestClientDockerComposeV1(t *testing.T) {
	requireFile(t, clientflows.Compose, "docker-compose")
	sides := matrixSides(t)
	env := testbed.Shared(t)
	// Compose without COMPOSE_INTERACTIVE_NO_CLI execs through the docker
	// CLI it finds in PATH.
	cliDir := filepath.Dir(newCLI(t))
	got := sameBothWays(t, "docker-compose v1", sides, func(s matrixSide) (string, error) {
		return clientflows.ComposeV1(context.Background(), s.runner(), s.dir(t, "proj"), env.Image, cliDir)
	})
	for _, want := range []string{"exit 4\ndata\napi-exec", "exit 5\ncli-exec", "hello from web", "$  down -v --timeout 1\nexit 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("docker-compose v1: %q missing from\n%s", want, got)
		}
	}
}

func TestClientTestcontainersGo(t *testing.T) {
	sides := matrixSides(t)
	env := testbed.Shared(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := sameBothWays(t, "testcontainers-go", sides, func(s matrixSide) (string, error) {
		// The test binary's own directory is root's; the user runs a copy
		// in its home (TestMain runs the flow when asked).
		bin := filepath.Join(s.user.home, "flow")
		if err := copyExecutable(self, bin); err != nil {
			return "", err
		}
		r := s.runner()(context.Background(), clientflows.TestcontainersRunEnv(env.Image), bin)
		if r.Code != 0 {
			return r.Stdout, fmt.Errorf("%v", r)
		}
		return r.Stdout, nil
	})
	for _, want := range []string{"running: true", `exec: exit 2: "hello from testcontainers\n`, "terminated"} {
		if !strings.Contains(got, want) {
			t.Errorf("testcontainers-go: %q missing from\n%s", want, got)
		}
	}
}

// TestClientJenkinsDockerWorkflowInside: Jenkins' `inside {}`, the job's
// workspace allowed as a bind. Its parent is root's, so that no job can
// swap it (a replaceable-path otherwise).
func TestClientJenkinsDockerWorkflowInside(t *testing.T) {
	root, err := os.MkdirTemp("/tmp", "dgjenkins")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(root, "workspace", "job")
	for _, d := range []string{ws, ws + "@tmp"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, azUID, azUID); err != nil {
			t.Fatal(err)
		}
	}
	sides := matrixSides(t, "p, role:ci, bind, "+root+"/workspace/**, allow")
	env := testbed.Shared(t)
	// The agent's uid:gid, as docker-workflow passes whoami's.
	user := fmt.Sprintf("%d:%d", azUID, azUID)
	got := sameBothWays(t, "Jenkins docker-workflow inside", sides, func(s matrixSide) (string, error) {
		out, err := clientflows.JenkinsInside(context.Background(), s.runner(), s.user.cli, ws, env.Image, user)
		if b, rerr := os.ReadFile(filepath.Join(ws, "out.txt")); rerr != nil || string(b) != "built 7\n" {
			t.Errorf("%s: the step's file in the workspace: %q %v", s.name, b, rerr)
		}
		os.Remove(filepath.Join(ws, "out.txt"))
		return out, err
	})
	if !strings.Contains(got, fmt.Sprintf("%d\nWS\nbuilt 7\n", azUID)) {
		t.Errorf("the exec step did not run as the job in the workspace:\n%s", got)
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestClientTestcontainersUsesTheDefaultBridge: on a dockerd that has the
// default bridge network (not the bed's, which has none), testcontainers-go
// run as a tenant through dockgate finds `bridge` in its network list and
// creates no `reaper_default` network of its own (docs/tenancy.md).
func TestClientTestcontainersUsesTheDefaultBridge(t *testing.T) {
	env := testbed.Shared(t)
	if env.Bin == "" {
		t.Skip("no dockgate binary in this bed (DOCKGATE_E2E_DIRECT)")
	}
	dir, err := os.MkdirTemp("/tmp", "dgbr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	// A bridge of this test's own, on a subnet per engine: the engines'
	// beds run at once.
	subnet := map[string]string{testbed.EngineDebian: "10.199.31.1/24", testbed.EngineCurrent: "10.199.32.1/24"}[env.Engine]
	name := "dgbr" + filepath.Base(dir)[4:]
	if len(name) > 15 {
		name = name[:15]
	}
	removeBridge, err := testbed.AddBridge(ctx, name, subnet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeBridge(); err != nil {
			t.Error(err)
		}
	})
	d, err := testbed.StartEngineOnBridge(ctx, filepath.Join(dir, "d"), env.Engine, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop the test's dockerd: %v", err)
		}
	})
	if err := d.ImportBusybox(ctx, env.Image); err != nil {
		t.Fatal(err)
	}
	g := azStartGateOn(t, env, d.Host, tnPolicy(t))
	c, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.NetworkInspect(ctx, "bridge", network.InspectOptions{}); err != nil {
		t.Fatalf("the test's dockerd has no default bridge: %v", err)
	}
	before := matrixNetworks(t, c)

	u := tnNewUser(t, g.Host, azUID)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(u.home, "flow")
	if err := copyExecutable(self, bin); err != nil {
		t.Fatal(err)
	}
	r := u.runProg(clientTimeout, clientflows.TestcontainersRunEnv(env.Image), bin)
	if r.code != 0 || !strings.Contains(r.stdout, "terminated") {
		t.Fatalf("testcontainers-go as a tenant: %v", r)
	}
	ns, err := c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if !before[n.ID] {
			t.Errorf("testcontainers-go created network %s (%s) although the tenant sees bridge", n.Name, n.ID)
		}
	}
}
