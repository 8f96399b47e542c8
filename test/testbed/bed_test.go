package testbed

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBedRunsTheSelectedEngines starts a bed without dockgate on each engine
// DOCKGATE_E2E_ENGINE selects and uses it as the e2e tests do: the imported
// busybox runs, and a push to the private registry and a pull back work.
// Closing it must leave no process naming its dir.
func TestBedRunsTheSelectedEngines(t *testing.T) {
	Require(t)
	engines, err := Engines()
	if err != nil {
		t.Fatal(err)
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { testBed(t, engine) })
	}
}

func testBed(t *testing.T, want string) {
	docker := RequireBinary(t, "/usr/local/bin/docker")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var log strings.Builder
	env, err := Setup(ctx, Options{NoDockgate: true, Log: &log, Engine: want})
	t.Log(strings.TrimSpace(log.String()))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = env.Close()
		}
	}()
	if env.Engine != want || env.Dockerd.Engine != want || env.Dockerd.Version == "" {
		t.Errorf("engine %q, dockerd %q %q: want %q", env.Engine, env.Dockerd.Engine, env.Dockerd.Version, want)
	}
	if want == EngineCurrent && env.Dockerd.Version != CurrentEngine.Version {
		t.Errorf("dockerd reports %s, want the pinned %s", env.Dockerd.Version, CurrentEngine.Version)
	}
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, docker, append([]string{"--host", env.Dockerd.Host}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("run", "--rm", env.Image, "echo", "hello"); got != "hello" {
		t.Errorf("docker run echo hello: %q", got)
	}
	ref := env.Registry.Addr + "/bed/busybox:1"
	run("tag", env.Image, ref)
	run("push", ref)
	run("rmi", ref)
	run("pull", ref)
	if got := run("image", "inspect", "--format", "{{len .RepoDigests}}", ref); got == "0" {
		t.Errorf("%s pulled from the registry has no RepoDigests", ref)
	}
	dir := env.Dir
	closed = true
	if err := env.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if n := (&Dockerd{Dir: dir}).leftovers(); n > 0 {
		t.Errorf("%d processes still name %s after Close", n, dir)
	}
}
