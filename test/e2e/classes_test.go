package e2e

// Requests the policy language's own intent forbids, tried as CI jobs under policies/ci with
// the bed's registry standing in for the approved namespace: minting
// names there (tag, commit, build -t, import, load), asking dockerd to
// contact an unapproved registry (distribution inspect), removing or
// untagging base images and other jobs' images, and opening BuildKit's
// control API with only endpoint rows. Each is refused with a message
// naming the fact, and dockerd is looked at directly to see that nothing
// happened; the ordinary flow of each endpoint still passes.

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// clsRefused runs a command that dockgate must refuse with "<caller> may
// not <fact>: no rule allows it".
func clsRefused(u *tnUser, caller, fact string, args ...string) {
	u.t.Helper()
	want := "dockgate: " + caller + " may not " + fact + ": no rule allows it"
	r := u.run(args...)
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		u.t.Errorf("as uid %d with %s: want a refusal %q: %v", u.uid, filepath.Base(u.cli), want, r)
	}
}

// clsHasNo reports a bypass when dockerd has an image named ref.
func clsHasNo(t *testing.T, c *client.Client, ref, what string) {
	t.Helper()
	if imHasTag(t, c, ref) {
		t.Errorf("BYPASS: %s: dockerd has %s", what, ref)
		azRemoveImage(t, c, ref)
	}
}

