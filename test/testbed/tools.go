package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// The programs of this module that tests run inside containers, and where
// their images have them.
const (
	DgcallPkg    = "./test/incontainer/dgcall"
	ReaperPkg    = "./test/reaper"
	DgcallInside = "/bin/dgcall"
	ReaperInside = "/bin/reaper"
	// ReaperPort is where the reaper listens in its container (RYUK_PORT
	// changes it), the port testcontainers-go maps.
	ReaperPort = "8080/tcp"
)

// tools are the static builds of this process: each is built once, however
// many tests ask, since a build takes seconds on two cores.
var tools struct {
	mu     sync.Mutex
	dir    string // under the shared bed's dir when there is one
	owned  bool   // dir is ours to remove (not the bed's)
	builds map[string]*toolBuild
}

type toolBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildDgcall builds the in-container API client (test/incontainer/dgcall)
// and returns the binary's path: static, so that a busybox container can run
// it, bind-mounted or baked into ClientImage.
func BuildDgcall(ctx context.Context) (string, error) { return BuildTool(ctx, DgcallPkg) }

// BuildReaper builds the Ryuk-compatible reaper (test/reaper) and returns
// the binary's path.
func BuildReaper(ctx context.Context) (string, error) { return BuildTool(ctx, ReaperPkg) }

// BuildTool builds a main package of this module (pkg relative to the
// module root, like "./test/reaper") with CGO_ENABLED=0 and -trimpath, once
// per process, and returns the binary's path. In a test binary under Main
// the binaries live in the shared bed's dir and go with it; elsewhere in a
// temp dir that RemoveTools removes.
func BuildTool(ctx context.Context, pkg string) (string, error) {
	dir, b, err := toolSlot(pkg)
	if err != nil {
		return "", err
	}
	b.once.Do(func() { b.path, b.err = buildStatic(ctx, dir, pkg) })
	return b.path, b.err
}

func toolSlot(pkg string) (string, *toolBuild, error) {
	tools.mu.Lock()
	defer tools.mu.Unlock()
	if tools.dir == "" {
		if shared != nil && shared.Dir != "" {
			tools.dir = filepath.Join(shared.Dir, "tools")
			if err := os.MkdirAll(tools.dir, 0o755); err != nil {
				return "", nil, err
			}
		} else {
			d, err := os.MkdirTemp("/tmp", "dgtools")
			if err != nil {
				return "", nil, err
			}
			tools.dir, tools.owned = d, true
		}
		// A container's user other than root may have to run a bind-mounted
		// binary; the dir is only a place to build in.
		if err := os.Chmod(tools.dir, 0o755); err != nil {
			return "", nil, err
		}
		tools.builds = map[string]*toolBuild{}
	}
	b := tools.builds[pkg]
	if b == nil {
		b = &toolBuild{}
		tools.builds[pkg] = b
	}
	return tools.dir, b, nil
}

// RemoveTools removes the binaries BuildTool made outside a bed (a bed's
// go with its dir); the next BuildTool builds again.
func RemoveTools() error {
	tools.mu.Lock()
	defer tools.mu.Unlock()
	var err error
	if tools.owned {
		err = os.RemoveAll(tools.dir)
	}
	tools.dir, tools.owned, tools.builds = "", false, nil
	return err
}

func buildStatic(ctx context.Context, dir, pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("testbed: no go tool in PATH to build %s: %w", pkg, err)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-trimpath", "-o", bin, pkg}
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	// Static: the busybox image has no libc. Not -race: that needs cgo.
	cmd.Env = append(baseEnv(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("CGO_ENABLED=0 go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// ClientImage imports, on the dockerd at host (unix://…), ref: the busybox
// image (ImportBusybox) with the in-container client at DgcallInside, for
// `docker run ref dgcall GET /_ping` with a Docker socket bound at
// /var/run/docker.sock.
func ClientImage(ctx context.Context, host, ref string) error {
	bin, err := BuildDgcall(ctx)
	if err != nil {
		return err
	}
	return importTool(ctx, host, ref, bin, DgcallInside, nil)
}

// ReaperImage imports, on the dockerd at host, ref: the busybox image with
// the reaper at ReaperInside as its entrypoint, exposing ReaperPort. Busybox
// is more than decoration: testcontainers-go's port wait execs sh, cat,
// awk, grep and nc in the reaper's container. Tag it
// clientflows.RyukImage for testcontainers-go to run it as its Ryuk.
func ReaperImage(ctx context.Context, host, ref string) error {
	bin, err := BuildReaper(ctx)
	if err != nil {
		return err
	}
	return importTool(ctx, host, ref, bin, ReaperInside, []string{
		"EXPOSE " + ReaperPort,
		`ENTRYPOINT ["` + ReaperInside + `"]`,
		"CMD []",
	})
}

func importTool(ctx context.Context, host, ref, bin, inside string, changes []string) error {
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	d := &Dockerd{Host: host}
	if err := d.ImportImageWith(ctx, ref, changes, File{Name: inside, Mode: 0o755, Size: fi.Size(), Data: f}); err != nil {
		return fmt.Errorf("image %s with %s: %w", ref, inside, err)
	}
	return nil
}
