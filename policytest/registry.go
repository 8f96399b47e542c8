package policytest

import (
	"context"
	"fmt"
	"slices"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/dockgate/dockgate/internal/signature"
)

// RegistryImage is a manifest a registry holds, for the signature facts: the
// digest, the tag that names it (optional), and who signed it.
type RegistryImage struct {
	// Ref is the repository, with the tag that names Digest now if any
	// (registry.example.com/team/app:1).
	Ref    string `yaml:"ref"`
	Digest string `yaml:"digest"`
	// SignedBy are the names of the keys whose signatures of Digest the
	// registry holds: a name the policy has no key for verifies nothing,
	// as a signature by an untrusted key.
	SignedBy []string `yaml:"signed_by"`
	// Unreachable says the registry does not answer: unverified.
	Unreachable bool `yaml:"unreachable"`

	repo, tag string
}

// check reads ref and digest.
func (r *RegistryImage) check() error {
	named, err := reference.ParseNormalizedNamed(r.Ref)
	if err != nil {
		return fmt.Errorf("registry: ref %q: %v", r.Ref, err)
	}
	if _, err := digest.Parse(r.Digest); err != nil {
		return fmt.Errorf("registry: %s: digest %q: %v", r.Ref, r.Digest, err)
	}
	if _, ok := named.(reference.Canonical); ok {
		return fmt.Errorf("registry: ref %q: give the digest as digest:, the ref with its tag or none", r.Ref)
	}
	r.repo = named.Name()
	if t, ok := named.(reference.NamedTagged); ok {
		r.tag = t.Tag()
	}
	return nil
}

// registryFixture answers the signature lookups of one case from what the
// case says the registries hold; anything it does not say is unverified,
// so that a case never passes on a guess.
type registryFixture struct {
	images []RegistryImage
	caseOf string
}

func (f *registryFixture) Verify(_ context.Context, repo, dgst string, keys *signature.KeySet) signature.Result {
	for _, im := range f.images {
		if im.repo != repo || im.Digest != dgst {
			continue
		}
		if im.Unreachable {
			return signature.Result{Status: signature.Unverified, Cause: "the case says the registry of " + repo + " does not answer", Failure: signature.FailUnreachable}
		}
		var got []string
		for _, k := range keys.Names() {
			if slices.Contains(im.SignedBy, k) {
				got = append(got, k)
			}
		}
		if len(got) > 0 {
			return signature.Result{Status: signature.Signed, Keys: got}
		}
		return signature.Result{Status: signature.Unsigned, Cause: "the case's registry holds no signature of it by a key of the policy"}
	}
	return signature.Result{Status: signature.Unverified, Cause: fmt.Sprintf("policy test does not ask registries: declare %s@%s under registry: in case %q", repo, dgst, f.caseOf)}
}

func (f *registryFixture) Resolve(_ context.Context, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return "", fmt.Errorf("%s names no tag", ref)
	}
	for _, im := range f.images {
		if im.repo == named.Name() && im.tag == tagged.Tag() {
			if im.Unreachable {
				return "", fmt.Errorf("the case says the registry of %s does not answer", im.repo)
			}
			return im.Digest, nil
		}
	}
	return "", fmt.Errorf("policy test does not ask registries: declare %s under registry: (with its digest) in case %q", ref, f.caseOf)
}
