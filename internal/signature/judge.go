package signature

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// judgement is one lookup of one digest's signatures: what verified, what
// was rejected and why, and whether the registry failed on the way.
type judgement struct {
	repo   name.Repository
	digest v1.Hash
	keys   *KeySet
	opts   []remote.Option

	found    map[string]bool
	looked   int
	tooMany  bool
	rejected *rejection     // the last signature that did not count
	regErr   *RegistryError // the first registry failure
}

type rejection struct {
	failure Failure
	cause   string
}

// lookup reads both formats of signatures of digest in repo. final says
// the result may be cached: every part of the registry that was asked
// answered.
func (v *Verifier) lookup(ctx context.Context, repo, digest string, keys *KeySet) (Result, bool) {
	r, err := name.NewRepository(repo, v.nameOptions(repo)...)
	if err != nil {
		return Result{Status: Unsigned, Failure: FailMalformed, Cause: fmt.Sprintf("repository %q: %v", repo, err)}, false
	}
	h, err := v1.NewHash(digest)
	if err != nil || h.Algorithm != "sha256" {
		return Result{Status: Unsigned, Failure: FailMalformed, Cause: fmt.Sprintf("digest %q is not sha256:<hex>", digest)}, false
	}
	j := &judgement{repo: r, digest: h, keys: keys, opts: v.remoteOptions(ctx), found: map[string]bool{}}
	j.cosignSignatures()
	if !j.tooMany {
		j.bundles()
	}
	return j.result()
}

func (j *judgement) result() (Result, bool) {
	switch {
	case j.tooMany:
		return Result{Status: Unsigned, Failure: FailMalformed,
			Cause: fmt.Sprintf("more than %d signatures of %s in %s: none is counted", maxSignatures, j.digest, j.repo.Name())}, true
	case len(j.found) > 0:
		keys := make([]string, 0, len(j.found))
		for k := range j.found {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		// Keys found while part of the registry failed may be fewer than
		// there are: right for now, but not to be remembered.
		return Result{Status: Signed, Keys: keys}, j.regErr == nil
	case j.regErr != nil:
		return Result{Status: Unverified, Failure: j.regErr.Failure, Cause: j.regErr.Error()}, false
	case j.rejected != nil:
		return Result{Status: Unsigned, Failure: j.rejected.failure, Cause: j.rejected.cause}, true
	}
	return Result{Status: Unsigned, Cause: fmt.Sprintf("no signature of %s in %s", j.digest, j.repo.Name())}, true
}

func (j *judgement) reject(f Failure, format string, args ...any) {
	j.rejected = &rejection{failure: f, cause: fmt.Sprintf(format, args...)}
}

// fail records an error asking the registry: content past the bounds is a
// rejected signature, anything else a registry that could not be asked.
func (j *judgement) fail(what string, err error) {
	c := classify(j.repo.RegistryStr(), err)
	if c.Failure == FailMalformed {
		j.reject(FailMalformed, "%s: %v", what, err)
		return
	}
	if c.Failure == FailNotFound {
		// A manifest that names what its registry does not have.
		c.Failure = FailUnreachable
	}
	if j.regErr == nil {
		j.regErr = c
	}
}

// take counts one more signature looked at; past the bound none counts.
func (j *judgement) take() bool {
	j.looked++
	if j.looked > maxSignatures {
		j.tooMany = true
		return false
	}
	return true
}

// guard judges one signature with check, and a panic in it (in a library
// reading what a registry served) as a signature that does not count:
// neither a crash of dockgate nor a verdict.
func (j *judgement) guard(what string, check func()) {
	defer func() {
		if r := recover(); r != nil {
			j.reject(FailMalformed, "%s: verifying it failed: %v", what, r)
		}
	}()
	check()
}

// blob reads one signature blob of at most maxSignatureBlob bytes and
// checks it is the content its digest names.
func (j *judgement) blob(d v1.Descriptor) ([]byte, bool) {
	what := fmt.Sprintf("signature blob %s", d.Digest)
	if d.Size > maxSignatureBlob || d.Size < 0 {
		j.reject(FailMalformed, "%s: %d bytes exceeds %d", what, d.Size, maxSignatureBlob)
		return nil, false
	}
	if d.Digest.Algorithm != "sha256" {
		j.reject(FailMalformed, "%s: not a sha256 digest", what)
		return nil, false
	}
	l, err := remote.Layer(j.repo.Digest(d.Digest.String()), j.opts...)
	if err != nil {
		j.fail(what, err)
		return nil, false
	}
	rc, err := l.Compressed()
	if err != nil {
		j.fail(what, err)
		return nil, false
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSignatureBlob+1))
	if err != nil {
		j.fail(what, err)
		return nil, false
	}
	if len(b) > maxSignatureBlob {
		j.reject(FailMalformed, "%s exceeds %d bytes", what, maxSignatureBlob)
		return nil, false
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Digest.Hex {
		j.reject(FailMalformed, "%s: content does not match its digest", what)
		return nil, false
	}
	return b, true
}

// manifest reads one manifest by digest.
func (j *judgement) manifest(what string, ref name.Reference) (*v1.Manifest, bool) {
	desc, err := remote.Get(ref, j.opts...)
	if err != nil {
		if isNotFound(err) {
			return nil, false
		}
		j.fail(what, err)
		return nil, false
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil || m.SchemaVersion != 2 {
		j.reject(FailMalformed, "%s: not an image manifest: %v", what, err)
		return nil, false
	}
	return m, true
}

func (j *judgement) keyNames() string {
	if names := j.keys.Names(); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "no keys"
}
