package e2e

// Image supply chain against the bed's real registry: a dockgate
// whose policy allows `image, <registry>/approved/**` (and names there,
// `image-target`) and no local-image,
// the docker CLI as uid 65534 through it, and dockerd looked at directly.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// imCommit makes an image of its own from the test image (a label makes
// its ID distinct) named ref on dockerd, and returns its ID.
func imCommit(t *testing.T, c *client.Client, ref string) string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	ct, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: []string{"true"}, Labels: map[string]string{azLabel: "image"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer azRemoveContainers(t, c, ct.ID)
	res, err := c.ContainerCommit(ctx, ct.ID, container.CommitOptions{Reference: ref, Changes: []string{"LABEL dockgate.e2e.image=" + ref + "-" + time.Now().Format(time.RFC3339Nano)}})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// imPush pushes ref as it is on dockerd to the registry.
func imPush(t *testing.T, c *client.Client, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), azTimeout)
	defer cancel()
	rc, err := c.ImagePush(ctx, ref, dimage.PushOptions{RegistryAuth: base64.URLEncoding.EncodeToString([]byte("{}"))})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		if msg.Error != "" {
			t.Fatalf("push %s: %s", ref, msg.Error)
		}
	}
}

// imForget removes an image from dockerd entirely (every tag and digest).
func imForget(t *testing.T, c *client.Client, id string) {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	if _, err := c.ImageRemove(ctx, id, dimage.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
		t.Errorf("remove image %s: %v", id, err)
	}
}

