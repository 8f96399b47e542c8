package e2e

// Tenancy: two CI callers of different uids share
// dockerd through a dockgate whose policy makes them tenants. What they
// create carries the owner label dockgate adds; nobody can set that label
// itself; root is no tenant and creates unlabelled objects. Every check of
// what was created looks at dockerd directly.

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

const (
	// tnUID2 is the second tenant: a uid without a passwd entry, so it has
	// no user: subject and owns by uid (the policy's second tenant row).
	tnUID2      = 65533
	tnOwnerA    = azCaller // user:nobody, uid 65534
	tnOwnerB    = "uid:65533"
	tnOwnerKey  = "io.dockgate.owner"
	tnTestLabel = azLabel + "=tenancy"
)

// tnUser runs the docker CLI as uid (0: root, as the test runs) through a
// dockgate, with a HOME of its own.
type tnUser struct {
	t    *testing.T
	uid  int
	host string
	home string
	cli  string
}

func tnNewUser(t *testing.T, host string, uid int) *tnUser {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "dgtnhome")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, uid); err != nil {
		t.Fatal(err)
	}
	return &tnUser{t: t, uid: uid, host: host, home: home, cli: newCLI(t)}
}

func (u *tnUser) run(args ...string) azResult {
	u.t.Helper()
	return u.runProg(azTimeout, nil, u.cli, args...)
}

// runProg runs prog as the user, with the user's HOME and DOCKER_HOST and
// env added, in the user's home, within timeout (a hang detector).
func (u *tnUser) runProg(timeout time.Duration, env []string, prog string, args ...string) azResult {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var cmd *exec.Cmd
	if u.uid == 0 {
		cmd = exec.CommandContext(ctx, prog, args...)
	} else {
		id := strconv.Itoa(u.uid)
		setpriv := testbed.RequireBinary(u.t, "setpriv")
		cmd = exec.CommandContext(ctx, setpriv, append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", prog}, args...)...)
	}
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + u.home, "DOCKER_HOST=" + u.host, "DOCKER_CLI_HINTS=false", "LANG=C.UTF-8", "DOCKER_BUILDKIT=0"}, env...)
	cmd.Dir = u.home
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := azResult{args: append([]string{prog}, args...), code: -1, stdout: stdout.String(), stderr: stderr.String()}
	if prog == u.cli {
		r.args = args
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err == nil {
		r.code = 0
	}
	if ctx.Err() != nil {
		u.t.Errorf("`%s` as uid %d timed out: %v", strings.Join(r.args, " "), u.uid, r)
	} else if r.code < 0 {
		u.t.Errorf("`%s` as uid %d: %v", strings.Join(r.args, " "), u.uid, err)
	}
	return r
}

func (u *tnUser) must(args ...string) string {
	u.t.Helper()
	r := u.run(args...)
	if r.code != 0 {
		u.t.Fatalf("as uid %d through dockgate: %v", u.uid, r)
	}
	return r.stdout
}

// refused runs a command that dockgate must refuse because of the owner
// label.
func (u *tnUser) refused(args ...string) {
	u.t.Helper()
	r := u.run(args...)
	if r.code == 0 || !strings.Contains(r.stderr, "dockgate:") || !strings.Contains(r.stderr, tnOwnerKey) {
		u.t.Errorf("as uid %d: want a dockgate refusal naming %s: %v", u.uid, tnOwnerKey, r)
	}
}

// ownerRefused runs a command that dockgate must refuse because the
// container it names is not the caller's (the owner fact).
func (u *tnUser) ownerRefused(want string, args ...string) {
	u.t.Helper()
	r := u.run(args...)
	if r.code == 0 || !strings.Contains(r.stderr, "dockgate:") || !strings.Contains(r.stderr, "may not owner "+want) {
		u.t.Errorf("as uid %d: want a dockgate refusal of owner %s: %v", u.uid, want, r)
	}
}

