package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/test/testbed"
)

// bxPlugin is the docker-buildx plugin, or a skip naming how to get it.
func bxPlugin(t *testing.T) string {
	t.Helper()
	p := testbed.BuildxPlugin()
	if p == "" {
		t.Skip("buildx is built with the current Engine: run with DOCKGATE_E2E_ENGINE unset, all or current once")
	}
	return p
}

// TestBuildxThroughDockgate: `docker buildx build` with the docker driver
// (BuildKit inside dockerd, reached through the /session and /grpc
// upgrades; buildx runs the Dockerfile frontend through BuildKit's gateway
// API). A CI job builds what the CI example policy allows, judged call by
// call and Dockerfile by Dockerfile, and a build FROM an unapproved image
// is refused with dockgate's message, printed by buildx itself (not by a
// fallback to the docker-container driver failing on something else);
// nothing is built. Root, whom the policy allows everything, builds
// through dockgate as it does directly.
func TestBuildxThroughDockgate(t *testing.T) {
	env := testbed.Shared(t)
	plugin := bxPlugin(t)
	c := azDirect(t, env)
	g := azStartGate(t, env, azPolicy(t, false))
	const dockerfile = "FROM " + image + "\nRUN echo built > /built\n"

	u := azNewUser(t, "unix://"+g.Socket)
	u.writeFile(".docker/cli-plugins/.keep", "")
	if err := os.Symlink(plugin, filepath.Join(u.home, ".docker/cli-plugins/docker-buildx")); err != nil {
		t.Fatal(err)
	}
	okDir := filepath.Dir(u.writeFile("ok/Dockerfile", dockerfile))
	const jobTag = "ci.local/e2e-bx-job:1"
	t.Cleanup(func() { azRemoveImage(t, c, jobTag) })
	if r := u.run("", nil, "buildx", "build", "--progress", "plain", "--network", "none", "-t", jobTag, okDir); r.code != 0 {
		t.Fatalf("a CI job's buildx build of an approved image: %v", r)
	}
	ctx, cancel := azCtx()
	defer cancel()
	if out, err := exec.CommandContext(ctx, newCLI(t), "--host", env.DirectHost(), "run", "--rm", "--network", "none", jobTag, "cat", "/built").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "built" {
		t.Errorf("the image the job built: %v %q", err, out)
	}
	// A CI job is a tenant: its image is its own (the owner label went
	// into its client-side frontend's solve).
	if ii, err := c.ImageInspect(t.Context(), jobTag); err != nil || ii.Config == nil || ii.Config.Labels["io.dockgate.owner"] == "" {
		t.Errorf("the job's image carries no owner label: %v", err)
	}
	// By the buildx plugin, a child of the CLI: its client-side frontend's
	// solve, with the Dockerfile it read.
	g.azRecord(t, "the job's judged Dockerfile", func(rec map[string]any) bool {
		return rec["path"] == "/moby.filesync.v1.FileSync/DiffCopy" && rec["decision"] == "allow" && strings.HasSuffix(fmt.Sprint(rec["caller"].(map[string]any)["exe"]), "buildx")
	})

	badDir := filepath.Dir(u.writeFile("bad/Dockerfile", "ARG BASE="+image+"\nFROM $BASE\nRUN true\n"))
	const badTag = "ci.local/e2e-bx-job-refused:1"
	t.Cleanup(func() { azRemoveImage(t, c, badTag) })
	r := u.run("", nil, "buildx", "build", "--progress", "plain", "--network", "none", "--build-arg", "BASE=docker.io/library/alpine:3.20", "-t", badTag, badDir)
	want := "dockgate: " + azCaller + " may not image docker.io/library/alpine:3.20"
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, want) {
		t.Errorf("a CI job's buildx build FROM an unapproved image: want it refused with %q; got %v", want, r)
	}
	if strings.Contains(r.stdout+r.stderr, "docker-container driver") {
		t.Errorf("buildx fell back to the docker-container driver: %v", r)
	}
	if _, err := c.ImageInspect(t.Context(), badTag); err == nil {
		t.Errorf("BYPASS: %s was built", badTag)
	}

	// Root: allowed everything, through the same dockgate.
	const rootTag = "ci.local/e2e-bx-root:1"
	t.Cleanup(func() { azRemoveImage(t, c, rootTag) })
	bxBuildAsRoot(t, "unix://"+g.Socket, plugin, dockerfile, rootTag)
	run, err := exec.CommandContext(ctx, newCLI(t), "--host", env.DirectHost(), "run", "--rm", rootTag, "cat", "/built").CombinedOutput()
	if err != nil || strings.TrimSpace(string(run)) != "built" {
		t.Errorf("the image root built: %v %q", err, run)
	}
}

// bxBuildAsRoot runs `docker buildx build` as root against host.
func bxBuildAsRoot(t *testing.T, host, plugin, dockerfile, tag string) {
	t.Helper()
	cfg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(plugin, filepath.Join(cfg, "cli-plugins", "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := azCtx()
	defer cancel()
	// --network none: the bed's dockerd has no default bridge.
	cmd := exec.CommandContext(ctx, newCLI(t), "buildx", "build", "--progress", "plain", "--network", "none", "-t", tag, dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cfg, "DOCKER_CONFIG=" + cfg, "DOCKER_HOST=" + host, "DOCKER_CLI_HINTS=false"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("root's buildx build through %s: %v\n%s", host, err, out)
	}
}

// TestBuildKitDoesNotMakeALocalImageApproved: on Engine 29 a BuildKit
// build FROM a local image records that image as pulled from its name
// (containerd's distribution-source label, which dockerd reports as
// Identity.Pull). An unapproved image tagged with an approved name
// directly on the daemon, then used as a base by anyone's build, must
// still not run as approved: dockgate asks the registry whether it serves
// that digest under that name.
func TestBuildKitDoesNotMakeALocalImageApproved(t *testing.T) {
	env := testbed.Shared(t)
	plugin := bxPlugin(t)
	if env.Registry == nil {
		t.Skip("no registry in this bed")
	}
	c := azDirect(t, env)
	name := env.Registry.Addr + "/e2e-bxforge/app:1"
	ctx, cancel := azCtx()
	defer cancel()
	if err := c.ImageTag(ctx, env.Image, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { azRemoveImage(t, c, name); azRemoveImage(t, c, "ci.local/e2e-bxforge:1") })
	bxBuildAsRoot(t, env.DirectHost(), plugin, "FROM "+name+"\nRUN true\n", "ci.local/e2e-bxforge:1")
	if env.Engine == testbed.EngineCurrent {
		raw, err := azSend(t, env.Dockerd.Socket, azReq("GET", "/v1.53/images/"+name+"/json", false, ""))
		if err != nil || len(raw) != 1 || !strings.Contains(raw[0].body, `"Repository":"`+strings.Split(env.Registry.Addr, ":")[0]+`/e2e-bxforge/app"`) {
			t.Logf("dockerd no longer reports the build's base as pulled from its name (the case this test guards): %v", raw)
		}
	}
	g := azStartGate(t, env, azPolicy(t, false, "p, role:ci, image, "+env.Registry.Addr+"/e2e-bxforge/**, allow"))
	u := azNewUser(t, "unix://"+g.Socket)
	r := u.run("", nil, "run", "--rm", name, "true")
	want := "dockgate: " + azCaller + " may not local-image " + name + ": no rule allows it"
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("BYPASS? the locally tagged image under the approved name: want %q, got %v", want, r)
	}
}
