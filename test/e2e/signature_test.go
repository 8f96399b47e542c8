package e2e

// Only signed images run (docs/supply-chain.md): a dockgate whose CI role
// may run the bed registry's e2e-sig/ images only when the policy's key
// "release" signed them, images pushed to the bed's real registry
// (Debian's docker-registry) directly on dockerd and signed there as
// cosign signs (test/signing, both formats), and the docker CLI as uid
// 65534 through dockgate. Every name here starts with sg.

import (
	"context"
	"crypto"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/signing"
	"github.com/dockgate/dockgate/test/testbed"
)

// sgStartGate starts a dockgate whose policy directory holds csv as
// ci.csv and the public keys in keys/ (name → PEM), with a metrics
// socket, stopped when t ends.
func sgStartGate(t *testing.T, env *testbed.Env, csv string, keys map[string][]byte) *azGate {
	t.Helper()
	files := map[string][]byte{"ci.csv": []byte(csv)}
	for name, pem := range keys {
		files["keys/"+name+".pub"] = pem
	}
	return azStartGateFiles(t, env, env.DirectHost(), files, func(dir string) []string {
		return []string{"--signature-timeout", "10s", "--metrics-listen", "unix://" + filepath.Join(dir, "metrics.sock")}
	})
}

// sgMetrics is the value of each sample of the test's dockgate's
// /metrics whose name starts with dockgate_signature_.
func sgMetrics(t *testing.T, g *azGate) map[string]float64 {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	status, text, err := unixGet(ctx, filepath.Join(filepath.Dir(g.Dir), "metrics.sock"), "/metrics")
	if err != nil || status != 200 {
		t.Fatalf("GET /metrics: %d %v", status, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "dockgate_signature_") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", line, err)
		}
		out[name] = v
	}
	return out
}

// sgPush makes an image of its own named ref on dockerd, pushes it to the
// registry and removes it from dockerd again, so that only a pull brings
// it back; it returns the digest the registry holds it as.
func sgPush(t *testing.T, c *client.Client, ref string) string {
	t.Helper()
	id := imCommit(t, c, ref)
	t.Cleanup(func() { imForget(t, c, id) })
	imPush(t, c, ref)
	digest := sgRepoDigest(t, c, ref)
	imForget(t, c, id)
	return digest
}

// sgRepoDigest is the digest of ref's repository among the RepoDigests of
// the image ref names on dockerd; "" when it has none.
func sgRepoDigest(t *testing.T, c *client.Client, ref string) string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	im, err := c.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("inspect %s on dockerd: %v", ref, err)
	}
	repo := ref[:strings.LastIndex(ref, ":")]
	for _, rd := range im.RepoDigests {
		if d, ok := strings.CutPrefix(rd, repo+"@"); ok {
			return d
		}
	}
	return ""
}

// sgRecord waits for the audit record of the request with action that the
// CLI process pid made.
func sgRecord(t *testing.T, g *azGate, pid int, action string) map[string]any {
	t.Helper()
	return g.azRecord(t, action+" by pid "+strconv.Itoa(pid), func(rec map[string]any) bool {
		return azPid(rec) == pid && rec["action"] == action
	})
}

