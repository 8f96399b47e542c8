package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"

	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/testbed"
)

// BuildKit builds through dockgate under the CI example policy: judged
// like legacy builds, call by call and Dockerfile by Dockerfile.

// bkRefusedBuilds is how many times a refused /build is repeated (the 20.10
// CLI hung after one, rarely, until dockgate ended the refused build's
// session: proxy/session_end.go).
const bkRefusedBuilds = 10

// bkUnapproved is an image no row of the CI policy approves.
const bkUnapproved = "docker.io/library/alpine:3.20"

// TestBuildKitJudgedGoClient: the BuildKit Go client, connected as
// buildx's docker driver connects, as a CI job (root made a member of
// role:ci, so that the client runs in the test process). What the CI
// policy allows builds, runs, and is on record with every fact judged;
// every other way of naming a base image, and every setting that reaches
// the host, is refused with dockgate's message, and nothing is built.
func TestBuildKitJudgedGoClient(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	g := azStartGate(t, env, azPolicy(t, true))
	ctx, cancel := context.WithTimeout(t.Context(), 20*bkTimeout)
	defer cancel()
	bk := bkDial(t, ctx, g.Socket)

	build := func(t *testing.T, b clientflows.DockerfileBuild) (clientflows.BuildResult, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, bkTimeout)
		defer cancel()
		return bk.BuildDockerfile(ctx, b)
	}

	t.Run("an approved multi-stage build with a build arg and a target", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bkj-multi:1")
		dir := bkDir(t, map[string]string{"Dockerfile": bkMultiStage, "hello.txt": "judged and built\n"})
		res, err := build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, Target: "final", BuildArgs: map[string]string{"GREETING": "hi"}})
		if err != nil {
			t.Fatalf("build: %v\n%s", err, res.Log)
		}
		if got, want := bkRun(t, env, tag, "cat", "/built"), "hi from base\njudged and built"; got != want {
			t.Errorf("the image built prints %q, want %q", got, want)
		}
		// A CI job is a tenant: its image is its own, as a classic build's.
		if ii, err := c.ImageInspect(t.Context(), tag); err != nil || ii.Config == nil || ii.Config.Labels["io.dockgate.owner"] == "" {
			t.Errorf("the tenant's image carries no owner label: %v", err)
		} else {
			t.Logf("owner label: %s", ii.Config.Labels["io.dockgate.owner"])
		}
		g.azRecord(t, "the allowed Solve", func(rec map[string]any) bool {
			return rec["path"] == "/moby.buildkit.v1.Control/Solve" && rec["decision"] == "allow" &&
				bkHasFact(rec, "image-target", "ci.local/e2e-bkj-multi:1")
		})
		g.azRecord(t, "the Dockerfile judged", func(rec map[string]any) bool {
			return rec["path"] == "/moby.filesync.v1.FileSync/DiffCopy" && rec["decision"] == "allow" &&
				(bkHasFact(rec, "image", azImageFact) || bkHasFact(rec, "local-image", azImageFact))
		})
	})

	t.Run("cache mounts and secrets, as a CI job uses them", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bkj-cache:1")
		id := fmt.Sprintf("e2e-bkj-cache-%d", time.Now().UnixNano())
		df := "FROM " + image + "\nARG RUN_ID\nRUN --mount=type=cache,target=/cache,id=" + id + " sh -c 'echo $RUN_ID >> /cache/runs; wc -l < /cache/runs > /runs'\n" +
			"RUN --mount=type=secret,id=token cp /run/secrets/token /seen\n"
		dir := bkDir(t, map[string]string{"Dockerfile": df})
		for i := 0; i < 2; i++ {
			b := clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, Secrets: map[string][]byte{"token": []byte("judged-secret")},
				BuildArgs: map[string]string{"RUN_ID": fmt.Sprint(i)}}
			if res, err := build(t, b); err != nil {
				t.Fatalf("build %d: %v\n%s", i+1, err, res.Log)
			}
		}
		if got, want := bkRun(t, env, tag, "cat", "/runs", "/seen"), "2\njudged-secret"; got != want {
			t.Errorf("the image prints %q, want %q (the cache mount kept between builds, the secret reached RUN)", got, want)
		}
	})

	refusals := []struct {
		name       string
		dockerfile string
		b          clientflows.DockerfileBuild
		want       string
	}{
		{name: "FROM an unapproved image", dockerfile: "FROM " + bkUnapproved + "\nRUN true\n", want: bkUnapproved},
		{name: "FROM an unapproved image through an ARG default", dockerfile: "ARG BASE=" + bkUnapproved + "\nFROM $BASE\nRUN true\n", want: bkUnapproved},
		{name: "FROM an approved ARG default overridden by a build arg", dockerfile: "ARG BASE=" + image + "\nFROM $BASE\nRUN true\n",
			b: clientflows.DockerfileBuild{BuildArgs: map[string]string{"BASE": bkUnapproved}}, want: bkUnapproved},
		{name: "COPY --from an unapproved image", dockerfile: "FROM " + image + "\nCOPY --from=" + bkUnapproved + " /etc/os-release /x\n", want: bkUnapproved},
		{name: "RUN --mount=from an unapproved image", dockerfile: "FROM " + image + "\nRUN --mount=type=bind,from=" + bkUnapproved + ",target=/m true\n", want: bkUnapproved},
		{name: "a syntax line naming an unapproved frontend", dockerfile: "# syntax=docker.io/evil/frontend:1\nFROM " + image + "\n", want: "docker.io/evil/frontend:1"},
		{name: "RUN on the host's network", dockerfile: "FROM " + image + "\nRUN true\n", b: clientflows.DockerfileBuild{Network: "host"}, want: "network=host"},
		{name: "an image named in the approved namespace", dockerfile: "FROM " + image + "\n",
			b: clientflows.DockerfileBuild{Tag: "registry.example.com/approved/smuggled:1"}, want: "image-target registry.example.com/approved/smuggled:1"},
		{name: "a context override to an unapproved image", dockerfile: "FROM " + image + "\n",
			b: clientflows.DockerfileBuild{FrontendAttrs: map[string]string{"context:" + image: "docker-image://" + bkUnapproved}}, want: bkUnapproved},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			b := tc.b
			b.ContextDir = bkDir(t, map[string]string{"Dockerfile": tc.dockerfile})
			if b.Tag == "" {
				b.Tag = "ci.local/e2e-bkj-refused:1"
			}
			bkTagged(t, c, b.Tag)
			res, err := build(t, b)
			bkWantRefused(t, err, res, tc.want)
			if _, err := c.ImageInspect(t.Context(), b.Tag); err == nil {
				t.Errorf("BYPASS: %s was built", b.Tag)
			}
		})
	}

	t.Run("refused: the same refusal, many times, ends the build every time", func(t *testing.T) {
		dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + bkUnapproved + "\n"})
		for i := 0; i < 10; i++ {
			res, err := build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: "ci.local/e2e-bkj-refused:1"})
			bkWantRefused(t, err, res, bkUnapproved)
			res, err = build(t, clientflows.DockerfileBuild{ContextDir: dir, Tag: "ci.local/e2e-bkj-refused:1", Network: "host"})
			bkWantRefused(t, err, res, "network=host")
		}
	})

	t.Run("refused: an LLB source outside the approved set", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bkj-llb:1")
		res, err := bk.SolveLLB(ctx, clientflows.RunOnImage(bkUnapproved, "true"), clientflows.LLBSolve{Tag: tag})
		bkWantRefused(t, err, res, bkUnapproved)
	})
	t.Run("refused: an LLB step with security.insecure", func(t *testing.T) {
		tag := bkTagged(t, c, "ci.local/e2e-bkj-insecure:1")
		res, err := bk.SolveLLB(ctx, clientflows.RunOnImage(image, "true", llb.Security(llb.SecurityModeInsecure)),
			clientflows.LLBSolve{Tag: tag, Entitlements: []string{"security.insecure"}})
		bkWantRefused(t, err, res, "privileged build")
	})
	t.Run("refused: an approved LLB solve into dockerd's store, which would carry no owner", func(t *testing.T) {
		// A CI job is a tenant: what it puts into dockerd's store must carry
		// its owner label, which BuildKit gives a raw LLB build's image no
		// way to hold.
		tag := bkTagged(t, c, "ci.local/e2e-bkj-llb-ok:1")
		res, err := bk.SolveLLB(ctx, clientflows.RunOnImage(image, `sh -c "echo judged llb > /built"`), clientflows.LLBSolve{Tag: tag})
		bkWantRefused(t, err, res, "may not build buildkit")
	})
}

