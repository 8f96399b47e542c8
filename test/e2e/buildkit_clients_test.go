package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/moby/buildkit/client/llb"

	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/testbed"
)

// The BuildKit clients the BuildKit tests drive, each proven here against
// dockerd directly: what they build runs and holds what the build wrote.

// bkTimeout bounds one build: it detects a hang on a loaded machine, it
// does not time anything.
const bkTimeout = 3 * time.Minute

// bkDir writes files (name → content) into a new temp dir.
func bkDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bkDial is the Go client on socket, closed at the end of the test.
func bkDial(t *testing.T, ctx context.Context, socket string) *clientflows.BuildKit {
	t.Helper()
	bk, err := clientflows.DialBuildKit(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk.Close() })
	return bk
}

// bkRun runs `docker run --rm tag cmd...` directly and returns its stdout.
func bkRun(t *testing.T, env *testbed.Env, tag string, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	args := append([]string{"--host", env.DirectHost(), "run", "--rm", "--network", "none", tag}, cmd...)
	out, err := exec.CommandContext(ctx, newCLI(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s: %v\n%s", tag, err, out)
	}
	return strings.TrimSpace(string(out))
}

// bkTagged names an image of this test; it is removed at the test's end.
func bkTagged(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	t.Cleanup(func() { azRemoveImage(t, c, name) })
	return name
}

// bkRegistryTags lists the registry's tags of repo.
func bkRegistryTags(t *testing.T, env *testbed.Env, repo string) []string {
	t.Helper()
	resp, err := http.Get("http://" + env.Registry.Addr + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Tags []string `json:"tags"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatalf("tags of %s: %v", repo, err)
		}
	}
	return list.Tags
}

const bkMultiStage = `FROM ` + image + ` AS base
ARG GREETING=unset
RUN echo "$GREETING from base" > /greeting

FROM base AS final
COPY hello.txt /hello.txt
RUN cat /greeting /hello.txt > /built

FROM base AS other
RUN echo "the other stage" > /built
`

// TestBuildKitGoClientDockerfile: the BuildKit Go client, connected as
// buildx's docker driver connects, builds Dockerfiles with the
// dockerfile.v0 frontend into dockerd's image store.
func TestBuildKitGoClientDockerfile(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), 10*bkTimeout)
	defer cancel()
	bk := bkDial(t, ctx, env.Dockerd.Socket)
	if workers, err := bk.Client.ListWorkers(ctx); err == nil {
		for _, w := range workers {
			t.Logf("BuildKit worker %s: snapshotter %q", w.ID, w.Labels["org.mobyproject.buildkit.worker.snapshotter"])
		}
	}

	build := func(t *testing.T, b clientflows.DockerfileBuild) clientflows.BuildResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, bkTimeout)
		defer cancel()
		res, err := bk.BuildDockerfile(ctx, b)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, res.Log)
		}
		return res
	}

	t.Run("multi-stage with a build arg and a target", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bk-multi:1")
		dir := bkDir(t, map[string]string{"Dockerfile": bkMultiStage, "hello.txt": "hello from the context\n"})
		build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, Target: "final", BuildArgs: map[string]string{"GREETING": "hi"}})
		if got, want := bkRun(t, env, tag, "cat", "/built"), "hi from base\nhello from the context"; got != want {
			t.Errorf("the image built prints %q, want %q", got, want)
		}
	})

	t.Run("Dockerfile under another name in a dir of its own", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bk-named:1")
		ctxDir := bkDir(t, map[string]string{"hello.txt": "context file\n"})
		dfDir := bkDir(t, map[string]string{"build.dockerfile": bkMultiStage})
		build(t, clientflows.DockerfileBuild{ContextDir: ctxDir, DockerfileDir: dfDir, Filename: "build.dockerfile", Tag: tag, Target: "other"})
		if got := bkRun(t, env, tag, "cat", "/built"); got != "the other stage" {
			t.Errorf("target other: the image prints %q", got)
		}
	})

	t.Run("a secret reaches the RUN step", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bk-secret:1")
		dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN --mount=type=secret,id=token cp /run/secrets/token /seen\n"})
		build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, Secrets: map[string][]byte{"token": []byte("s3cret-value")}})
		if got := bkRun(t, env, tag, "cat", "/seen"); got != "s3cret-value" {
			t.Errorf("the RUN step saw the secret as %q", got)
		}
	})

	t.Run("a cache mount persists between two builds", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bk-cache:1")
		// The build arg changes, so the RUN step runs again on the same cache.
		dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nARG RUN_ID\n" +
			"RUN --mount=type=cache,target=/cache,id=e2e-bk-cache echo \"$RUN_ID\" >> /cache/runs && cp /cache/runs /runs\n"})
		build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, BuildArgs: map[string]string{"RUN_ID": "first"}})
		build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, BuildArgs: map[string]string{"RUN_ID": "second"}})
		if got := bkRun(t, env, tag, "cat", "/runs"); got != "first\nsecond" {
			t.Errorf("the second build's cache held %q, want both runs", got)
		}
	})

	t.Run("RUN with the host's network under the network.host entitlement", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bk-nethost:1")
		// The host's loopback has an address; a container's empty network
		// namespace would have none.
		dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN cat /proc/net/dev | grep -c : > /ifaces\n"})
		build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, Network: "host"})
		none := bkTagged(t, c, "ci.local/e2e-bk-netnone:1")
		build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: none})
		host, isolated := bkRun(t, env, tag, "cat", "/ifaces"), bkRun(t, env, none, "cat", "/ifaces")
		if host == isolated {
			t.Errorf("the host network's RUN saw %s interfaces, as many as without it", host)
		}
	})

	t.Run("push=true puts the image in the registry", func(t *testing.T) {
		if env.Registry == nil {
			t.Skip("no registry in this bed")
		}
		tag := bkTagged(t, c, env.Registry.Addr+"/e2e-bk-push:1")
		dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN echo pushed > /built\n"})
		build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, Push: true})
		if tags := bkRegistryTags(t, env, "e2e-bk-push"); len(tags) != 1 || tags[0] != "1" {
			t.Errorf("the registry holds tags %v of e2e-bk-push, want [1]", tags)
		}
	})

	t.Run("cache export to and import from the registry", func(t *testing.T) {
		if env.Registry == nil {
			t.Skip("no registry in this bed")
		}
		tag := bkTagged(t, c, "ci.local/e2e-bk-regcache:1")
		ref := env.Registry.Addr + "/e2e-bk-cache:buildcache"
		dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN echo cached > /built\n"})
		b := clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, CacheTo: ref, CacheFrom: ref}
		bctx, cancel := context.WithTimeout(ctx, bkTimeout)
		defer cancel()
		res, err := bk.BuildDockerfile(bctx, b)
		if env.Engine == testbed.EngineDebian {
			// dockerd 20.10's BuildKit exports inline cache only.
			if err == nil || !strings.Contains(err.Error(), "registry") {
				t.Errorf("dockerd 20.10 with a registry cache export: want its refusal, got %v\n%s", err, res.Log)
			}
			t.Logf("dockerd 20.10 refuses it: %v", err)
			return
		}
		if err != nil {
			t.Fatalf("build: %v\n%s", err, res.Log)
		}
		if tags := bkRegistryTags(t, env, "e2e-bk-cache"); len(tags) != 1 || tags[0] != "buildcache" {
			t.Errorf("the registry holds cache tags %v, want [buildcache]", tags)
		}
		if got := bkRun(t, env, tag, "cat", "/built"); got != "cached" {
			t.Errorf("the image prints %q", got)
		}
	})
}

// TestBuildKitGoClientLLB: the Go client sends BuildKit a graph of its own
// (LLB), with and without the entitlements an exec op may ask for.
func TestBuildKitGoClientLLB(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), 5*bkTimeout)
	defer cancel()
	bk := bkDial(t, ctx, env.Dockerd.Socket)
	for _, tc := range []struct {
		name string
		cmd  string
		opts []llb.RunOption
		ents []string
		want func(out string) error
	}{
		{"a plain RUN on the local image", `sh -c "echo llb built > /built; cat /built"`, nil, nil,
			func(out string) error { return wantEqual(out, "llb built") }},
		{"RUN on the host's network with network.host", `sh -c "grep -c : /proc/net/dev > /built"`,
			[]llb.RunOption{llb.Network(llb.NetModeHost)}, []string{"network.host"},
			func(out string) error {
				if out == "" || out == "1" || out == "2" {
					return fmt.Errorf("%s interfaces: not the host's", out)
				}
				return nil
			}},
		{"an insecure RUN with security.insecure", `sh -c "grep CapEff /proc/self/status > /built"`,
			[]llb.RunOption{llb.Security(llb.SecurityModeInsecure)}, []string{"security.insecure"},
			func(out string) error {
				// Every capability dockerd itself may hand out: the RUN
				// was privileged (a plain RUN gets a dozen or so).
				if bnd := bkBoundingSet(t); strings.Fields(out)[1] != bnd {
					return fmt.Errorf("%q: not privileged (the bounding set is %s)", out, bnd)
				}
				return nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := bkTagged(t, c, "ci.local/e2e-bk-llb:1")
			bctx, cancel := context.WithTimeout(ctx, bkTimeout)
			defer cancel()
			st := clientflows.RunOnImage(image, tc.cmd, tc.opts...)
			res, err := bk.SolveLLB(bctx, st, clientflows.LLBSolve{Tag: tag, Entitlements: tc.ents})
			if err != nil && slices.Contains(tc.ents, "security.insecure") && strings.Contains(res.Log, "unable to apply caps") && bkBoundingSet(t) != bkAllCaps {
				// dockerd 20.10's BuildKit asks runc for a fixed list of
				// capabilities, not for those it has itself.
				t.Skipf("the daemon granted security.insecure and ran the step, but runc could not give it every capability: this machine's bounding set is %s\n%v", bkBoundingSet(t), err)
			}
			if err != nil {
				t.Fatalf("solve: %v\n%s", err, res.Log)
			}
			if err := tc.want(bkRun(t, env, tag, "cat", "/built")); err != nil {
				t.Error(err)
			}
		})
	}
}

// bkAllCaps is the bounding set of a host that has every capability
// Linux 5.9 and later know (up to CAP_CHECKPOINT_RESTORE).
const bkAllCaps = "000001ffffffffff"

// bkBoundingSet is this process's capability bounding set, as
// /proc/self/status shows it; dockerd, its child, has the same.
func bkBoundingSet(t *testing.T) string {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

func wantEqual(got, want string) error {
	if got != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}

// TestBuildKitClassicCLI: Debian's docker 20.10 CLI with DOCKER_BUILDKIT=1
// (a session on /session, the build on /build?version=2) builds a
// multi-stage Dockerfile under another name, with a build arg, a target
// and a secret.
func TestBuildKitClassicCLI(t *testing.T) {
	env := testbed.Shared(t)
	if _, err := os.Stat(clientflows.OldCLI); err != nil {
		t.Skipf("no %s: %v", clientflows.OldCLI, err)
	}
	c := azDirect(t, env)
	tag := bkTagged(t, c, "ci.local/e2e-bk-cli:1")
	df := bkMultiStage + "\nFROM final AS secretive\nRUN --mount=type=secret,id=token cp /run/secrets/token /seen\n"
	dir := bkDir(t, map[string]string{"ci.dockerfile": df, "hello.txt": "hello via the session\n", "token": "cli-secret"})
	run := clientflows.HostRunner(env.DirectHost(), t.TempDir())
	r := clientflows.ClassicBuildKitBuild(t.Context(), run, clientflows.OldCLI, bkTimeout,
		"--progress", "plain", "--network", "none", "-f", filepath.Join(dir, "ci.dockerfile"),
		"--build-arg", "GREETING=howdy", "--target", "secretive", "--secret", "id=token,src="+filepath.Join(dir, "token"),
		"-t", tag, dir)
	if r.Code != 0 {
		t.Fatalf("%v", r)
	}
	if got, want := bkRun(t, env, tag, "cat", "/built", "/seen"), "howdy from base\nhello via the session\ncli-secret"; got != want {
		t.Errorf("the image built prints %q, want %q", got, want)
	}
}

// TestBuildKitGoClientAsAProcess: the Go client run as a process of its
// own (the test binary, asked by its environment), as a test runs it as
// another user: it builds, and a failing build's outcome carries
// BuildKit's own message.
func TestBuildKitGoClientAsAProcess(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := clientflows.HostRunner(env.DirectHost(), t.TempDir())
	job := func(t *testing.T, j clientflows.BuildKitJob) (clientflows.BuildKitOutcome, clientflows.Result) {
		t.Helper()
		jobEnv, err := j.Env()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), bkTimeout)
		defer cancel()
		r := run(ctx, jobEnv, self)
		o, err := clientflows.ParseBuildKitOutcome(r.Stdout)
		if err != nil {
			t.Fatalf("%v\n%v", err, r)
		}
		return o, r
	}

	t.Run("a Dockerfile build", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bk-proc:1")
		dir := bkDir(t, map[string]string{"Dockerfile": bkMultiStage, "hello.txt": "from a process of its own\n"})
		o, r := job(t, clientflows.BuildKitJob{Socket: env.Dockerd.Socket, Dockerfile: &clientflows.DockerfileBuild{
			ContextDir: dir, Tag: tag, Target: "final", BuildArgs: map[string]string{"GREETING": "hey"}}})
		if r.Code != 0 || o.Err != "" {
			t.Fatalf("%v\n%s", r, o.Log)
		}
		if got := bkRun(t, env, tag, "cat", "/built"); got != "hey from base\nfrom a process of its own" {
			t.Errorf("the image prints %q", got)
		}
	})

	t.Run("an LLB solve", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bk-proc-llb:1")
		j, err := clientflows.NewLLBJob(t.Context(), env.Dockerd.Socket, clientflows.RunOnImage(image, `sh -c "echo llb in a process > /built"`), clientflows.LLBSolve{Tag: tag})
		if err != nil {
			t.Fatal(err)
		}
		o, r := job(t, j)
		if r.Code != 0 || o.Err != "" {
			t.Fatalf("%v\n%s", r, o.Log)
		}
		if got := bkRun(t, env, tag, "cat", "/built"); got != "llb in a process" {
			t.Errorf("the image prints %q", got)
		}
	})

	t.Run("a failing RUN step's message reaches the outcome", func(t *testing.T) {
		dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN exit 7\n"})
		o, r := job(t, clientflows.BuildKitJob{Socket: env.Dockerd.Socket, Dockerfile: &clientflows.DockerfileBuild{ContextDir: dir}})
		if r.Code != 1 || !strings.Contains(o.Err, "exit code: 7") {
			t.Errorf("want exit 1 and BuildKit's message naming exit code 7; got %q\n%v", o.Err, r)
		}
	})
}

// TestBuildKitClassicCLIThatDoesNotEnd: a build still running when its
// time is up is reported as such (Code -1) and its client killed: what
// tells a hanging client from a refused one.
func TestBuildKitClassicCLIThatDoesNotEnd(t *testing.T) {
	env := testbed.Shared(t)
	if _, err := os.Stat(clientflows.OldCLI); err != nil {
		t.Skipf("no %s: %v", clientflows.OldCLI, err)
	}
	dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN sleep 120\n"})
	run := clientflows.HostRunner(env.DirectHost(), t.TempDir())
	start := time.Now()
	r := clientflows.ClassicBuildKitBuild(t.Context(), run, clientflows.OldCLI, 5*time.Second, "--network", "none", dir)
	if r.Code != -1 {
		t.Errorf("a build of two minutes given 5s: want Code -1, got %v", r)
	}
	if elapsed := time.Since(start); elapsed > 100*time.Second {
		t.Errorf("the client was not stopped at its time: it took %v", elapsed)
	}
}
