package signing

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// setup starts an in-process registry without the referrers API (as
// Debian's registry 2.8) and pushes one image; it returns the image's
// digest reference.
func setup(t *testing.T) name.Digest {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

func manifestOf(t *testing.T, ref name.Reference) *v1.Manifest {
	t.Helper()
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func blobOf(t *testing.T, repo name.Repository, d v1.Hash) []byte {
	t.Helper()
	l, err := remote.Layer(repo.Digest(d.String()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
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

// TestSignCosignWritesWhatCosignWrites reads back the .sig tag: an OCI
// manifest with one simple-signing layer per signature, the payload byte
// for byte as cosign marshals it, and a signature of it by the key.
func TestSignCosignWritesWhatCosignWrites(t *testing.T) {
	ctx := context.Background()
	d := setup(t)
	dir := t.TempDir()
	key, err := GenerateKey(dir, "release")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := SignCosign(ctx, d.String(), key); err != nil {
			t.Fatalf("SignCosign: %v", err)
		}
	}
	m := manifestOf(t, d.Context().Tag("sha256-"+strings.TrimPrefix(d.DigestStr(), "sha256:")+".sig"))
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || len(m.Layers) != 2 {
		t.Fatalf("signature manifest %s with %d layers, want an OCI manifest with one layer per signature", m.MediaType, len(m.Layers))
	}
	l := m.Layers[1]
	if l.MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
		t.Errorf("layer media type %s", l.MediaType)
	}
	payload := blobOf(t, d.Context(), l.Digest)
	want := `{"critical":{"identity":{"docker-reference":"` + d.Context().Name() + `"},"image":{"docker-manifest-digest":"` +
		d.DigestStr() + `"},"type":"cosign container image signature"},"optional":null}`
	if string(payload) != want {
		t.Errorf("payload\n%s\nwant\n%s", payload, want)
	}
	sig, err := base64.StdEncoding.DecodeString(l.Annotations["dev.cosignproject.cosign/signature"])
	if err != nil {
		t.Fatalf("signature annotation: %v", err)
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, "release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		t.Fatalf("release.pub: %v", err)
	}
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(strings.NewReader(string(sig)), strings.NewReader(string(payload))); err != nil {
		t.Errorf("the signature does not verify with release.pub: %v", err)
	}
}

// TestAttachBundleWritesWhatCosign3Writes reads back the referrer through
// the referrers tag: an OCI manifest with the bundle's artifact type, an
// empty config, the image as subject, and a v0.3 bundle whose DSSE
// statement names the image's digest.
func TestAttachBundleWritesWhatCosign3Writes(t *testing.T) {
	ctx := context.Background()
	d := setup(t)
	key, err := GenerateKey(t.TempDir(), "release")
	if err != nil {
		t.Fatal(err)
	}
	if err := AttachBundle(ctx, d.String(), key); err != nil {
		t.Fatalf("AttachBundle: %v", err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].ArtifactType != bundleMediaType {
		t.Fatalf("referrers %+v, want one bundle", im.Manifests)
	}
	m := manifestOf(t, d.Context().Digest(im.Manifests[0].Digest.String()))
	if m.ArtifactType != bundleMediaType || m.Config.MediaType != emptyMediaType || m.Config.Size != 2 ||
		m.Subject == nil || m.Subject.Digest.String() != d.DigestStr() || len(m.Layers) != 1 || m.Layers[0].MediaType != bundleMediaType {
		t.Fatalf("referrer manifest %+v is not cosign 3's layout", m)
	}
	if m.Annotations["dev.sigstore.bundle.content"] != "dsse-envelope" || m.Annotations["dev.sigstore.bundle.predicateType"] != "https://sigstore.dev/cosign/sign/v1" {
		t.Errorf("annotations %v", m.Annotations)
	}
	var b struct {
		MediaType    string `json:"mediaType"`
		DsseEnvelope struct {
			Payload     []byte `json:"payload"`
			PayloadType string `json:"payloadType"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(blobOf(t, d.Context(), m.Layers[0].Digest), &b); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(b.DsseEnvelope.Payload, &st); err != nil {
		t.Fatal(err)
	}
	if b.MediaType != bundleMediaType || b.DsseEnvelope.PayloadType != intotoType ||
		len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != d.DigestStr() {
		t.Errorf("bundle %s with statement %s does not sign %s", b.MediaType, b.DsseEnvelope.Payload, d.DigestStr())
	}
}
