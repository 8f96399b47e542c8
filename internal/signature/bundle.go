package signature

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// cosignSignPredicate is the predicate type of the in-toto statement cosign
// signs for an image signature in a DSSE bundle. Other predicates
// (provenance, SBOMs, scan results) are attestations about the image, not a
// signature of it, and do not count.
const cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"

// bundleMediaTypes are the Sigstore bundle versions read, as artifact types
// of a referrer and media types of its layer.
var bundleMediaTypes = []string{
	"application/vnd.dev.sigstore.bundle+json;version=0.1",
	"application/vnd.dev.sigstore.bundle+json;version=0.2",
	"application/vnd.dev.sigstore.bundle.v0.1+json",
	"application/vnd.dev.sigstore.bundle.v0.2+json",
	"application/vnd.dev.sigstore.bundle.v0.3+json",
}

const emptyMediaType = "application/vnd.oci.empty.v1+json"

func isBundleType(mt string) bool { return slices.Contains(bundleMediaTypes, mt) }

// bundles judges the Sigstore bundles attached to the digest as referrers.
// ggcr asks the referrers API and, where the registry has none (Docker's
// registry 2.8), reads the referrers tag sha256-<hex>; no tag is no
// referrers.
func (j *judgement) bundles() {
	idx, err := remote.Referrers(j.repo.Digest(j.digest.String()), j.opts...)
	if err != nil {
		if !isNotFound(err) {
			j.fail("referrers of "+j.digest.String(), err)
		}
		return
	}
	im, err := idx.IndexManifest()
	if err != nil {
		j.reject(FailMalformed, "referrers of %s: %v", j.digest, err)
		return
	}
	for _, d := range im.Manifests {
		// cosign's own referrers-tag writes have lost the annotations
		// (sigstore/cosign#4641), so the artifact type alone selects. Some
		// registries list the config's media type (the empty descriptor,
		// for cosign's bundles) where the manifest's artifactType belongs;
		// those referrers are read to see what they are.
		if !isBundleType(d.ArtifactType) && d.ArtifactType != "" && d.ArtifactType != emptyMediaType {
			continue
		}
		if !j.take() {
			return
		}
		j.guard("signature bundle "+d.Digest.String(), func() { j.bundle(d) })
	}
}

// bundle judges one referrer: its manifest must be attached to the digest
// judged, its layer a bundle, and the bundle verified by a key for that
// digest.
func (j *judgement) bundle(d v1.Descriptor) {
	what := "signature bundle " + d.Digest.String()
	if d.Size > maxManifest {
		j.reject(FailMalformed, "%s: manifest of %d bytes exceeds %d", what, d.Size, maxManifest)
		return
	}
	m, ok := j.manifest(what, j.repo.Digest(d.Digest.String()))
	if !ok {
		if j.rejected == nil && j.regErr == nil {
			j.reject(FailMalformed, "%s: listed as a referrer but not in the registry", what)
		}
		return
	}
	if !isBundleType(m.ArtifactType) && !isBundleType(string(m.Config.MediaType)) {
		return // another kind of artifact: no signature
	}
	if m.Subject == nil || m.Subject.Digest != j.digest {
		j.reject(FailDigestMismatch, "%s is not attached to %s", what, j.digest)
		return
	}
	var layer *v1.Descriptor
	for i := range m.Layers {
		if isBundleType(string(m.Layers[i].MediaType)) {
			layer = &m.Layers[i]
			break
		}
	}
	if layer == nil {
		j.reject(FailMalformed, "%s holds no Sigstore bundle layer", what)
		return
	}
	raw, ok := j.blob(*layer)
	if !ok {
		return
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		j.reject(FailMalformed, "%s: %v", what, err)
		return
	}
	digest, err := hex.DecodeString(j.digest.Hex)
	if err != nil {
		j.reject(FailMalformed, "%s: digest %s: %v", what, j.digest, err)
		return
	}
	policy := verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey())
	var verified []string
	for _, k := range j.keys.keysOrNil() {
		for _, bv := range k.bundles {
			res, err := bv.Verify(&b, policy)
			if err != nil {
				continue
			}
			if res.Statement != nil && res.Statement.GetPredicateType() != cosignSignPredicate {
				j.reject(FailMalformed, "%s is an attestation (%s), not a signature", what, res.Statement.GetPredicateType())
				return
			}
			verified = append(verified, k.name)
			break
		}
	}
	if len(verified) == 0 {
		if claimed := bundleDigests(&b); len(claimed) > 0 && !slices.Contains(claimed, j.digest.String()) {
			j.reject(FailDigestMismatch, "signature names %s not %s", strings.Join(claimed, ", "), j.digest)
			return
		}
		j.reject(FailBadSignature, "%s of %s verifies with none of the keys (%s)", what, j.digest, j.keyNames())
		return
	}
	for _, k := range verified {
		j.found[k] = true
	}
}

// bundleDigests is what a bundle says it signs: the message digest of a
// message signature, or the subjects of a DSSE envelope's statement.
func bundleDigests(b *bundle.Bundle) []string {
	if ms := b.GetMessageSignature(); ms != nil {
		if md := ms.GetMessageDigest(); md != nil {
			return []string{fmt.Sprintf("sha256:%x", md.GetDigest())}
		}
		return nil
	}
	if env := b.GetDsseEnvelope(); env != nil {
		return intotoSubjects(env.GetPayload())
	}
	return nil
}
