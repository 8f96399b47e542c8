package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func TestKeysDescribesEachKeyAsOpensslWouldFingerprintIt(t *testing.T) {
	s := testSigners(t)
	ks, err := LoadKeys(s.keysDir)
	must(t, err)
	want := map[string]string{"ci": "ECDSA P-256", "ed": "Ed25519", "p384": "ECDSA P-384", "release": "ECDSA P-256", "rsa": "RSA 2048"}
	got := ks.Keys()
	if len(got) != len(want) {
		t.Fatalf("Keys() = %v, want one per key of %v", got, want)
	}
	for i, k := range got {
		if i > 0 && got[i-1].Name >= k.Name {
			t.Errorf("Keys() not sorted by name: %v", got)
		}
		if k.Algorithm != want[k.Name] {
			t.Errorf("%s: algorithm %q, want %q", k.Name, k.Algorithm, want[k.Name])
		}
		raw, err := os.ReadFile(filepath.Join(s.keysDir, k.Name+".pub"))
		must(t, err)
		block, _ := pem.Decode(raw)
		sum := sha256.Sum256(block.Bytes)
		if fp := "SHA256:" + hex.EncodeToString(sum[:]); k.Fingerprint != fp {
			t.Errorf("%s: fingerprint %s, want %s (sha256 of the DER in its PEM file)", k.Name, k.Fingerprint, fp)
		}
	}
	if (*KeySet)(nil).Keys() != nil {
		t.Error("a nil set describes keys")
	}
}