// tnPolicy is the CI policy (tenants own by user) with both test uids in
// role:ci and a second tenant row for callers without a user name.
func tnPolicy(t *testing.T, extra ...string) string {
	return azPolicy(t, false, append([]string{
		"g, uid:" + strconv.Itoa(tnUID2) + ", role:ci",
		"p, role:ci, tenant, uid, allow",
	}, extra...)...)
}

// tnBed starts a dockgate with policy in the shared bed and returns it,
// a client straight to dockerd, and the CLI as the two tenants and as
// root. The containers created from now on are removed when t ends.
func tnBed(t *testing.T, policy string) (g *azGate, c *client.Client, a, b, root *tnUser) {
	t.Helper()
	env := testbed.Shared(t)
	g = azStartGate(t, env, policy)
	c = azDirect(t, env)
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })
	return g, c, tnNewUser(t, g.Host, azUID), tnNewUser(t, g.Host, tnUID2), tnNewUser(t, g.Host, 0)
}

// tnAgent creates and starts a container directly on dockerd, as a
// runner's agent that holds the real socket, removed when t ends.
func tnAgent(t *testing.T, c *client.Client, name string, cmd ...string) string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	agent, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: cmd, Labels: map[string]string{azLabel: "tenancy"}}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { azRemoveContainers(t, c, agent.ID) })
	if err := c.ContainerStart(ctx, agent.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return agent.ID
}

// tnCleanup removes what the test created, directly on dockerd.
func tnCleanup(t *testing.T, c *client.Client, volumes, networks []string) {
	ctx, cancel := azCtx()
	defer cancel()
	for _, v := range volumes {
		c.VolumeRemove(ctx, v, true)
	}
	for _, n := range networks {
		c.NetworkRemove(ctx, n)
	}
}

