package signing

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// SignCosign signs the image ref names (repo@digest or repo:tag) with key
// and pushes the signature as cosign 2 does with --tlog-upload=false: a
// simple-signing payload appended as a layer to the tag sha256-<hex>.sig,
// with its signature in the dev.cosignproject.cosign/signature annotation.
func SignCosign(ctx context.Context, ref string, key crypto.Signer, opts ...Option) error {
	o := makeOptions(opts)
	d, _, err := subject(ctx, ref, o)
	if err != nil {
		return err
	}
	signed, err := o.signedDigest(d)
	if err != nil {
		return err
	}
	p := payload.Cosign{Image: d.Context().Digest(signed.String()), ClaimedIdentity: o.reference}
	body, err := p.MarshalJSON()
	if err != nil {
		return err
	}
	signer, err := signature.LoadDefaultSigner(key)
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	sig, err := signer.SignMessage(strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	annotation := base64.StdEncoding.EncodeToString(sig)
	if o.tamper != nil {
		annotation = string(o.tamper([]byte(annotation)))
	}
	return appendSignature(ctx, d, body, annotation, o)
}

// appendSignature adds one layer to the .sig image, creating it as cosign
// does (an OCI manifest with an empty config) when the tag is absent.
func appendSignature(ctx context.Context, d name.Digest, body []byte, annotation string, o *options) error {
	tag := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
	base, err := remote.Image(tag, o.remote(ctx)...)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		base = mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	case err != nil:
		return fmt.Errorf("signatures %s: %w", tag, err)
	}
	layer := static.NewLayer(body, "application/vnd.dev.cosign.simplesigning.v1+json")
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       layer,
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": annotation},
	})
	if err != nil {
		return fmt.Errorf("signature image: %w", err)
	}
	if err := remote.Write(tag, img, o.remote(ctx)...); err != nil {
		return fmt.Errorf("push %s: %w", tag, err)
	}
	return nil
}
