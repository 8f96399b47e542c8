package signature

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
)

// keyName is what a key may be called: its name becomes a policy value
// (key:<name>), so it stays within what a pattern can name literally.
var keyName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// KeySet is the public keys of a policy, by name. A nil or empty set
// verifies nothing.
type KeySet struct {
	keys        []*publicKey // sorted by name
	fingerprint string
}

type publicKey struct {
	name string
	der  []byte
	// verifiers holds one verifier per hash the key's signatures may use:
	// cosign 2 signed with SHA-256 whatever the curve, cosign 3 signs a
	// P-384 key's payloads with SHA-384.
	verifiers []sigsig.Verifier
	// bundles verifies Sigstore bundles with this key as the only trusted
	// material, one per verifier above.
	bundles []*verify.Verifier
}

// LoadKeys reads every *.pub file in dir as a PEM public key as cosign
// accepts them (ECDSA P-256 and P-384, Ed25519, RSA of 2048 bits or more);
// a key's name is its file name without ".pub". A missing dir is an empty
// set. Errors name the file, and the line where the PEM text is wrong.
func LoadKeys(dir string) (*KeySet, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return newKeySet(nil), nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	var keys []*publicKey
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pub")
		if !ok || e.IsDir() {
			continue
		}
		file := filepath.Join(dir, e.Name())
		if !keyName.MatchString(name) {
			return nil, fmt.Errorf("%s: key name %q must match [a-z0-9][a-z0-9._-]*", file, name)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		k, err := parsePublicKey(name, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		keys = append(keys, k)
	}
	return newKeySet(keys), nil
}

func newKeySet(keys []*publicKey) *KeySet {
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:", len(k.name), k.name, len(k.der))
		h.Write(k.der)
	}
	return &KeySet{keys: keys, fingerprint: hex.EncodeToString(h.Sum(nil))}
}

// Names returns the names of the keys, sorted.
func (s *KeySet) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, len(s.keys))
	for i, k := range s.keys {
		names[i] = k.name
	}
	return names
}

// Fingerprint is a hash of the names and keys: two sets with the same
// fingerprint verify the same signatures, so it keys cached results.
func (s *KeySet) Fingerprint() string {
	if s == nil {
		return newKeySet(nil).fingerprint
	}
	return s.fingerprint
}

// parsePublicKey reads exactly one PEM "PUBLIC KEY" block, as cosign's
// generate-key-pair writes it; anything else in the file is an error, so
// that a second key pasted below the first is not silently ignored.
func parsePublicKey(name string, raw []byte) (*publicKey, error) {
	block, rest := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM block (want -----BEGIN PUBLIC KEY-----)")
	}
	startLine := lineOf(raw, bytes.Index(raw, []byte("-----BEGIN")))
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("line %d: PEM block is %q, want \"PUBLIC KEY\"", startLine, block.Type)
	}
	if trimmed := bytes.TrimSpace(rest); len(trimmed) > 0 {
		at := len(raw) - len(rest) + bytes.Index(rest, trimmed[:1])
		return nil, fmt.Errorf("line %d: unexpected data after the public key", lineOf(raw, at))
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", startLine, err)
	}
	hashes, err := keyHashes(pub)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", startLine, err)
	}
	k := &publicKey{name: name, der: block.Bytes}
	for _, h := range hashes {
		v, err := sigsig.LoadVerifier(pub, h)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", startLine, err)
		}
		bv, err := bundleVerifier(v)
		if err != nil {
			return nil, err
		}
		k.verifiers = append(k.verifiers, v)
		k.bundles = append(k.bundles, bv)
	}
	return k, nil
}

// keyHashes says which hashes a key's signatures are checked with, and
// refuses the keys cosign does not sign with.
func keyHashes(pub crypto.PublicKey) ([]crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []crypto.Hash{crypto.SHA256}, nil
		case elliptic.P384():
			return []crypto.Hash{crypto.SHA384, crypto.SHA256}, nil
		}
		return nil, fmt.Errorf("ECDSA curve %s is not accepted (P-256 or P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too short (2048 or more)", k.N.BitLen())
		}
		return []crypto.Hash{crypto.SHA256}, nil
	case ed25519.PublicKey:
		return []crypto.Hash{crypto.Hash(0)}, nil
	}
	return nil, fmt.Errorf("key type %T is not accepted (ECDSA, Ed25519 or RSA)", pub)
}

// bundleVerifier verifies Sigstore bundles whose only trusted material is
// one key, whatever key hint the bundle names: the hint is the signer's
// choice, so it may pick a key but never stand for one. No transparency
// log or timestamp is required, which is what offline verification with a
// long-lived key means.
func bundleVerifier(v sigsig.Verifier) (*verify.Verifier, error) {
	key := root.NewExpiringKey(v, time.Time{}, time.Time{})
	material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return key, nil
	})
	bv, err := verify.NewVerifier(material, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, fmt.Errorf("bundle verifier: %w", err)
	}
	return bv, nil
}

func lineOf(raw []byte, offset int) int {
	if offset < 0 {
		offset = 0
	}
	return bytes.Count(raw[:offset], []byte("\n")) + 1
}