func TestTenancyOwnerLabelRecorded(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, tnPolicy(t))
	c := azDirect(t, env)
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })
	vols := []string{"e2e-tn-vol-a", "e2e-tn-vol-b", "e2e-tn-vol-root"}
	nets := []string{"e2e-tn-net-a", "e2e-tn-net-b", "e2e-tn-net-root"}
	t.Cleanup(func() { tnCleanup(t, c, vols, nets) })
	img := testbed.DefaultImage

	for i, tc := range []struct {
		name  string
		uid   int
		owner string // "": no owner label
	}{
		{"a", azUID, tnOwnerA},
		{"b", tnUID2, tnOwnerB},
		{"root", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tnNewUser(t, g.Host, tc.uid)
			name := "e2e-tn-" + tc.name
			id := strings.TrimSpace(u.must("run", "-d", "--name", name, "--label", tnTestLabel, "--label", "job=7", img, "sh", "-c", "echo started; exec sleep 600"))
			ctx, cancel := azCtx()
			defer cancel()
			ci, err := c.ContainerInspect(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			labels := ci.Config.Labels
			if labels[tnOwnerKey] != tc.owner || labels["job"] != "7" || labels[azLabel] != "tenancy" {
				t.Errorf("container labels on dockerd: %v, want owner %q and the client's labels", labels, tc.owner)
			}
			if tc.owner == "" {
				if _, ok := labels[tnOwnerKey]; ok {
					t.Errorf("root is no tenant, but its container has an owner label: %v", labels)
				}
			}
			// The container works as it was asked for.
			if out := u.must("exec", name, "echo", "from exec"); out != "from exec\n" {
				t.Errorf("exec: %q", out)
			}
			deadline := time.Now().Add(azAuditWait)
			for {
				out := u.must("logs", name)
				if out == "started\n" {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("logs: %q", out)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			u.must("stop", "-t", "1", name)
			u.must("rm", name)

			// Volumes and networks.
			u.must("volume", "create", "--label", "job=7", vols[i])
			vi, err := c.VolumeInspect(ctx, vols[i])
			if err != nil {
				t.Fatal(err)
			}
			if vi.Labels[tnOwnerKey] != tc.owner || vi.Labels["job"] != "7" {
				t.Errorf("volume labels on dockerd: %v, want owner %q", vi.Labels, tc.owner)
			}
			u.must("volume", "rm", vols[i])
			if r := u.run("network", "create", "--internal", "--label", "job=7", nets[i]); r.code != 0 {
				t.Fatalf("network create: %v", r)
			}
			ni, err := c.NetworkInspect(ctx, nets[i], network.InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ni.Labels[tnOwnerKey] != tc.owner || ni.Labels["job"] != "7" || !ni.Internal {
				t.Errorf("network on dockerd: labels %v internal %v, want owner %q", ni.Labels, ni.Internal, tc.owner)
			}
			u.must("network", "rm", nets[i])
		})
	}

}

func TestTenancyOwnerLabelForgingRefused(t *testing.T) {
	g, c, a, b, root := tnBed(t, tnPolicy(t))
	before := azContainers(t, c)
	img := testbed.DefaultImage

	for _, u := range []*tnUser{a, b, root} {
		u.refused("run", "--rm", "--label", tnOwnerKey+"="+tnOwnerA, img, "true")
		u.refused("create", "--label", tnOwnerKey+"=", img, "true")
		u.refused("volume", "create", "--label", tnOwnerKey+"="+tnOwnerB, "e2e-tn-forged")
		u.refused("network", "create", "--internal", "--label", tnOwnerKey+"="+tnOwnerB, "e2e-tn-forged")
	}
	// commit --change LABEL and --change with a quoted key.
	id := strings.TrimSpace(a.must("create", "--label", tnTestLabel, img, "true"))
	a.refused("commit", "--change", "LABEL "+tnOwnerKey+"="+tnOwnerB, id, "ci.local/e2e-tn-forged:1")
	a.refused("commit", "--change", `LABEL "`+tnOwnerKey+`"=x`, id, "ci.local/e2e-tn-forged:1")

	// Raw bodies: the JSON key Labels in any spelling dockerd's decoder
	// accepts.
	for _, body := range []string{
		`{"Image":"` + img + `","labels":{"` + tnOwnerKey + `":"x"}}`,
		`{"Image":"` + img + `","LABELS":{"` + tnOwnerKey + `":"x"}}`,
		`{"Image":"` + img + `","Label\u017f":{"` + tnOwnerKey + `":"x"}}`,
		`{"Image":"` + img + `","Labels":{"io.dockgate.\u006fwner":"x"}}`,
	} {
		r := rawDo(t, g.Host, http.MethodPost, "/v1.41/containers/create", nil, []byte(body))
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), tnOwnerKey) {
			t.Errorf("%s: %d %s, want 403 naming %s", body, r.status, r.body, tnOwnerKey)
		}
	}
	r := rawDo(t, g.Host, http.MethodPost, "/v1.41/volumes/create", nil, []byte(`{"Name":"e2e-tn-forged","lAbElS":{"`+tnOwnerKey+`":"x"}}`))
	if r.status != http.StatusForbidden {
		t.Errorf("volume create with a folded Labels key: %d %s", r.status, r.body)
	}

	// Nothing forged reached dockerd.
	for id := range azNewContainers(t, c, before) {
		ctx, cancel := azCtx()
		ci, err := c.ContainerInspect(ctx, id)
		cancel()
		if err == nil {
			if v, ok := ci.Config.Labels[tnOwnerKey]; ok && v != tnOwnerA {
				t.Errorf("container %.12s has the owner label %q", id, v)
			}
		}
	}
	for _, v := range azVolumes(t, c) {
		if v == "e2e-tn-forged" {
			t.Errorf("the forged volume was created")
			azRemoveVolume(t, c, v)
		}
	}
	ctx, cancel := azCtx()
	defer cancel()
	if _, err := c.NetworkInspect(ctx, "e2e-tn-forged", network.InspectOptions{}); err == nil {
		t.Errorf("the forged network was created")
		c.NetworkRemove(ctx, "e2e-tn-forged")
	}
	if _, err := c.ImageInspect(ctx, "ci.local/e2e-tn-forged:1"); err == nil {
		t.Errorf("the forged commit was created")
	}
}

