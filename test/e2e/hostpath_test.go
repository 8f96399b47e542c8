package e2e

// Host paths the caller could change between dockgate's decision and
// dockerd's act (BRIEF §7 item 11): a CI job that owns a
// directory of the cache can bind an entry of it, then swap that entry
// for a symlink to the directory of dockerd's socket before the start,
// where dockerd resolves the path again. dockgate refuses such sources
// (replaceable-path), and judges the recorded binds again at start,
// restart and update, where they point then.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// hpCache makes the documented safe cache layout in a fresh temp dir: a
// root-owned parent (mode 0755) in which dockerd creates the job
// directories, and, for the attacks, owned/: a directory of the cache
// that the job's uid owns (the layout the docs warn against).
func hpCache(t *testing.T) (cache, owned string) {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "dghp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if base, err = filepath.EvalSymlinks(base); err != nil {
		t.Fatal(err)
	}
	cache = filepath.Join(base, "ci-cache")
	owned = filepath.Join(cache, "owned")
	for _, d := range []string{base, cache, owned} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(owned, azUID, azUID); err != nil {
		t.Fatal(err)
	}
	return cache, owned
}

// hpAs runs argv as the CI job's uid and returns its combined output and
// whether it succeeded.
func hpAs(t *testing.T, argv ...string) (string, bool) {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	uid := strconv.Itoa(azUID)
	cmd := exec.CommandContext(ctx, testbed.RequireBinary(t, "setpriv"), append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups"}, argv...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// hpCurl sends one request with a JSON body as the CI job's uid through
// the socket and returns the status and body.
func hpCurl(t *testing.T, socket, method, path, body string) (int, string) {
	t.Helper()
	out, _ := hpAs(t, testbed.RequireBinary(t, "curl"), "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method,
		"-H", "Content-Type: application/json", "--data-binary", body, "--unix-socket", socket, "http://docker"+path)
	out = strings.TrimSpace(out)
	i := strings.LastIndexByte(out, '\n')
	if i < 0 {
		t.Fatalf("curl %s %s: %q", method, path, out)
	}
	n, _ := strconv.Atoi(out[i+1:])
	return n, out[:i]
}

// hpSocketDir is the directory of the bed's dockerd socket as the kernel
// resolves it: where a swapped bind source would point.
func hpSocketDir(t *testing.T, env *testbed.Env) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(filepath.Dir(env.Dockerd.Socket))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// hpState is the container's state on dockerd itself.
func hpState(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	ci, err := c.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatalf("inspect %s on dockerd: %v", name, err)
	}
	return ci.State.Status
}

func TestHostPathTheCallerControlsIsRefused(t *testing.T) {
	env := testbed.Shared(t)
	cache, owned := hpCache(t)
	g := azStartGate(t, env, azPolicy(t, false, "p, role:ci, bind, "+cache+"/**, allow"))
	c := azDirect(t, env)
	u := azNewUser(t, g.Host)
	img := testbed.DefaultImage
	src := filepath.Join(owned, "d")
	if out, ok := hpAs(t, "mkdir", src); !ok {
		t.Fatalf("mkdir %s as the job: %s", src, out)
	}
	// Why it matters: the job can put anything in place of src at any
	// time, such as the directory of dockerd's socket.
	if out, ok := hpAs(t, "sh", "-c", "rmdir "+src+" && ln -s / "+src+" && rm "+src+" && mkdir "+src); !ok {
		t.Fatalf("the job cannot swap %s (the test's premise): %s", src, out)
	}
	why := "(" + owned + " belongs to uid " + strconv.Itoa(azUID) + ")"
	want := azRefusalMessage + "replaceable-path " + src + ": no rule allows it " + why

	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "Binds entry", args: []string{"run", "--rm", "-v", src + ":/c", img, "true"}},
		{name: "Mounts entry", args: []string{"run", "--rm", "--mount", "type=bind,src=" + src + ",dst=/c", img, "true"}},
		{name: "local volume with a host device", args: []string{"volume", "create", "--driver", "local", "-o", "type=none", "-o", "o=bind", "-o", "device=" + src, "e2e-hp-vol"}},
		{name: "entry planted where dockerd would create it", args: []string{"run", "--rm", "-v", filepath.Join(owned, "new") + ":/c", img, "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since := time.Now()
			r := u.run("", nil, tc.args...)
			w := want
			if tc.name == "entry planted where dockerd would create it" {
				w = azRefusalMessage + "replaceable-path " + filepath.Join(owned, "new") + ": no rule allows it " + why
			}
			if r.code == 0 || !strings.Contains(r.stderr, w) {
				t.Errorf("want a refusal with %q:\n%v", w, r)
			}
			if ev := azCreations(t, c, since); len(ev) > 0 {
				t.Errorf("BYPASS: dockerd created %v after the refusal", ev)
			}
		})
	}

	t.Run("old-API start body", func(t *testing.T) {
		name := "e2e-hp-oldstart"
		u.must("create", "--name", name, "--label", azLabel+"=hp", img, "true")
		t.Cleanup(func() { azRemoveContainers(t, c, name) })
		code, body := hpCurl(t, strings.TrimPrefix(g.Host, "unix://"), "POST", "/v1.23/containers/"+name+"/start",
			`{"HostConfig":{"Binds":["`+src+`:/c"]}}`)
		if code != 403 || !strings.Contains(body, "replaceable-path "+src) {
			t.Errorf("want 403 naming replaceable-path %s, got %d %s", src, code, body)
		}
		if st := hpState(t, c, name); st != "created" {
			t.Errorf("BYPASS: the container is %s on dockerd", st)
		}
	})
}