func imHasTag(t *testing.T, c *client.Client, ref string) bool {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	_, err := c.ImageInspect(ctx, ref)
	if err != nil && !client.IsErrNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func imSave(t *testing.T, c *client.Client, ref string) []byte {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	rc, err := c.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// imRefused checks a refusal through dockgate naming kind and value.
func imRefused(t *testing.T, r azResult, kind, value string) {
	t.Helper()
	want := azRefusalMessage + kind + " " + value
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("want a refusal with %q:\n%v", want, r)
	}
}

func TestImageSupplyChain(t *testing.T) {
	env := testbed.Shared(t)
	if env.Registry == nil {
		t.Skip("no registry in this bed")
	}
	c := azDirect(t, env)
	reg := env.Registry.Addr
	approved := reg + "/approved/app:1"
	unapproved := reg + "/unapproved/x:1"
	smuggled := reg + "/approved/smuggled:1"

	// The registry holds an approved and an unapproved image; dockerd holds
	// neither.
	idA := imCommit(t, c, approved)
	idB := imCommit(t, c, unapproved)
	t.Cleanup(func() { imForget(t, c, idA); imForget(t, c, idB) })
	t.Cleanup(func() { azRemoveImage(t, c, approved); azRemoveImage(t, c, unapproved) })
	imPush(t, c, approved)
	imPush(t, c, unapproved)
	imForget(t, c, idA)
	imForget(t, c, idB)

	policy := "p, uid:0, *, **, allow\n" +
		"g, uid:65534, role:ci\n" +
		"p, role:ci, endpoint, *, allow\n" +
		"p, role:ci, image, " + reg + "/approved/**, allow\n" +
		// Names may be minted there too (image-target), so that what is
		// tested is that a name alone never makes content runnable.
		"p, role:ci, image-target, " + reg + "/approved/**, allow\n"
	g := azStartGate(t, env, policy)
	u := azNewUser(t, g.Host)

	t.Run("approved pull and run through dockgate", func(t *testing.T) {
		u.must("pull", approved)
		r := u.must("run", "--rm", approved, "echo", "approved runs")
		if !strings.Contains(r.stdout, "approved runs") {
			t.Errorf("run: %v", r)
		}
	})
	t.Run("unapproved pull refused", func(t *testing.T) {
		imRefused(t, u.run("", nil, "pull", unapproved), "image", unapproved)
		if imHasTag(t, c, unapproved) {
			t.Errorf("BYPASS: dockerd pulled %s", unapproved)
		}
	})
	t.Run("run by ID and short ID of the pulled image", func(t *testing.T) {
		ctx, cancel := azCtx()
		defer cancel()
		im, err := c.ImageInspect(ctx, approved)
		if err != nil {
			t.Fatal(err)
		}
		u.must("run", "--rm", im.ID, "true")
		short := strings.TrimPrefix(im.ID, "sha256:")[:12]
		u.must("run", "--rm", short, "true")
	})

	// From here dockerd has the unapproved image too, pulled by root.
	ctx, cancel := context.WithTimeout(context.Background(), azTimeout)
	defer cancel()
	rc, err := c.ImagePull(ctx, unapproved, dimage.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()

	imB, err := c.ImageInspect(ctx, unapproved)
	if err != nil {
		t.Fatal(err)
	}
	idB = imB.ID
	t.Run("run by ID and short ID of an unapproved image refused", func(t *testing.T) {
		imRefused(t, u.run("", nil, "run", "--rm", idB, "true"), "image", reg+"/unapproved/x@sha256:")
		imRefused(t, u.run("", nil, "run", "--rm", strings.TrimPrefix(idB, "sha256:")[:12], "true"), "image", reg+"/unapproved/x@sha256:")
	})
	t.Run("tag smuggling: an unapproved image tagged with an approved name does not run", func(t *testing.T) {
		if err := c.ImageTag(ctx, unapproved, smuggled); err != nil {
			t.Fatal(err)
		}
		defer azRemoveImage(t, c, smuggled)
		imRefused(t, u.run("", nil, "run", "--rm", smuggled, "true"), "local-image", smuggled)
		// And the caller cannot tag it there itself: the source is judged.
		azRemoveImage(t, c, smuggled)
		imRefused(t, u.run("", nil, "tag", unapproved, smuggled), "image", unapproved)
		if imHasTag(t, c, smuggled) {
			t.Errorf("BYPASS: dockerd tagged %s", smuggled)
		}
	})
	t.Run("load smuggling", func(t *testing.T) {
		dir, err := os.MkdirTemp("/tmp", "dgimload")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		write := func(name string, b []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		// A tarball naming the unapproved image, plain and gzipped: refused
		// before dockerd sees it.
		if err := c.ImageTag(ctx, unapproved, smuggled); err != nil {
			t.Fatal(err)
		}
		smuggledTar := write("smuggled.tar", imSave(t, c, smuggled))
		azRemoveImage(t, c, smuggled)
		plain := imSave(t, c, unapproved)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(plain)
		zw.Close()
		azRemoveImage(t, c, unapproved)
		for _, f := range []string{write("unapproved.tar", plain), write("unapproved.tar.gz", gz.Bytes())} {
			imRefused(t, u.run("", nil, "load", "-i", f), "image-target", unapproved)
			if imHasTag(t, c, unapproved) {
				t.Errorf("BYPASS: dockerd loaded %s from %s", unapproved, filepath.Base(f))
			}
		}
		// The same content under an approved name loads (the name is in
		// the approved namespace) but does not run: no provenance.
		u.must("load", "-i", smuggledTar)
		defer azRemoveImage(t, c, smuggled)
		if !imHasTag(t, c, smuggled) {
			t.Fatalf("load through dockgate did not create %s", smuggled)
		}
		imRefused(t, u.run("", nil, "run", "--rm", smuggled, "true"), "local-image", smuggled)
	})
	t.Run("import smuggling", func(t *testing.T) {
		name := reg + "/approved/imported:1"
		tarball := imSave(t, c, approved) // any tar will do as a rootfs
		dir, err := os.MkdirTemp("/tmp", "dgimimport")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		p := filepath.Join(dir, "rootfs.tar")
		if err := os.WriteFile(p, tarball, 0o644); err != nil {
			t.Fatal(err)
		}
		u.must("import", p, name)
		defer azRemoveImage(t, c, name)
		imRefused(t, u.run("", nil, "run", "--rm", name, "true"), "local-image", name)
		var small bytes.Buffer
		tw := tar.NewWriter(&small)
		tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
		tw.Write([]byte("hi"))
		tw.Close()
		sp := filepath.Join(dir, "small.tar")
		if err := os.WriteFile(sp, small.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		// The CLI sends the file chunked, and dockgate closes a connection
		// whose refused body it cannot drain: the CLI may see its write
		// fail before it reads the refusal. Either way nothing is imported.
		r := u.run("", nil, "import", sp, reg+"/unapproved/imported:1")
		if !strings.Contains(r.stderr, "broken pipe") {
			imRefused(t, r, "image-target", reg+"/unapproved/imported:1")
		} else if r.code == 0 {
			t.Errorf("import: %v", r)
		}
		if imHasTag(t, c, reg+"/unapproved/imported:1") {
			t.Errorf("BYPASS: dockerd imported %s", reg+"/unapproved/imported:1")
		}
	})
	t.Run("commit smuggling", func(t *testing.T) {
		name := reg + "/approved/committed:1"
		ctName := "e2e-image-commit"
		u.must("run", "--name", ctName, "--label", azLabel+"=image", approved, "sh", "-c", "echo changed > /changed")
		defer azRemoveContainers(t, c, ctName)
		u.must("commit", ctName, name)
		defer azRemoveImage(t, c, name)
		imRefused(t, u.run("", nil, "run", "--rm", name, "true"), "local-image", name)
	})
	t.Run("builds", func(t *testing.T) {
		dir, err := os.MkdirTemp("/tmp", "dgimbuild")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		context := func(name, dockerfile string) string {
			d := filepath.Join(dir, name)
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "hello"), []byte("hello\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return d
		}
		classic := []string{"DOCKER_BUILDKIT=0"}
		built := reg + "/approved/built:1"
		defer azRemoveImage(t, c, built)

		// FROM an unapproved base: refused before dockerd sees it, so
		// nothing is pulled or tagged.
		for _, df := range []string{
			"FROM " + unapproved + "\nCOPY hello /hello\n",
			"ARG BASE=" + unapproved + "\nFROM $BASE\nCOPY hello /hello\n",
			"FROM " + approved + " AS ok\nFROM scratch\nCOPY --from=" + unapproved + " /bin/busybox /busybox\n",
		} {
			d := context("bad"+strconv.Itoa(len(df)), df)
			r := u.run("", classic, "build", "-t", built, d)
			imRefused(t, r, "image", unapproved)
			if imHasTag(t, c, built) {
				t.Errorf("BYPASS: dockerd built %s FROM an unapproved image:\n%s", built, df)
			}
		}
		// FROM the approved base: built, and the result runs only as what
		// it is, a local image.
		if r := u.run("", classic, "build", "-t", built, context("good", "FROM "+approved+"\nCOPY hello /hello\n")); r.code != 0 {
			t.Fatalf("build FROM %s: %v", approved, r)
		}
		if !imHasTag(t, c, built) {
			t.Fatalf("build FROM %s did not create %s", approved, built)
		}
		imRefused(t, u.run("", nil, "run", "--rm", built, "cat", "/hello"), "local-image", built)
	})
}
