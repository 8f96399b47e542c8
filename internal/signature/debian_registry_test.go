package signature

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/signing"
	"github.com/dockgate/dockgate/test/testbed"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestDebianRegistry signs and verifies against the registry the
// end-to-end tests use, Debian's docker-registry 2.8, which has no
// referrers API: the bundle is found through the referrers tag.
func TestDebianRegistry(t *testing.T) {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		if os.Getenv("DOCKGATE_E2E") == "required" {
			t.Fatalf("docker-registry: %v", err)
		}
		t.Skip("docker-registry is not installed (apt-get install docker-registry)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := testbed.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		if err := reg.Stop(); err != nil {
			t.Errorf("stop docker-registry: %v", err)
		}
	})
	s := testSigners(t)
	keys := mustLoadKeys(t, s.keysDir)

	push := func(repo string) string {
		img, err := random.Image(256, 1)
		must(t, err)
		ref, err := name.ParseReference(reg.Addr + "/" + repo + ":latest")
		must(t, err)
		must(t, remote.Write(ref, img, remote.WithContext(ctx)))
		d, err := img.Digest()
		must(t, err)
		return d.String()
	}
	signed := push("team/app")
	must(t, signing.SignCosign(ctx, reg.Addr+"/team/app@"+signed, s.byName["ci"]))
	must(t, signing.AttachBundle(ctx, reg.Addr+"/team/app@"+signed, s.byName["release"]))
	unsigned := push("team/other")

	tag, err := name.NewTag(reg.Addr + "/team/app:" + strings.Replace(signed, ":", "-", 1))
	must(t, err)
	idx, err := remote.Index(tag, remote.WithContext(ctx))
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 1 || im.Manifests[0].ArtifactType != "application/vnd.dev.sigstore.bundle.v0.3+json" {
		t.Fatalf("referrers tag %s holds %+v, want the one bundle", tag, im.Manifests)
	}

	v := mustVerifier(t, Options{})
	if r := v.Verify(ctx, reg.Addr+"/team/app", signed, keys); r.Status != Signed || !slices.Equal(r.Keys, []string{"ci", "release"}) {
		t.Errorf("signed in both formats: %+v, want signed by ci and release", r)
	}
	if r := v.Verify(ctx, reg.Addr+"/team/other", unsigned, keys); r.Status != Unsigned || r.Failure != "" {
		t.Errorf("unsigned: %+v, want unsigned with no signature", r)
	}
	if d, err := v.Resolve(ctx, reg.Addr+"/team/app:latest"); err != nil || d != signed {
		t.Errorf("Resolve = %q, %v; want %s", d, err, signed)
	}
}