func TestSignedImagesOnly(t *testing.T) {
	env := testbed.Shared(t)
	if env.Registry == nil {
		t.Skip("no registry in this bed: nothing to sign")
	}
	c := azDirect(t, env)
	ctx := context.Background()
	repo := env.Registry.Addr + "/e2e-sig"

	keys := t.TempDir()
	release, err := signing.GenerateKey(keys, "release")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := signing.GenerateKey(filepath.Join(keys, "untrusted"), "stranger")
	if err != nil {
		t.Fatal(err)
	}
	releasePEM, err := os.ReadFile(filepath.Join(keys, "release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(name string, digest string, key crypto.Signer, bundle bool, opts ...signing.Option) {
		t.Helper()
		ref := repo + "/" + name + "@" + digest
		sign := signing.SignCosign
		if bundle {
			sign = signing.AttachBundle
		}
		if err := sign(ctx, ref, key, opts...); err != nil {
			t.Fatalf("sign %s: %v", ref, err)
		}
	}

	// The registry's images, none of them on dockerd.
	signed := repo + "/signed:1"
	signedDigest := sgPush(t, c, signed)
	sign("signed", signedDigest, release, false)
	bundled := repo + "/bundled:1"
	bundledDigest := sgPush(t, c, bundled)
	sign("bundled", bundledDigest, release, true)
	unsigned := repo + "/unsigned:1"
	sgPush(t, c, unsigned)
	strangers := repo + "/stranger:1"
	sign("stranger", sgPush(t, c, strangers), stranger, true)
	// A signature of the signed image, replayed onto other content.
	replayed := repo + "/replayed:1"
	sign("replayed", sgPush(t, c, replayed), release, false, signing.ForDigest(signedDigest))
	// Signed, then the tag pushed again with other content.
	moved := repo + "/moved:1"
	sign("moved", sgPush(t, c, moved), release, false)
	sgPush(t, c, moved)
	autopull := repo + "/autopull:1"
	sign("autopull", sgPush(t, c, autopull), release, true)
	base := repo + "/base:1"
	sign("base", sgPush(t, c, base), release, false)
	// A registry that is down: a port nothing listens on.
	down := "127.0.0.1:" + strconv.Itoa(sgFreePort(t)) + "/e2e-sig/gone:1"
	// Made here: no registry vouches for it.
	local := "ci.local/e2e-sig-local:1"
	if err := env.Dockerd.ImportImage(ctx, local); err != nil {
		t.Fatal(err)
	}
	built := "ci.local/e2e-sig-built:1"
	t.Cleanup(func() {
		for _, ref := range []string{signed, autopull, bundled, repo + "/bundled@" + bundledDigest, unsigned, strangers, replayed, moved, base, local} {
			azRemoveImage(t, c, ref)
		}
	})

	// The CI role runs e2e-sig/ images signed by release; root, and so
	// the Go SDK client below, keeps everything (unsigned and unverified
	// included).
	g := sgStartGate(t, env, azPolicy(t, false,
		"p, role:ci, image, "+repo+"/**, allow",
		"p, role:ci, image, 127.0.0.1:*/e2e-sig/**, allow",
		"p, role:ci, signature, key:release, allow"),
		map[string][]byte{"release": releasePEM})
	u := azNewUser(t, g.Host)

	t.Run("a pull by tag of a signed image is pinned to the digest verified and tagged as asked", func(t *testing.T) {
		r := u.must("pull", signed)
		if got := sgRepoDigest(t, c, signed); got != signedDigest {
			t.Errorf("%s on dockerd: RepoDigest %q, want the one verified, %s", signed, got, signedDigest)
		}
		rec := sgRecord(t, g, r.pid, "image.pull")
		azCheckFacts(t, rec, "signature", "key:release", "allow")
		// What dockerd was asked is the digest, and the tag came after.
		pinned := "pulled as " + repo + "/signed@" + signedDigest + ", the digest verified, then tagged " + repo + "/signed:1"
		if reason, _ := rec["reason"].(string); !strings.Contains(reason, pinned) {
			t.Errorf("the pull's record says %q, want %q", reason, pinned)
		}
	})
	t.Run("a pull by digest of an image signed with a Sigstore bundle", func(t *testing.T) {
		r := u.must("pull", repo+"/bundled@"+bundledDigest)
		azCheckFacts(t, sgRecord(t, g, r.pid, "image.pull"), "signature", "key:release", "allow")
	})
	t.Run("docker run of the signed image: the create is judged by its RepoDigest", func(t *testing.T) {
		r := u.must("run", "--rm", signed, "echo", "signed runs")
		if !strings.Contains(r.stdout, "signed runs") {
			t.Errorf("run: %v", r)
		}
		azCheckFacts(t, sgRecord(t, g, r.pid, "container.create"), "signature", "key:release", "allow")
	})
	t.Run("docker run of a signed image that is not here: the CLI's pull is verified, then its create", func(t *testing.T) {
		r := u.run("", nil, "run", "--rm", autopull, "echo", "pulled and run")
		if r.code != 0 || !strings.Contains(r.stdout, "pulled and run") {
			t.Fatalf("run: %v", r)
		}
		azCheckFacts(t, sgRecord(t, g, r.pid, "image.pull"), "signature", "key:release", "allow")
		g.azRecord(t, "the create after the pull, judged by the digest pulled", func(rec map[string]any) bool {
			if azPid(rec) != r.pid || rec["action"] != "container.create" || rec["decision"] != "allow" {
				return false
			}
			for _, f := range azFacts(rec) {
				if f["kind"] == "signature" && f["value"] == "key:release" && f["decision"] == "allow" {
					return true
				}
			}
			return false
		})
	})
	t.Run("docker build FROM the signed image once it is here", func(t *testing.T) {
		u.writeFile("signed/Dockerfile", "FROM "+signed+"\nLABEL e2e.sig=built\n")
		// The built image and the untagged ones the build left between it
		// and its base go first: the base cannot be removed under them.
		t.Cleanup(func() { imForget(t, c, built) })
		r := u.run("", []string{"DOCKER_BUILDKIT=0"}, "build", "-q", "-t", built, filepath.Join(u.home, "signed"))
		if r.code != 0 {
			t.Fatalf("build: %v", r)
		}
		azCheckFacts(t, sgRecord(t, g, r.pid, "build.run"), "signature", "key:release", "allow")
	})

	refusals := []struct {
		name, value string
		ref         string
	}{
		{"an unsigned image", "unsigned", unsigned},
		{"an image signed by a key the policy does not have", "unsigned", strangers},
		{"an image carrying a signature of another digest", "unsigned", replayed},
		{"a tag moved to unsigned content after its image was signed", "unsigned", moved},
		{"an image in a registry that is down", "unverified", down},
	}
	for _, tt := range refusals {
		t.Run("pull refused: "+tt.name, func(t *testing.T) {
			r := u.run("", nil, "pull", tt.ref)
			imRefused(t, r, "signature", tt.value)
			if imHasTag(t, c, tt.ref) {
				t.Errorf("BYPASS: dockerd has %s", tt.ref)
			}
			azCheckFacts(t, sgRecord(t, g, r.pid, "image.pull"), "signature", tt.value, "deny")
		})
	}
	t.Run("a role that allows unverified images may pull from a registry that is down, and dockerd says it is down", func(t *testing.T) {
		sdk, err := client.NewClientWithOpts(client.WithHost(g.Host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		defer sdk.Close()
		ctx, cancel := azCtx()
		defer cancel()
		rc, err := sdk.ImagePull(ctx, down, dimage.PullOptions{})
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			err = sgStreamError(b)
		}
		if err == nil || strings.Contains(err.Error(), "dockgate:") {
			t.Errorf("pull of %s as root through dockgate: %v, want dockerd's error, not dockgate's", down, err)
		}
		rec := g.azRecord(t, "root's pull of "+down, func(rec map[string]any) bool {
			return rec["action"] == "image.pull" && azPid(rec) == os.Getpid() && strings.Contains(azJSON(rec["facts"]), "unverified")
		})
		if rec == nil {
			return
		}
		for _, f := range azFacts(rec) {
			if f["kind"] == "signature" && (f["value"] != "unverified" || f["decision"] != "allow") {
				t.Errorf("root's pull: signature fact %v, want unverified allowed", f)
			}
		}
	})
	t.Run("an image made here, run by the role that requires signatures, is unsigned", func(t *testing.T) {
		r := u.run("", nil, "run", "--rm", local, "true")
		imRefused(t, r, "signature", "unsigned")
		azCheckFacts(t, sgRecord(t, g, r.pid, "container.create"), "signature", "unsigned", "deny")
	})
	t.Run("a build FROM an image that is not here would be fetched by its name: unverified", func(t *testing.T) {
		u.writeFile("absent/Dockerfile", "FROM "+base+"\nLABEL e2e.sig=absent\n")
		r := u.run("", []string{"DOCKER_BUILDKIT=0"}, "build", "-q", "-t", "ci.local/e2e-sig-absent:1", filepath.Join(u.home, "absent"))
		imRefused(t, r, "signature", "unverified")
		if imHasTag(t, c, base) {
			t.Errorf("BYPASS: dockerd fetched %s for the build", base)
		}
		azCheckFacts(t, sgRecord(t, g, r.pid, "build.run"), "signature", "unverified", "deny")
	})
	t.Run("BuildKit: a build FROM the signed image by digest is allowed; by tag, or absent, refused as unverified", func(t *testing.T) {
		bk := azNewUser(t, g.Host)
		bk.cli = testbed.RequireBinary(t, clientflows.OldCLI)
		build := func(dir, tag string) azResult {
			return bk.run("", []string{"DOCKER_BUILDKIT=1"}, "build", "--progress", "plain", "--network", "none", "-t", tag, dir)
		}
		// BuildKit resolves its bases by itself: only a digest names
		// what it builds from.
		byDigest := repo + "/signed@" + signedDigest
		bk.writeFile("signed/Dockerfile", "FROM "+byDigest+"\nLABEL e2e.sig=buildkit\n")
		tag := bkTagged(t, c, "ci.local/e2e-sig-bk:1")
		t.Cleanup(func() { imForget(t, c, tag) })
		if r := build(bk.home+"/signed", tag); r.code != 0 {
			t.Errorf("BuildKit build FROM %s: %v\n%s", byDigest, r, bkLastRecords(t, g, 8))
		}
		for _, from := range []string{signed, base} {
			bk.writeFile("bytag/Dockerfile", "FROM "+from+"\nLABEL e2e.sig=buildkit-tag\n")
			refused := bkTagged(t, c, "ci.local/e2e-sig-bk-refused:1")
			r := build(bk.home+"/bytag", refused)
			if r.code == 0 || !strings.Contains(r.stderr, "dockgate: "+azCaller+" may not signature unverified") || !strings.Contains(r.stderr, "name it by digest") {
				t.Errorf("BuildKit build FROM %s: want dockgate's refusal naming signature unverified and saying to name it by digest: %v\n%s", from, r, bkLastRecords(t, g, 8))
			}
			if imHasTag(t, c, refused) {
				t.Errorf("BYPASS: %s was built FROM %s", refused, from)
			}
		}
		if imHasTag(t, c, base) {
			t.Errorf("BYPASS: dockerd fetched %s for the build", base)
		}
	})
	t.Run("the metrics count the lookups, the cache hits and the failures by cause", func(t *testing.T) {
		m := sgMetrics(t, g)
		for name, least := range map[string]float64{
			"dockgate_signature_verifications_total":                     5,
			"dockgate_signature_cache_hits_total":                        1, // the run after the pull
			`dockgate_signature_failures_total{cause="bad-signature"}`:   1, // the stranger's
			`dockgate_signature_failures_total{cause="digest-mismatch"}`: 1, // the replayed signature
			`dockgate_signature_failures_total{cause="unreachable"}`:     1, // the registry that is down
		} {
			if m[name] < least {
				t.Errorf("%s = %v, want at least %v (all: %v)", name, m[name], least, m)
			}
		}
	})
}

// sgStreamError is the error a pull's progress stream ends with, if any.
func sgStreamError(stream []byte) error {
	for _, line := range strings.Split(string(stream), "\n") {
		if i := strings.Index(line, `"error":`); i >= 0 {
			return &sgPullError{line[i:]}
		}
	}
	return nil
}

type sgPullError struct{ msg string }

func (e *sgPullError) Error() string { return e.msg }

// sgFreePort is a loopback port nothing listens on (it was free a moment
// ago and the bed does not reuse it).
func sgFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
