package e2e

// Big request bodies through dockgate: a plugin whose rootfs is larger than
// any JSON body limit is created as it is directly, and a client refused
// while it uploads a large build context prints dockgate's refusal, never
// "broken pipe" or "connection reset".

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

// bbRun runs the docker CLI as root against host and returns its result.
func bbRun(t *testing.T, cli, host string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append([]string{"-H", host}, args...)...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CLI_HINTS=false"), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code, r.err = -1, err
	}
	if ctx.Err() != nil {
		t.Fatalf("docker %s timed out", strings.Join(args, " "))
	}
	return r
}

// bbFiller writes size random bytes (which no compression shrinks) to path.
func bbFiller(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
}

// A plugin's rootfs easily exceeds --max-body (2 MiB): plugin create is
// spooled and judged from the spool like a build context, so root creates it
// through dockgate as it does directly.
func TestBigBodyPluginCreate(t *testing.T) {
	env := testbed.Shared(t)
	cli := newCLI(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test image's file system, exported directly from dockerd.
	ctr := unique(t, "bbrootfs")
	if r := bbRun(t, cli, env.DirectHost(), nil, "create", "--name", ctr, env.Image, "true"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	defer bbRun(t, cli, env.DirectHost(), nil, "rm", "-f", ctr)
	tarPath := filepath.Join(dir, "rootfs.tar")
	if r := bbRun(t, cli, env.DirectHost(), nil, "export", "-o", tarPath, ctr); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if out, err := exec.Command("tar", "-C", rootfs, "-xf", tarPath).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v: %s", err, out)
	}
	// Well over the body limit whatever busybox weighs.
	bbFiller(t, filepath.Join(rootfs, "filler"), 6<<20)
	config, _ := json.Marshal(map[string]any{
		"Description":   "dockgate e2e plugin",
		"Documentation": "https://example.com",
		"Entrypoint":    []string{"/bin/sleep", "3600"},
		"Interface":     map[string]any{"Types": []string{"docker.volumedriver/1.0"}, "Socket": "bb.sock"},
		"Network":       map[string]any{"Type": "none"},
	})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sd := range sides(env) {
		t.Run(sd.name, func(t *testing.T) {
			name := unique(t, "bbplugin-"+sd.name) + ":latest"
			r := bbRun(t, cli, sd.host, nil, "plugin", "create", name, dir)
			if r.code != 0 {
				t.Fatalf("%v", r)
			}
			defer bbRun(t, cli, env.DirectHost(), nil, "plugin", "rm", "-f", name)
			if r := bbRun(t, cli, env.DirectHost(), nil, "plugin", "inspect", "--format", "{{.Name}}", name); r.code != 0 || strings.TrimSpace(r.stdout) != name {
				t.Fatalf("the plugin is not on dockerd: %v", r)
			}
		})
	}
}

// A classic build whose 40 MiB context is refused, by the policy once it is
// spooled or for its size before it is read, and an import of 40 MiB
// refused before it is read, print dockgate's message every time: the CLI
// is still uploading when the answer comes, and a reset would make it
// print "broken pipe" instead.
func TestBigBodyBuildRefusalReachesTheCLI(t *testing.T) {
	env := testbed.Shared(t)
	// Readable by the CI job's uid, which t.TempDir's parent is not.
	ctxDir, err := os.MkdirTemp("/tmp", "dgbb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ctxDir) })
	bbFiller(t, filepath.Join(ctxDir, "big"), 40<<20)
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+env.Image+"\nCOPY big /big\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := []string{"build", "-q", ctxDir}
	for _, tc := range []struct {
		name    string
		rows    []string
		args    []string
		command []string
		wants   []string
	}{
		{name: "build refused by policy", rows: []string{"p, role:ci, endpoint, build.run, deny"}, command: build,
			wants: []string{"dockgate: " + azCaller + " may not endpoint build.run"}},
		{name: "build over the spool limit", args: []string{"--max-spool", "16MiB"}, command: build,
			wants: []string{"dockgate: request body larger than the spool limit of 16 MiB"}},
		// Refused before a byte of the body is read: an import streams.
		{name: "import refused by policy", rows: []string{"p, role:ci, endpoint, image.import, deny"},
			command: []string{"import", filepath.Join(ctxDir, "big"), "e2e/bigbody:refused"},
			wants:   []string{"dockgate: " + azCaller + " may not endpoint image.import"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := azStartGate(t, env, azPolicy(t, false, tc.rows...), tc.args...)
			u := azNewUser(t, g.Host)
			for i := range 8 {
				r := u.run("", []string{"DOCKER_BUILDKIT=0"}, tc.command...)
				if r.code == 0 {
					t.Fatalf("try %d: the build was not refused: %v", i, r)
				}
				for _, w := range tc.wants {
					if !strings.Contains(r.stderr, w) {
						t.Fatalf("try %d of 8: stderr does not say %q: %v", i, w, r)
					}
				}
				for _, bad := range []string{"broken pipe", "connection reset"} {
					if strings.Contains(r.stderr, bad) {
						t.Fatalf("try %d of 8: %s: %v", i, bad, r)
					}
				}
			}
		})
	}
}
