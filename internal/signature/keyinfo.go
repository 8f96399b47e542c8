package signature

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// KeyInfo describes one key of a set, for an operator to compare with the
// key a release pipeline signs with (dockgate check prints it).
type KeyInfo struct {
	Name string
	// Algorithm is "ECDSA P-256", "Ed25519", "RSA 4096" and the like.
	Algorithm string
	// Fingerprint is "SHA256:<hex>" of the key's DER SubjectPublicKeyInfo,
	// the bytes inside the PEM block: `openssl pkey -pubin -in KEY.pub
	// -outform DER | sha256sum` gives the same hex.
	Fingerprint string
}

// Keys describes the keys of the set, sorted by name.
func (s *KeySet) Keys() []KeyInfo {
	if s == nil {
		return nil
	}
	out := make([]KeyInfo, 0, len(s.keys))
	for _, k := range s.keys {
		sum := sha256.Sum256(k.der)
		out = append(out, KeyInfo{Name: k.name, Algorithm: algorithmOf(k.der), Fingerprint: "SHA256:" + hex.EncodeToString(sum[:])})
	}
	return out
}

func algorithmOf(der []byte) string {
	// The DER was parsed when the set was made; it parses again.
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return "unknown"
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}