// TestBuildKitJudgedPushNeedsPush: a build that pushes what it exports
// (push=true, which Engine 29's exporter does by itself) is judged as a
// push: a CI job that may not push is refused, and nothing is pushed.
func TestBuildKitJudgedPushNeedsPush(t *testing.T) {
	env := testbed.Shared(t)
	if env.Registry == nil {
		t.Skip("no registry in this bed")
	}
	c := azDirect(t, env)
	repo := "e2e-bkj-push/app"
	name := env.Registry.Addr + "/" + repo + ":1"
	g := azStartGate(t, env, azPolicy(t, true, "p, role:ci, image-target, "+env.Registry.Addr+"/e2e-bkj-push/**, allow", "p, role:ci, endpoint, image.push, deny"))
	ctx, cancel := context.WithTimeout(t.Context(), 2*bkTimeout)
	defer cancel()
	bk := bkDial(t, ctx, g.Socket)
	bkTagged(t, c, name)
	dir := bkDir(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN echo pushed > /built\n"})
	res, err := bk.BuildDockerfile(ctx, clientflows.DockerfileBuild{ContextDir: dir, Tag: name, Push: true})
	bkWantRefused(t, err, res, "endpoint image.push")
	if tags := bkRegistryTags(t, env, repo); len(tags) != 0 {
		t.Errorf("BYPASS: the registry has %s:%v", repo, tags)
	}
}

// TestBuildKitJudgedClassicCLI: Debian's 20.10 CLI with DOCKER_BUILDKIT=1
// (/session, then /build?version=2) as a CI job: an approved build passes,
// a second build of the same Dockerfile too (dockerd asks for it again),
// and a refused Dockerfile ends the client every time, with dockgate's
// message.
func TestBuildKitJudgedClassicCLI(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	g := azStartGate(t, env, azPolicy(t, false))
	u := azNewUser(t, "unix://"+g.Socket)
	u.cli = testbed.RequireBinary(t, clientflows.OldCLI)
	build := func(dir, tag string, args ...string) azResult {
		return u.run("", []string{"DOCKER_BUILDKIT=1"}, append([]string{"build", "--progress", "plain", "--network", "none", "-t", tag}, append(args, dir)...)...)
	}

	tag := bkTagged(t, c, "ci.local/e2e-bkj-cli:1")
	u.writeFile("ok/Dockerfile", bkMultiStage)
	u.writeFile("ok/hello.txt", "through the session\n")
	for i := 0; i < 2; i++ {
		if r := build(u.home+"/ok", tag, "--target", "final", "--build-arg", "GREETING=hey"); r.code != 0 {
			t.Fatalf("build %d: %v", i+1, r)
		}
	}
	if got, want := bkRun(t, env, tag, "cat", "/built"), "hey from base\nthrough the session"; got != want {
		t.Errorf("the image built prints %q, want %q", got, want)
	}

	u.writeFile("bad/Dockerfile", "ARG BASE="+image+"\nFROM $BASE\nRUN true\n")
	refused := bkTagged(t, c, "ci.local/e2e-bkj-cli-refused:1")
	for i := 0; i < 10; i++ {
		r := build(u.home+"/bad", refused, "--build-arg", "BASE="+bkUnapproved)
		// The client exits every time, with dockgate's message: dockgate
		// ends the /build's progress stream with it, whatever dockerd
		// makes of the refused transfer (BuildKit now and then reports
		// only "context canceled").
		if r.code == 0 || r.code == -1 || !strings.Contains(r.stderr, "dockgate: ") || !strings.Contains(r.stderr, bkUnapproved) {
			t.Fatalf("refused build %d: want the client to exit with dockgate's message naming %s; got %v\n%s", i+1, bkUnapproved, r, bkLastRecords(t, g, 8))
		}
	}
	// A /build refused outright (its query asks for the host's network),
	// with the session already open or about to open: the client exits
	// every time. This CLI closes its session itself only when the
	// session was up before the refusal; otherwise the session runs until
	// dockerd drops it, which Engine 29 now and then never does (the CLI
	// hangs so without dockgate too). dockgate ends the refused build's
	// session.
	for i := 0; i < bkRefusedBuilds; i++ {
		r := u.run("", []string{"DOCKER_BUILDKIT=1"}, "build", "--progress", "plain", "--network", "host", "-t", refused, u.home+"/ok")
		if r.code == 0 || r.code == -1 || !strings.Contains(r.stderr, "dockgate: "+azCaller+" may not build network=host") {
			t.Fatalf("refused /build %d: want the client to exit with dockgate's message; got %v\n%s", i+1, r, bkLastRecords(t, g, 12))
		}
	}
	// Engine 29 keeps a refused build's session for 10 s when the client
	// does not end it: dockgate ends it first. dockerd 20.10 drops it as
	// soon as the client closes, which leaves dockgate nothing to end
	// unless the client raced its session past the refusal (rare).
	if env.Engine == testbed.EngineCurrent {
		g.azRecord(t, "the session of a refused /build, ended by dockgate", func(rec map[string]any) bool {
			reason, _ := rec["reason"].(string)
			return rec["path"] == "/session" && reason == "dockgate ended the session: its build was refused"
		})
	}
	if _, err := c.ImageInspect(t.Context(), refused); err == nil {
		t.Errorf("BYPASS: %s was built", refused)
	}
	g.azRecord(t, "a judged Dockerfile of the CLI's build", func(rec map[string]any) bool {
		return rec["path"] == "/moby.filesync.v1.FileSync/DiffCopy" && rec["decision"] == "deny" && bkHasFact(rec, "image", bkUnapproved)
	})
	g.azRecord(t, "the /build whose Dockerfile was refused, saying so", func(rec map[string]any) bool {
		reason, _ := rec["reason"].(string)
		path, _ := rec["path"].(string)
		return strings.Contains(path, "/build?") && strings.HasPrefix(reason, "the build's Dockerfile was refused on its session: dockgate: ") && strings.Contains(reason, bkUnapproved)
	})
}

func bkWantRefused(t *testing.T, err error, res clientflows.BuildResult, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("BYPASS: the build passed; want dockgate's refusal naming %q\n%s", want, res.Log)
	}
	if msg := err.Error(); !strings.Contains(msg, "dockgate: ") || !strings.Contains(msg, want) {
		t.Fatalf("want dockgate's refusal naming %q; got %v\n%s", want, err, res.Log)
	}
}

func bkHasFact(rec map[string]any, kind, value string) bool {
	facts, _ := rec["facts"].([]any)
	for _, f := range facts {
		m, _ := f.(map[string]any)
		if m["kind"] == kind && fmt.Sprint(m["value"]) == value {
			return true
		}
	}
	return false
}

// bkLastRecords prints the last n audit records of g, for a failure.
func bkLastRecords(t *testing.T, g *azGate, n int) string {
	recs, err := g.AuditRecords()
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, rec := range recs[max(0, len(recs)-n):] {
		fmt.Fprintf(&b, "  %v %v %v %v %v\n", rec["method"], rec["path"], rec["status"], rec["decision"], rec["reason"])
	}
	return b.String()
}
