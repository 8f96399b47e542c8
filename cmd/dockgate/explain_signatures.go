package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/distribution/reference"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/internal/signature"
)

// explainSignatures is explain's authz.Signatures: the verifier serve
// would use, and what it found, for explain to show besides the facts
// (the keys that verified a digest, and why one is unsigned or unverified
// even when a row allows that).
type explainSignatures struct {
	v *signature.Verifier

	mu   sync.Mutex
	seen []string
}

func (e *explainSignatures) say(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, fmt.Sprintf(format, args...))
}

func (e *explainSignatures) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

// Verify implements authz.Signatures.
func (e *explainSignatures) Verify(ctx context.Context, repo, digest string, keys *signature.KeySet) signature.Result {
	r := e.v.Verify(ctx, repo, digest, keys)
	switch {
	case r.Status == signature.Signed:
		e.say("%s@%s signed by %s", repo, digest, strings.Join(r.Keys, ", "))
	case r.Failure == "":
		e.say("%s@%s %s: %s", repo, digest, r.Status, r.Cause)
	default:
		e.say("%s@%s %s (%s): %s", repo, digest, r.Status, r.Failure, r.Cause)
	}
	return r
}

// Resolve implements authz.Signatures.
func (e *explainSignatures) Resolve(ctx context.Context, ref string) (string, error) {
	d, err := e.v.Resolve(ctx, ref)
	if err != nil {
		e.say("%s not resolved: %v", ref, err)
		return "", err
	}
	e.say("%s is %s in its registry now", ref, d)
	return d, nil
}

// parseExplainImage reads --image REF=REPO@DIGEST[,REPO@DIGEST]...: an
// image dockerd has under the name REF, pulled as those digests.
func parseExplainImage(spec string) (authz.OfflineImage, error) {
	ref, digests, ok := strings.Cut(spec, "=")
	if !ok || ref == "" || digests == "" {
		return authz.OfflineImage{}, errors.New("want REF=REPO@DIGEST[,REPO@DIGEST]...")
	}
	im := authz.OfflineImage{Ref: ref}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return authz.OfflineImage{}, fmt.Errorf("%s: %w", ref, err)
	}
	if _, canonical := named.(reference.Canonical); !canonical {
		im.RepoTags = []string{reference.FamiliarString(reference.TagNameOnly(named))}
	}
	for _, d := range strings.Split(digests, ",") {
		n, err := reference.ParseNormalizedNamed(d)
		if err != nil {
			return authz.OfflineImage{}, fmt.Errorf("%s: %w", d, err)
		}
		if _, ok := n.(reference.Canonical); !ok {
			return authz.OfflineImage{}, fmt.Errorf("%s: want REPO@sha256:<hex>", d)
		}
		im.RepoDigests = append(im.RepoDigests, reference.FamiliarString(n))
	}
	return im, nil
}
