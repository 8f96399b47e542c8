package signing

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option changes what is signed, for the attacks a verifier must refuse.
type Option func(*options)

type options struct {
	digest    string              // the digest the payload names; "" = the image's
	reference string              // the docker-reference the payload names; "" = the repository
	tamper    func([]byte) []byte // applied to the signature after signing
	message   bool                // a message signature bundle instead of DSSE
	predicate string              // the DSSE statement's predicate type
	transport http.RoundTripper
}

// ForDigest makes the signature name digest instead of the image it is
// attached to: a signature of other content, replayed.
func ForDigest(digest string) Option { return func(o *options) { o.digest = digest } }

// WithDockerReference makes a cosign payload name ref as the repository it
// was signed in (cosign writes the image's repository).
func WithDockerReference(ref string) Option { return func(o *options) { o.reference = ref } }

// Tamper changes the signature bytes after signing (a corrupted signature,
// or a base64 annotation that does not decode, for SignCosign).
func Tamper(f func([]byte) []byte) Option { return func(o *options) { o.tamper = f } }

// MessageSignature makes AttachBundle sign the image manifest's bytes (a
// bundle with a messageSignature, as recent cosign writes for an image)
// instead of a DSSE in-toto statement.
func MessageSignature() Option { return func(o *options) { o.message = true } }

// WithPredicate makes AttachBundle's statement carry another predicate
// type: an attestation rather than a signature.
func WithPredicate(t string) Option { return func(o *options) { o.predicate = t } }

// WithTransport sends the registry requests through t (for a registry
// served by httptest over TLS).
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

func makeOptions(opts []Option) *options {
	o := &options{predicate: "https://sigstore.dev/cosign/sign/v1"}
	for _, f := range opts {
		f(o)
	}
	return o
}

func (o *options) remote(ctx context.Context) []remote.Option {
	r := []remote.Option{remote.WithContext(ctx)}
	if o.transport != nil {
		r = append(r, remote.WithTransport(o.transport))
	}
	return r
}

// subject resolves ref to the image descriptor it names now.
func subject(ctx context.Context, ref string, o *options) (name.Digest, *remote.Descriptor, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, nil, fmt.Errorf("sign %q: %w", ref, err)
	}
	desc, err := remote.Get(r, o.remote(ctx)...)
	if err != nil {
		return name.Digest{}, nil, fmt.Errorf("sign %q: %w", ref, err)
	}
	return r.Context().Digest(desc.Digest.String()), desc, nil
}

func (o *options) signedDigest(d name.Digest) (v1.Hash, error) {
	if o.digest == "" {
		return v1.NewHash(d.DigestStr())
	}
	return v1.NewHash(o.digest)
}
