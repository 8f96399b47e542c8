package signature

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	signatureAnnotation    = "dev.cosignproject.cosign/signature"
)

// cosignSignatures judges the layers of the tag sha256-<hex>.sig, where
// cosign 1 and 2 keep an image's signatures; a missing tag is no
// signatures.
func (j *judgement) cosignSignatures() {
	tag := j.repo.Tag(strings.Replace(j.digest.String(), ":", "-", 1) + ".sig")
	m, ok := j.manifest("cosign signatures "+tag.TagStr(), tag)
	if !ok {
		return
	}
	for _, l := range m.Layers {
		if !j.take() {
			return
		}
		j.guard("signature "+l.Digest.String(), func() { j.cosignLayer(l) })
	}
}

// cosignLayer judges one simple-signing signature. The signature is checked
// first, so that what an unverified payload claims is never reported as a
// mismatch.
func (j *judgement) cosignLayer(l v1.Descriptor) {
	if string(l.MediaType) != simpleSigningMediaType {
		j.reject(FailMalformed, "signature layer %s is %s, not %s", l.Digest, l.MediaType, simpleSigningMediaType)
		return
	}
	encoded, ok := l.Annotations[signatureAnnotation]
	if !ok {
		j.reject(FailMalformed, "signature layer %s has no %s annotation", l.Digest, signatureAnnotation)
		return
	}
	sig, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(sig) == 0 {
		j.reject(FailMalformed, "signature layer %s: %s is not base64", l.Digest, signatureAnnotation)
		return
	}
	payload, ok := j.blob(l)
	if !ok {
		return
	}
	var verified []string
	for _, k := range j.keys.keysOrNil() {
		for _, v := range k.verifiers {
			if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
				verified = append(verified, k.name)
				break
			}
		}
	}
	if len(verified) == 0 {
		j.reject(FailBadSignature, "signature %s of %s verifies with none of the keys (%s)", l.Digest, j.digest, j.keyNames())
		return
	}
	p, err := parseSimpleSigning(payload)
	if err != nil {
		j.reject(FailMalformed, "signature %s: %v", l.Digest, err)
		return
	}
	if p.Critical.Image.DockerManifestDigest != j.digest.String() {
		j.reject(FailDigestMismatch, "signature names %s not %s", p.Critical.Image.DockerManifestDigest, j.digest)
		return
	}
	// cosign writes the repository it signed in; a signature copied with
	// the image into another repository does not vouch for that one.
	ref, err := name.ParseReference(p.Critical.Identity.DockerReference)
	if err != nil {
		j.reject(FailMalformed, "signature %s: docker-reference %q: %v", l.Digest, p.Critical.Identity.DockerReference, err)
		return
	}
	if ref.Context().Name() != j.repo.Name() {
		j.reject(FailReferenceMismatch, "signature names repository %s not %s", ref.Context().Name(), j.repo.Name())
		return
	}
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != j.digest.String() {
		j.reject(FailDigestMismatch, "signature names %s not %s", d.DigestStr(), j.digest)
		return
	}
	for _, k := range verified {
		j.found[k] = true
	}
}

func (s *KeySet) keysOrNil() []*publicKey {
	if s == nil {
		return nil
	}
	return s.keys
}
