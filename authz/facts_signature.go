package authz

import (
	"context"
	"net/url"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/signature"
)

// Signature facts (docs/supply-chain.md). For a policy with a signature
// row, every image reference that resolves to a registry manifest digest
// gets the facts of who signed that digest: key:<name> for each of the
// policy's keys that verifies a signature of it, else unsigned, or
// unverified when the registry could not say. What was verified is what
// dockerd acts on: a pull by tag is forwarded as a pull of the digest
// verified, and a create of an image already here is judged by the digest
// that image came from (its RepoDigest), never by a tag's current target.

// Signatures looks up and verifies the signatures of an image digest in
// its registry (*signature.Verifier).
type Signatures interface {
	// Verify says which keys verify a signature of digest in repo, a
	// normalized repository name.
	Verify(ctx context.Context, repo, digest string, keys *signature.KeySet) signature.Result
	// Resolve is the manifest digest a reference's tag names now.
	Resolve(ctx context.Context, ref string) (string, error)
}

// sigCheck is how one decision verifies signatures: with the verifier,
// against the keys of the policy in force.
type sigCheck struct {
	v    Signatures
	keys *signature.KeySet
}

// addSignatures adds the signature facts of an image known by the
// registry digests refs (the same content under each): the keys that
// verify any of them; else unverified when one could not be looked up;
// else unsigned.
func (x *extraction) addSignatures(refs []reference.Canonical) {
	sc := x.req.sig
	if sc == nil {
		return
	}
	x.verifySignatures(refs)
}

// verifySignatures is addSignatures for a policy that verifies them.
func (x *extraction) verifySignatures(refs []reference.Canonical) {
	sc := x.req.sig
	if sc.v == nil {
		x.addSignature(policy.SignatureUnverified, "dockgate has no registry access for signatures configured")
		return
	}
	keys := map[string]bool{}
	var unverified, unsigned []string
	for _, r := range refs {
		res := sc.v.Verify(x.ctx, r.Name(), r.Digest().String(), sc.keys)
		for _, k := range res.Keys {
			keys[k] = true
		}
		switch res.Status {
		case signature.Unverified:
			unverified = append(unverified, r.String()+": "+res.Cause)
		case signature.Unsigned:
			why := r.String() + " has no signature by a key of the policy"
			if res.Cause != "" {
				why += " (" + res.Cause + ")"
			}
			unsigned = append(unsigned, why)
		}
	}
	switch {
	case len(keys) > 0:
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			x.add(policy.SignatureKind, "key:"+k)
		}
	case len(unverified) > 0:
		x.addSignature(policy.SignatureUnverified, "the signatures of "+strings.Join(unverified, "; ")+" could not be looked up")
	default:
		x.addSignature(policy.SignatureUnsigned, strings.Join(unsigned, "; "))
	}
}

// addSignature adds one signature fact with why it has that value, for a
// refusal that names it.
func (x *extraction) addSignature(value, why string) {
	x.add(policy.SignatureKind, value)
	x.req.note(policy.Fact{Kind: policy.SignatureKind, Value: value}, why)
}

// addLocalImageSignature is the signature fact of an image dockerd has
// with no registry digest for the name used (built, loaded, committed):
// nothing a registry could vouch for.
func (x *extraction) addLocalImageSignature(what string) {
	if x.req.sig == nil || x.buildKitResolves() {
		return
	}
	x.addSignature(policy.SignatureUnsigned, what+" has no registry digest: it was made here (built, loaded, tagged or committed), and no signature can vouch for it")
}

// addAbsentImageSignature is the signature fact of an image reference
// dockerd does not have. A container create of it fails (404), and the
// client's pull that follows is verified; anything else (a build's base,
// a service) would have dockerd fetch it: by digest, the digest is
// verified; by tag, it is unverified.
func (x *extraction) addAbsentImageSignature(ref string) {
	if x.req.sig == nil || x.m.Action == "container.create" || x.buildKitResolves() {
		return
	}
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		if c, ok := named.(reference.Canonical); ok {
			// Fetched by its digest: what is verified is what comes.
			x.verifySignatures([]reference.Canonical{c})
			return
		}
	}
	x.addSignature(policy.SignatureUnverified, ref+" is not on the daemon, which would fetch it by its name, unverified: pull it first (dockgate verifies a pull and pins it to the digest verified)")
}

// buildKitResolves says that the images of this request are resolved by
// BuildKit, from their names, when it builds: a gRPC call of a BuildKit
// build, the Dockerfile of one, or a /build?version=2. dockgate pins
// neither their tags nor the local images they name (docs/buildkit.md),
// so only a reference by digest names what will be built.
func (x *extraction) buildKitResolves() bool {
	if x.req.URL != nil && strings.HasPrefix(x.req.URL.Path, "/moby.") {
		return true
	}
	return x.m.Action == "build.run" && x.req.URL != nil && x.req.URL.Query().Get("version") == "2"
}

// addBuildKitImageSignature adds the signature facts of an image BuildKit
// will resolve by itself: a reference by digest is verified as it is (the
// image BuildKit fetches is that digest's); a tag is unverified, since
// what BuildKit will take it to is not what dockgate could verify now.
func (x *extraction) addBuildKitImageSignature(ref string) {
	if x.req.sig == nil {
		return
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		x.addSignature(policy.SignatureUnverified, "BuildKit resolves "+ref+" when it builds, and it names no registry digest dockgate could verify")
		return
	}
	if c, ok := named.(reference.Canonical); ok {
		x.verifySignatures([]reference.Canonical{c})
		return
	}
	x.addSignature(policy.SignatureUnverified, "BuildKit resolves "+reference.TagNameOnly(named).String()+" by its tag when it builds, which dockgate cannot pin to what it verifies: name it by digest ("+named.Name()+"@sha256:…)")
}

// addPullSignatures adds the signature facts of a pull of named. A pull by
// digest is verified as it is; a pull by tag is resolved to the digest the
// tag names now, verified, and forwarded as a pull of that digest, after
// which the proxy gives the image the tag (Request.Tag): the registry
// cannot serve other content between the verification and the pull.
func (x *extraction) addPullSignatures(named reference.Named) {
	if x.req.sig == nil {
		return
	}
	if c, ok := named.(reference.Canonical); ok {
		x.addSignatures([]reference.Canonical{c})
		return
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		x.addSignature(policy.SignatureUnverified, "a pull of every tag of "+named.Name()+" cannot be pinned to the digests verified; pull one tag or digest")
		return
	}
	if x.req.sig.v == nil {
		x.addSignatures(nil)
		return
	}
	dgst, err := x.req.sig.v.Resolve(x.ctx, tagged.String())
	if err != nil {
		x.addSignature(policy.SignatureUnverified, "the digest of "+tagged.String()+" could not be looked up: "+err.Error())
		return
	}
	d, err := digest.Parse(dgst)
	var c reference.Canonical
	if err == nil {
		c, err = reference.WithDigest(reference.TrimNamed(named), d)
	}
	if err != nil {
		x.addSignature(policy.SignatureUnverified, "the registry named "+tagged.String()+" with an invalid digest "+dgst)
		return
	}
	x.addSignatures([]reference.Canonical{c})
	path, rawQuery := x.target()
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		// The route read this query already; it cannot fail here.
		x.addSignature(policy.SignatureUnverified, "the pull's query cannot be pinned: "+err.Error())
		return
	}
	q.Set("fromImage", c.Name())
	q.Set("tag", c.Digest().String())
	x.setTarget(path, q.Encode())
	x.req.Tag = &ImageTag{Image: c.String(), Repo: c.Name(), Tag: tagged.Tag()}
}
