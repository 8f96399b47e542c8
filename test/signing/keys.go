package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// GenerateKey makes an ECDSA P-256 key, as `cosign generate-key-pair` does,
// and writes its public half to dir/NAME.pub (a policy's keys/ directory).
func GenerateKey(dir, name string) (crypto.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := WritePublicKey(dir, name, k.Public()); err != nil {
		return nil, err
	}
	return k, nil
}

// WritePublicKey writes pub to dir/NAME.pub as the PEM "PUBLIC KEY" block
// cosign writes to cosign.pub.
func WritePublicKey(dir, name string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("public key %s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return os.WriteFile(filepath.Join(dir, name+".pub"), b, 0o644)
}
