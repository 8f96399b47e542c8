package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The engines a bed can run. Debian's dockerd 20.10 (API 1.41) is the
// default; the current Engine is built from Go modules by BuildEngine.
const (
	EngineDebian  = "debian"
	EngineCurrent = "current"
)

// CurrentEngine pins every version of the current Engine, in this one place.
// Moving a version: change it here, run the bed once (BuildEngine builds into
// a new cache dir, see test/README.md), run the e2e suite on both engines.
var CurrentEngine = EnginePins{
	Version:    "29.8.0",         // what dockerd reports: -X dockerversion.Version
	Moby:       "v2.0.0-beta.24", // github.com/moby/moby/v2: dockerd, docker-proxy
	Containerd: "v2.4.2",         // containerd, containerd-shim-runc-v2
	Runc:       "v1.5.3",         // cgo, needs libseccomp-dev and pkg-config
	Buildx:     "v0.38.2",        // the docker CLI plugin docker-buildx
}

// EnginePins are the module versions one Engine is built from.
type EnginePins struct {
	Version, Moby, Containerd, Runc, Buildx string
}

// stamp is what the cache dir records of a finished build: a dir whose stamp
// differs from the pins is rebuilt.
func (p EnginePins) stamp() string {
	return fmt.Sprintf("engine %s\nmoby %s\ncontainerd %s\nrunc %s\nbuildx %s\n", p.Version, p.Moby, p.Containerd, p.Runc, p.Buildx)
}

// Engines lists the engines a run covers, from DOCKGATE_E2E_ENGINE: unset
// or "all" for both (Debian's first, as the quicker to fail), "debian" or
// "current" for one.
func Engines() ([]string, error) {
	switch v := os.Getenv("DOCKGATE_E2E_ENGINE"); v {
	case "", "all":
		return []string{EngineDebian, EngineCurrent}, nil
	case EngineDebian, EngineCurrent:
		return []string{v}, nil
	default:
		return nil, fmt.Errorf("DOCKGATE_E2E_ENGINE=%q: want %q, %q or %q", v, EngineDebian, EngineCurrent, "all")
	}
}

// EngineName is the engine of a single bed (the demo, the bench, a bed a
// test starts itself): the first of Engines.
func EngineName() (string, error) {
	engines, err := Engines()
	if err != nil {
		return "", err
	}
	return engines[0], nil
}

// EngineCacheDir is where BuildEngine puts the current Engine's binaries
// (its bin dir) and docker CLI plugins (its cli-plugins dir):
// $DOCKGATE_E2E_CACHE (default /var/cache/dockgate-e2e) / engine-VERSION.
func EngineCacheDir() string {
	root := os.Getenv("DOCKGATE_E2E_CACHE")
	if root == "" {
		root = "/var/cache/dockgate-e2e"
	}
	return filepath.Join(root, "engine-"+CurrentEngine.Version)
}

// engineBuilt reports whether the cache dir holds a finished build of the pins.
func engineBuilt(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "versions"))
	return err == nil && string(b) == CurrentEngine.stamp()
}

