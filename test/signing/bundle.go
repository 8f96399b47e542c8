package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	bundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	emptyMediaType  = "application/vnd.oci.empty.v1+json"
	intotoType      = "application/vnd.in-toto+json"
)

// AttachBundle signs the image ref names with key into a Sigstore bundle
// (v0.3, the key's hint as verification material, no transparency log
// entry: cosign 3 with --tlog-upload=false) and attaches it as cosign 3
// does: an OCI manifest whose subject is the image, artifact type and one
// layer of the bundle's media type, and an empty config. ggcr updates the
// referrers tag sha256-<hex> when the registry has no referrers API.
func AttachBundle(ctx context.Context, ref string, key crypto.Signer, opts ...Option) error {
	o := makeOptions(opts)
	d, desc, err := subject(ctx, ref, o)
	if err != nil {
		return err
	}
	kp, err := newKeypair(key)
	if err != nil {
		return err
	}
	var content sign.Content
	kind := "dsse-envelope"
	if o.message {
		if o.digest != "" {
			return errors.New("attach bundle: a message signature signs the manifest's bytes, so ForDigest cannot apply")
		}
		content, kind = &sign.PlainData{Data: desc.Manifest}, "message-signature"
	} else {
		signed, err := o.signedDigest(d)
		if err != nil {
			return err
		}
		st, err := statement(signed, o.predicate)
		if err != nil {
			return err
		}
		content = &sign.DSSEData{Data: st, PayloadType: intotoType}
	}
	pb, err := sign.Bundle(content, kp, sign.BundleOptions{Context: ctx})
	if err != nil {
		return fmt.Errorf("sign bundle: %w", err)
	}
	if o.tamper != nil {
		if env := pb.GetDsseEnvelope(); env != nil {
			env.Signatures[0].Sig = o.tamper(env.Signatures[0].Sig)
		} else {
			ms := pb.GetMessageSignature()
			ms.Signature = o.tamper(ms.Signature)
		}
	}
	raw, err := protojson.Marshal(pb)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return attach(ctx, d, desc.Descriptor, raw, map[string]string{
		"dev.sigstore.bundle.content":       kind,
		"dev.sigstore.bundle.predicateType": o.predicate,
		"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339),
	}, o)
}

// statement is the in-toto statement cosign 3 signs for an image: its
// subject is the digest alone (no name, so the bundle binds no repository),
// with the annotations of `cosign sign -a`, none here.
func statement(digest v1.Hash, predicate string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"digest": map[string]string{digest.Algorithm: digest.Hex}}},
		"predicateType": predicate,
		"predicate":     map[string]any{},
	})
}

func attach(ctx context.Context, d name.Digest, subject v1.Descriptor, bundle []byte, annotations map[string]string, o *options) error {
	layer := static.NewLayer(bundle, bundleMediaType)
	config := static.NewLayer([]byte("{}"), emptyMediaType)
	for _, l := range []v1.Layer{layer, config} {
		if err := remote.WriteLayer(d.Context(), l, o.remote(ctx)...); err != nil {
			return fmt.Errorf("push bundle blob: %w", err)
		}
	}
	ld, err := descriptorOf(layer)
	if err != nil {
		return err
	}
	cd, err := descriptorOf(config)
	if err != nil {
		return err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  bundleMediaType,
		Config:        cd,
		Layers:        []v1.Descriptor{ld},
		Annotations:   annotations,
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := remote.Put(d.Context().Digest(h.String()), rawManifest{raw}, o.remote(ctx)...); err != nil {
		return fmt.Errorf("push bundle manifest: %w", err)
	}
	return nil
}

func descriptorOf(l v1.Layer) (v1.Descriptor, error) {
	dg, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	sz, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: dg, Size: sz}, nil
}

type rawManifest struct{ raw []byte }

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// keypair is sigstore-go's signing key interface over a crypto.Signer,
// with the algorithm cosign uses for that key by default.
type keypair struct {
	signer crypto.Signer
	alg    signature.AlgorithmDetails
	hint   []byte
}

func newKeypair(k crypto.Signer) (*keypair, error) {
	alg, err := signature.GetDefaultAlgorithmDetails(k.Public())
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &keypair{signer: k, alg: alg, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *keypair) GetHint() []byte                { return k.hint }
func (k *keypair) GetPublicKey() crypto.PublicKey { return k.signer.Public() }
func (k *keypair) GetKeyAlgorithm() string {
	switch k.alg.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.signer.Public())
	return string(b), err
}

// SignData signs data as sigstore-go's own keypair does: the hash of data,
// except for Ed25519, which hashes inside.
func (k *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.alg.GetHashType()
	toSign := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		toSign = h.Sum(nil)
	}
	var opts crypto.SignerOpts = hf
	if _, ok := k.signer.(ed25519.PrivateKey); ok {
		opts = crypto.Hash(0)
	}
	sig, err := k.signer.Sign(rand.Reader, toSign, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return sig, toSign, nil
}