// TestTenancyOwnerFact: a tenant cannot read the logs of,
// exec into, stop or remove another tenant's container or one created
// directly on dockerd (the agent's), by name or by short ID; each still can
// on its own. What was refused is checked on dockerd.
func TestTenancyOwnerFact(t *testing.T) {
	_, c, a, b, _ := tnBed(t, tnPolicy(t))
	img := testbed.DefaultImage
	agentID := tnAgent(t, c, "e2e-tn-agent", "sh", "-c", "echo agent; exec sleep 600")
	idA := strings.TrimSpace(a.must("run", "-d", "--name", "e2e-tn-own-a", "--label", tnTestLabel, img, "sh", "-c", "echo a; exec sleep 600"))
	idB := strings.TrimSpace(b.must("run", "-d", "--name", "e2e-tn-own-b", "--label", tnTestLabel, img, "sh", "-c", "echo b; exec sleep 600"))

	running := func(id string) bool {
		t.Helper()
		ctx, cancel := azCtx()
		defer cancel()
		ci, err := c.ContainerInspect(ctx, id)
		return err == nil && ci.State != nil && ci.State.Running
	}
	for _, tc := range []struct {
		name string
		u    *tnUser
		id   string
		refs []string
		want string
	}{
		{"a on b's", a, idB, []string{"e2e-tn-own-b", idB[:12]}, "other"},
		{"b on a's", b, idA, []string{"e2e-tn-own-a", idA[:12]}, "other"},
		{"a on the agent's", a, agentID, []string{"e2e-tn-agent", agentID[:12]}, "none"},
		{"b on the agent's", b, agentID, []string{"e2e-tn-agent", agentID[:12]}, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outer := tc.u.t
			tc.u.t = t
			defer func() { tc.u.t = outer }()
			for _, ref := range tc.refs {
				tc.u.ownerRefused(tc.want, "logs", ref)
				tc.u.ownerRefused(tc.want, "exec", ref, "echo", "in")
				tc.u.ownerRefused(tc.want, "inspect", ref)
				tc.u.ownerRefused(tc.want, "stop", "-t", "1", ref)
				tc.u.ownerRefused(tc.want, "rm", "-f", ref)
			}
			if !running(tc.id) {
				t.Errorf("BYPASS: container %.12s no longer runs", tc.id)
			}
			if ids := azExecIDs(t, c, tc.id); len(ids) > 0 {
				t.Errorf("BYPASS: exec instances were created in %.12s: %v", tc.id, ids)
			}
		})
	}

	// Each on its own, by name and by short ID.
	for _, tc := range []struct {
		name, cname, id, out string
		u                    *tnUser
	}{
		{"a", "e2e-tn-own-a", idA, "a\n", a},
		{"b", "e2e-tn-own-b", idB, "b\n", b},
	} {
		t.Run("own "+tc.name, func(t *testing.T) {
			outer := tc.u.t
			tc.u.t = t
			defer func() { tc.u.t = outer }()
			deadline := time.Now().Add(azAuditWait)
			for {
				out := tc.u.must("logs", tc.cname)
				if out == tc.out {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("logs: %q", out)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if out := tc.u.must("exec", tc.id[:12], "echo", "in"); out != "in\n" {
				t.Errorf("exec: %q", out)
			}
			tc.u.must("stop", "-t", "1", tc.id[:12])
			tc.u.must("rm", "-f", tc.cname)
			ctx, cancel := azCtx()
			defer cancel()
			if _, err := c.ContainerInspect(ctx, tc.id); err == nil {
				t.Errorf("container %.12s was not removed", tc.id)
			}
		})
	}
}