// BuildEngine builds the current Engine into EngineCacheDir unless a build of
// the same pins is already there, and returns the cache dir. Concurrent
// callers (test binaries of several packages) wait for one build on a lock.
// It needs the go tool (GOTOOLCHAIN=local: the machine's Go builds it), a
// module proxy or a warm module cache, and for runc cgo with libseccomp.
func BuildEngine(ctx context.Context, log io.Writer) (string, error) {
	dir := EngineCacheDir()
	if engineBuilt(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if engineBuilt(dir) { // another binary built it while we waited
		return dir, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("testbed: building the current Engine needs the go tool in PATH: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "pkg-config", "--exists", "libseccomp").CombinedOutput(); err != nil {
		return "", fmt.Errorf("testbed: runc needs libseccomp (apt-get install -y libseccomp-dev pkg-config): %v %s", err, out)
	}
	start := time.Now()
	fmt.Fprintf(log, "testbed: building Engine %s into %s (a cold build takes about 15 minutes)\n", CurrentEngine.Version, dir)
	bin := filepath.Join(dir, "bin")
	_ = os.Remove(filepath.Join(dir, "versions"))
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	p := CurrentEngine
	const ctd = "github.com/containerd/containerd/v2"
	for _, step := range []struct {
		cgo  string
		args []string
	}{
		{"0", []string{"-tags", "netgo osusergo static_build nri_no_wasm",
			"-ldflags", "-w -X github.com/moby/moby/v2/dockerversion.Version=" + p.Version,
			"github.com/moby/moby/v2/cmd/dockerd@" + p.Moby, "github.com/moby/moby/v2/cmd/docker-proxy@" + p.Moby}},
		{"0", []string{"-tags", "urfave_cli_no_docs osusergo netgo static_build no_btrfs",
			"-ldflags", "-w -X " + ctd + "/version.Version=" + p.Containerd, ctd + "/cmd/containerd@" + p.Containerd}},
		{"0", []string{"-tags", "urfave_cli_no_docs osusergo netgo static_build no_btrfs no_grpc",
			ctd + "/cmd/containerd-shim-runc-v2@" + p.Containerd}},
		{"1", []string{"-tags", "seccomp urfave_cli_no_docs", "github.com/opencontainers/runc@" + p.Runc}},
		{"0", []string{"github.com/docker/buildx/cmd/buildx@" + p.Buildx}},
	} {
		args := append([]string{"install", "-trimpath"}, step.args...)
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir = dir // outside any module: go install pkg@version
		cmd.Env = append(baseEnv(), "GOTOOLCHAIN=local", "GOBIN="+bin, "GOFLAGS=-mod=mod", "CGO_ENABLED="+step.cgo)
		t := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("testbed: go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		fmt.Fprintf(log, "testbed: built %s in %v\n", args[len(args)-1], time.Since(t).Round(time.Second))
	}
	plugins := filepath.Join(dir, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return "", err
	}
	_ = os.Remove(filepath.Join(plugins, "docker-buildx"))
	if err := os.Symlink(filepath.Join(bin, "buildx"), filepath.Join(plugins, "docker-buildx")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "versions"), []byte(p.stamp()), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "testbed: Engine %s built in %v\n", p.Version, time.Since(start).Round(time.Second))
	return dir, nil
}

// containerdConfig is a private containerd: its own root, state and sockets
// under dir, and the CRI plugins (Kubernetes') off.
func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.sandbox.controller.v1.shim"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"),
		filepath.Join(dir, "containerd.sock"), filepath.Join(dir, "containerd.sock.ttrpc"), filepath.Join(dir, "debug.sock"))
}

// startContainerd starts the current Engine's containerd in dir with the
// cache's bin dir first on PATH (else it runs Debian's shim and runc), and
// waits for its socket.
func startContainerd(ctx context.Context, dir string, env []string, bin string) (*process, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(containerdConfig(dir)), 0o644); err != nil {
		return nil, "", err
	}
	socket := filepath.Join(dir, "containerd.sock")
	log := filepath.Join(dir, "containerd.log")
	p, err := startProcess(log, env, filepath.Join(bin, "containerd"), "--config", config)
	if err != nil {
		return nil, "", fmt.Errorf("start containerd: %w", err)
	}
	err = waitReady(ctx, p, log, 30*time.Second, func(context.Context) error {
		_, err := os.Stat(socket)
		return err
	})
	if err != nil {
		return nil, "", errors.Join(fmt.Errorf("containerd: %w", err), p.stop(syscall.SIGKILL, 5*time.Second))
	}
	return p, socket, nil
}

// withPath returns env with dir first on its PATH.
func withPath(env []string, dir string) []string {
	out := make([]string, 0, len(env)+1)
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		out = append(out, kv)
	}
	return append(out, "PATH="+dir+":"+path)
}

// BuildxPlugin is the docker-buildx CLI plugin built with the current
// Engine, for either engine's tests: "" when it is not built (a run on
// Debian's engine alone, on a machine that never built the current one).
func BuildxPlugin() string {
	dir := EngineCacheDir()
	if !engineBuilt(dir) {
		return ""
	}
	return filepath.Join(dir, "cli-plugins", "docker-buildx")
}