func TestHostPathSafeCacheLayout(t *testing.T) {
	env := testbed.Shared(t)
	cache, _ := hpCache(t)
	g := azStartGate(t, env, azPolicy(t, false, "p, role:ci, bind, "+cache+"/**, allow"))
	c := azDirect(t, env)
	u := azNewUser(t, g.Host)
	job := filepath.Join(cache, "job-1")
	name := "e2e-hp-safe"
	t.Cleanup(func() { azRemoveContainers(t, c, name) })
	r := u.must("run", "--name", name, "--label", azLabel+"=hp", "-v", job+":/cache", testbed.DefaultImage, "sh", "-c", "echo built > /cache/out && cat /cache/out")
	if strings.TrimSpace(r.stdout) != "built" {
		t.Errorf("the job's container wrote and read its cache: %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(job, "out")); err != nil {
		t.Fatalf("the cache file is not on the host: %v", err)
	}
	// dockerd made the job directory as root: the job cannot move it.
	if out, ok := hpAs(t, "mv", job, job+".moved"); ok {
		t.Errorf("the job could rename %s: %s", job, out)
	}
	// Started again (restart, start): judged again, still the same place.
	u.must("start", "-a", name)
	u.must("restart", name)
	rec := g.azRecord(t, "the restart", func(rec map[string]any) bool { return rec["action"] == "container.restart" })
	if rec != nil {
		azCheckFacts(t, rec, "bind", job, "allow")
	}
}

func TestHostPathJudgedAgainAtStart(t *testing.T) {
	env := testbed.Shared(t)
	cache, owned := hpCache(t)
	sockDir := hpSocketDir(t, env)
	// The administrator lets the job bind what it owns: the create is
	// allowed, the swap is possible, and the start must catch it.
	g := azStartGate(t, env, azPolicy(t, false,
		"p, role:ci, bind, "+cache+"/**, allow",
		"p, role:ci, replaceable-path, "+owned+"/**, allow"))
	c := azDirect(t, env)
	u := azNewUser(t, g.Host)
	img := testbed.DefaultImage
	want := azRefusalMessage + "bind " + sockDir + ": no rule allows it"

	t.Run("the job swaps its bind source for dockerd's socket directory", func(t *testing.T) {
		src := filepath.Join(owned, "d")
		if out, ok := hpAs(t, "mkdir", src); !ok {
			t.Fatalf("mkdir %s as the job: %s", src, out)
		}
		name := "e2e-hp-swap"
		t.Cleanup(func() { azRemoveContainers(t, c, name) })
		u.must("create", "--name", name, "--label", azLabel+"=hp", "-v", src+":/c", img, "true")
		if out, ok := hpAs(t, "sh", "-c", "rmdir "+src+" && ln -s "+sockDir+" "+src); !ok {
			t.Fatalf("swap as the job: %s", out)
		}
		for _, args := range [][]string{{"start", name}, {"restart", name}, {"update", "--cpu-shares", "512", name}} {
			r := u.run("", nil, args...)
			if r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Errorf("want a refusal with %q:\n%v", want, r)
			}
		}
		if st := hpState(t, c, name); st != "created" {
			t.Errorf("BYPASS: the container is %s on dockerd", st)
		}
		rec := g.azRecord(t, "the refused start", func(rec map[string]any) bool {
			return rec["action"] == "container.start" && rec["decision"] == "deny"
		})
		if rec != nil {
			azCheckFacts(t, rec, "bind", sockDir, "deny")
		}
	})

	for _, tc := range []struct {
		name string
		// args create the container from the source src.
		args func(src string) []string
	}{
		{name: "Mounts entry swapped", args: func(src string) []string {
			return []string{"--mount", "type=bind,src=" + src + ",dst=/c"}
		}},
		{name: "volume device swapped", args: func(src string) []string {
			vol := "e2e-hp-devvol"
			u.must("volume", "create", "--driver", "local", "-o", "type=none", "-o", "o=bind", "-o", "device="+src, vol)
			t.Cleanup(func() { azRemoveVolume(t, c, vol) })
			return []string{"-v", vol + ":/c"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(owned, strings.ReplaceAll(tc.name, " ", "-"))
			if out, ok := hpAs(t, "mkdir", src); !ok {
				t.Fatalf("mkdir %s as the job: %s", src, out)
			}
			name := "e2e-hp-" + strings.ReplaceAll(tc.name, " ", "-")
			t.Cleanup(func() { azRemoveContainers(t, c, name) })
			u.must(append(append([]string{"create", "--name", name, "--label", azLabel + "=hp"}, tc.args(src)...), img, "true")...)
			if out, ok := hpAs(t, "sh", "-c", "rmdir "+src+" && ln -s "+sockDir+" "+src); !ok {
				t.Fatalf("swap as the job: %s", out)
			}
			r := u.run("", nil, "start", name)
			if r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Errorf("want a refusal with %q:\n%v", want, r)
			}
			if st := hpState(t, c, name); st != "created" {
				t.Errorf("BYPASS: the container is %s on dockerd", st)
			}
		})
	}

	t.Run("another party swaps a job directory dockerd has not made yet", func(t *testing.T) {
		// Someone else who can write in the cache (another job's
		// container that binds the whole cache, say) plants a symlink
		// between the job's create and its start.
		job := filepath.Join(cache, "job-2")
		name := "e2e-hp-planted"
		t.Cleanup(func() { azRemoveContainers(t, c, name) })
		u.must("create", "--name", name, "--label", azLabel+"=hp", "--mount", "type=bind,src="+cache+",dst=/c", "-v", job+":/j", img, "true")
		if err := os.Remove(job); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.Symlink(sockDir, job); err != nil {
			t.Fatal(err)
		}
		r := u.run("", nil, "start", name)
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("want a refusal with %q:\n%v", want, r)
		}
		if st := hpState(t, c, name); st != "created" {
			t.Errorf("BYPASS: the container is %s on dockerd", st)
		}
	})
}
