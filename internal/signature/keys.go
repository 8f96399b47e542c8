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
	var files []KeyFile
	for _, e := range entries {
		if !IsKeyFile(e.Name()) || e.IsDir() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		files = append(files, KeyFile{Name: e.Name(), Data: raw})
	}
	ks, err := ParseKeys(files)
	var ke *KeyError
	if errors.As(err, &ke) {
		ke.File = filepath.Join(dir, ke.File)
	}
	return ks, err
}

// KeyFile is one key file as read: its name (NAME.pub) and its bytes.
type KeyFile struct {
	Name string
	Data []byte
}

// IsKeyFile says whether a file of a keys directory is a key: *.pub, not
// hidden (an editor's .release.pub.swp is not a key).
func IsKeyFile(file string) bool {
	return strings.HasSuffix(file, ".pub") && !strings.HasPrefix(file, ".")
}

// KeyError is a key file that cannot be used: its name, and the line of
// the PEM text at fault (0 when it is the whole file).
type KeyError struct {
	File string
	Line int
	Msg  string
}

func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ParseKeys reads key files already read (a policy snapshot's), as
// LoadKeys reads a directory's. The first error is a *KeyError.
func ParseKeys(files []KeyFile) (*KeySet, error) {
	var keys []*publicKey
	seen := map[string]bool{}
	for _, f := range files {
		name, ok := strings.CutSuffix(f.Name, ".pub")
		if !ok {
			return nil, &KeyError{File: f.Name, Msg: "a key file's name ends in .pub"}
		}
		if !keyName.MatchString(name) {
			return nil, &KeyError{File: f.Name, Msg: fmt.Sprintf("key name %q must match [a-z0-9][a-z0-9._-]*", name)}
		}
		if seen[name] {
			return nil, &KeyError{File: f.Name, Msg: "a second key named " + name}
		}
		seen[name] = true
		k, line, err := parsePublicKey(name, f.Data)
		if err != nil {
			return nil, &KeyError{File: f.Name, Line: line, Msg: err.Error()}
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
func parsePublicKey(name string, raw []byte) (*publicKey, int, error) {
	block, rest := pem.Decode(raw)
	if block == nil {
		return nil, 0, errors.New("no PEM block (want -----BEGIN PUBLIC KEY-----)")
	}
	startLine := lineOf(raw, bytes.Index(raw, []byte("-----BEGIN")))
	if block.Type != "PUBLIC KEY" {
		return nil, startLine, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	if trimmed := bytes.TrimSpace(rest); len(trimmed) > 0 {
		at := len(raw) - len(rest) + bytes.Index(rest, trimmed[:1])
		return nil, lineOf(raw, at), errors.New("unexpected data after the public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, startLine, err
	}
	hashes, err := keyHashes(pub)
	if err != nil {
		return nil, startLine, err
	}
	k := &publicKey{name: name, der: block.Bytes}
	for _, h := range hashes {
		v, err := sigsig.LoadVerifier(pub, h)
		if err != nil {
			return nil, startLine, err
		}
		bv, err := bundleVerifier(v)
		if err != nil {
			return nil, startLine, err
		}
		k.verifiers = append(k.verifiers, v)
		k.bundles = append(k.bundles, bv)
	}
	return k, 0, nil
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