func TestRequestClassesUnderCIExample(t *testing.T) {
	env := testbed.Shared(t)
	if env.Registry == nil {
		t.Skip("no registry in this bed")
	}
	reg := env.Registry.Addr
	approved := reg + "/approved"
	g, c, a, b, _ := tnBed(t, azPolicy(t, false,
		"g, uid:"+strconv.Itoa(tnUID2)+", role:ci",
		"p, role:ci, tenant, uid, allow",
		// The bed's registry stands in for registry.example.com: its
		// approved namespace may be pulled from and run, as in ci.csv.
		"p, role:ci, image, "+approved+"/**, allow",
	))
	img := testbed.DefaultImage
	images := []string{}
	t.Cleanup(func() {
		for _, ref := range images {
			c.ImageRemove(context.Background(), ref, imageRemoveOptions())
		}
	})
	// Each attack is tried with both CLIs where the old one is installed.
	clis := []*tnUser{a}
	if _, err := os.Stat(oldCLIPath); err == nil {
		old := *a
		old.cli = oldCLIPath
		clis = append(clis, &old)
	}

	// a's own image: built the ordinary way, under ci.local/.
	dir := filepath.Join(a.home, "ctx")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+img+"\nRUN echo built > /built\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	own := "ci.local/e2e-cls-a:1"
	images = append(images, own, "ci.local/e2e-cls-a:2", "ci.local/e2e-cls-commit:1", "ci.local/e2e-cls-imp:1", "ci.local/e2e-cls-base:1")
	a.must("build", "-q", "-t", own, dir)

	t.Run("tag", func(t *testing.T) {
		defer tnReport(t, a, b)()
		for _, u := range clis {
			defer tnReport(t, u)()
			target := approved + "/e2e-cls-tagged:1"
			clsRefused(u, tnOwnerA, "image-target "+target, "tag", own, target)
			clsHasNo(t, c, target, "tag of a job's image into the approved namespace")
		}
		a.must("tag", own, "ci.local/e2e-cls-a:2")
	})

	t.Run("commit", func(t *testing.T) {
		defer tnReport(t, a, b)()
		a.must("create", "--name", "e2e-cls-commit", "--label", tnTestLabel, img, "true")
		for _, u := range clis {
			defer tnReport(t, u)()
			target := approved + "/e2e-cls-committed:1"
			clsRefused(u, tnOwnerA, "image-target "+target, "commit", "e2e-cls-commit", target)
			clsHasNo(t, c, target, "commit into the approved namespace")
		}
		a.must("commit", "e2e-cls-commit", "ci.local/e2e-cls-commit:1")
	})

	t.Run("build -t", func(t *testing.T) {
		defer tnReport(t, a, b)()
		for _, u := range clis {
			defer tnReport(t, u)()
			target := approved + "/e2e-cls-built:1"
			clsRefused(u, tnOwnerA, "image-target "+target, "build", "-q", "-t", target, dir)
			// Each t= is judged: an allowed name first does not carry a
			// second one.
			clsRefused(u, tnOwnerA, "image-target "+target, "build", "-q", "-t", "ci.local/e2e-cls-a:3", "-t", target, dir)
			clsHasNo(t, c, target, "build -t into the approved namespace")
			clsHasNo(t, c, "ci.local/e2e-cls-a:3", "a refused build")
		}
	})

	t.Run("import", func(t *testing.T) {
		defer tnReport(t, a, b)()
		var rootfs bytes.Buffer
		tw := tar.NewWriter(&rootfs)
		tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
		tw.Write([]byte("hi"))
		tw.Close()
		p := filepath.Join(a.home, "rootfs.tar")
		if err := os.WriteFile(p, rootfs.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		target := approved + "/e2e-cls-imported:1"
		for _, u := range clis {
			defer tnReport(t, u)()
			// The CLI streams the file, and dockgate closes a connection
			// whose refused body it does not drain: the CLI may see its
			// write fail before it reads the refusal.
			r := u.run("import", p, target)
			want := "dockgate: " + tnOwnerA + " may not image-target " + target + ": no rule allows it"
			if r.code == 0 || !strings.Contains(r.stderr, want) && !strings.Contains(r.stderr, "broken pipe") {
				t.Errorf("import into the approved namespace with %s: want %q: %v", filepath.Base(u.cli), want, r)
			}
			clsHasNo(t, c, target, "import into the approved namespace")
		}
		a.must("import", p, "ci.local/e2e-cls-imp:1")
	})

	t.Run("load", func(t *testing.T) {
		defer tnReport(t, a, b)()
		target := approved + "/e2e-cls-loaded:1"
		actx, acancel := azCtx()
		defer acancel()
		if err := c.ImageTag(actx, img, target); err != nil {
			t.Fatal(err)
		}
		tarball := imSave(t, c, target)
		azRemoveImage(t, c, target)
		p := filepath.Join(a.home, "loaded.tar")
		if err := os.WriteFile(p, tarball, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, u := range clis {
			defer tnReport(t, u)()
			clsRefused(u, tnOwnerA, "image-target "+target, "load", "-i", p)
			clsHasNo(t, c, target, "load of a tarball naming the approved namespace")
		}
	})

	t.Run("distribution inspect", func(t *testing.T) {
		// A repository of the approved namespace in the registry, pushed
		// by root: the job may look it up.
		ref := approved + "/e2e-cls-dist:1"
		actx, acancel := azCtx()
		defer acancel()
		if err := c.ImageTag(actx, img, ref); err != nil {
			t.Fatal(err)
		}
		imPush(t, c, ref)
		azRemoveImage(t, c, ref)
		if code, body := tnCurl(t, g.Socket, azUID, "GET", "/v1.41/distribution/"+ref+"/json"); code != http.StatusOK || !strings.Contains(body, `"Descriptor"`) {
			t.Errorf("distribution inspect of %s: %d %s", ref, code, body)
		}
		for _, tc := range []struct{ name, fact string }{
			{reg + "/unapproved/x:1", "image " + reg + "/unapproved/x:1"},
			{"evil.example.com:5000/approved/x", "image evil.example.com:5000/approved/x:latest"},
			{"busybox", "image docker.io/library/busybox:latest"},
		} {
			code, body := tnCurl(t, g.Socket, azUID, "GET", "/v1.41/distribution/"+tc.name+"/json")
			want := "dockgate: " + tnOwnerA + " may not " + tc.fact + ": no rule allows it"
			if code != http.StatusForbidden || !strings.Contains(body, want) {
				t.Errorf("distribution inspect of %s: %d %s, want 403 %q", tc.name, code, body, want)
			}
		}
	})

	t.Run("rmi", func(t *testing.T) {
		defer tnReport(t, a, b)()
		// A shared base image under a second name, made by root.
		base := "ci.local/e2e-cls-base:1"
		actx, acancel := azCtx()
		defer acancel()
		if err := c.ImageTag(actx, img, base); err != nil {
			t.Fatal(err)
		}
		im, err := c.ImageInspect(actx, img)
		if err != nil {
			t.Fatal(err)
		}
		short := strings.TrimPrefix(im.ID, "sha256:")[:12]
		for _, u := range clis {
			defer tnReport(t, u)()
			clsRefused(u, tnOwnerA, "owner none", "rmi", base)
			clsRefused(u, tnOwnerA, "owner none", "rmi", short)
		}
		b.ownerRefused("none", "rmi", base)
		b.ownerRefused("other", "rmi", own)
		b.ownerRefused("other", "rmi", "ci.local/e2e-cls-commit:1")
		for _, ref := range []string{base, img, own, "ci.local/e2e-cls-commit:1"} {
			if !imHasTag(t, c, ref) {
				t.Errorf("BYPASS: %s was removed", ref)
			}
		}
		// A job removes and untags its own images.
		a.must("rmi", "ci.local/e2e-cls-a:2")
		a.must("rmi", "ci.local/e2e-cls-commit:1")
		a.must("rmi", "ci.local/e2e-cls-imp:1")
		for _, ref := range []string{"ci.local/e2e-cls-a:2", "ci.local/e2e-cls-commit:1", "ci.local/e2e-cls-imp:1"} {
			if imHasTag(t, c, ref) {
				t.Errorf("a's rmi of its own %s did not remove it", ref)
			}
		}
	})

	t.Run("BuildKit's channels, which open nothing by themselves", func(t *testing.T) {
		// Without an Upgrade header dockerd answers; what goes over an
		// upgraded one is judged call by call (buildkit_judged_test.go).
		for _, path := range []string{"/session", "/grpc", "/v1.41/session"} {
			code, body := tnCurl(t, g.Socket, azUID, "POST", path)
			if code == http.StatusForbidden || strings.Contains(body, "dockgate:") {
				t.Errorf("POST %s: %d %s, want dockerd's own answer", path, code, body)
			}
		}
	})
}
