package signature

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestLoadKeys(t *testing.T) {
	s := testSigners(t)
	releasePEM, err := os.ReadFile(filepath.Join(s.keysDir, "release.pub"))
	must(t, err)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	must(t, err)
	p521DER, err := x509.MarshalPKIXPublicKey(p521.Public())
	must(t, err)
	privDER, err := x509.MarshalECPrivateKey(p521)
	must(t, err)

	tests := []struct {
		name      string
		files     map[string]string // file name → content; nil map: no directory
		wantNames []string
		wantErr   string // substring; "" = no error
	}{
		{name: "a policy without a keys directory has no keys", files: nil, wantNames: nil},
		{name: "the name is the file name without .pub, sorted",
			files:     map[string]string{"release.pub": string(releasePEM), "ci-2.pub": string(releasePEM), "README": "not a key", "cosign.key": "ignored"},
			wantNames: []string{"ci-2", "release"}},
		{name: "an upper-case name cannot be a policy value",
			files: map[string]string{"Release.pub": string(releasePEM)}, wantErr: `Release.pub: key name "Release" must match`},
		{name: "a file that is not PEM",
			files: map[string]string{"bad.pub": "ssh-ed25519 AAAA..."}, wantErr: "bad.pub: no PEM block"},
		{name: "a private key where the public key belongs",
			files: map[string]string{"oops.pub": pemOf(t, "EC PRIVATE KEY", privDER)}, wantErr: `oops.pub:1: PEM block is "EC PRIVATE KEY"`},
		{name: "a second key pasted below the first is an error, not ignored",
			files: map[string]string{"two.pub": string(releasePEM) + "\n" + string(releasePEM)}, wantErr: "two.pub:6: unexpected data after the public key"},
		{name: "a curve cosign does not sign with",
			files: map[string]string{"p521.pub": "# comment line\n" + pemOf(t, "PUBLIC KEY", p521DER)}, wantErr: "p521.pub:2: ECDSA curve P-521 is not accepted"},
		{name: "garbage inside the PEM block",
			files: map[string]string{"junk.pub": pemOf(t, "PUBLIC KEY", []byte("junk"))}, wantErr: "junk.pub:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			if tt.files != nil {
				must(t, os.Mkdir(dir, 0o755))
				for n, c := range tt.files {
					must(t, os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644))
				}
			}
			ks, err := LoadKeys(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadKeys error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKeys: %v", err)
			}
			if !slices.Equal(ks.Names(), tt.wantNames) {
				t.Errorf("Names = %v, want %v", ks.Names(), tt.wantNames)
			}
		})
	}
}

func TestKeySetFingerprint(t *testing.T) {
	s := testSigners(t)
	a := mustLoadKeys(t, s.keysDir)
	b := mustLoadKeys(t, s.keysDir)
	if a.Fingerprint() != b.Fingerprint() {
		t.Errorf("the same keys loaded twice have fingerprints %s and %s", a.Fingerprint(), b.Fingerprint())
	}
	release, err := os.ReadFile(filepath.Join(s.keysDir, "release.pub"))
	must(t, err)
	ci, err := os.ReadFile(filepath.Join(s.keysDir, "ci.pub"))
	must(t, err)
	set := func(files map[string][]byte) string {
		dir := t.TempDir()
		for n, c := range files {
			must(t, os.WriteFile(filepath.Join(dir, n), c, 0o644))
		}
		return mustLoadKeys(t, dir).Fingerprint()
	}
	seen := map[string]string{}
	for name, files := range map[string]map[string][]byte{
		"no keys":                    {},
		"release":                    {"release.pub": release},
		"release's key named ci":     {"ci.pub": release},
		"ci's key named release":     {"release.pub": ci},
		"both":                       {"release.pub": release, "ci.pub": ci},
		"release's key under a name": {"releasec.pub": release},
	} {
		fp := set(files)
		if other, dup := seen[fp]; dup {
			t.Errorf("key sets %q and %q have the same fingerprint", name, other)
		}
		seen[fp] = name
	}
	var nilSet *KeySet
	if nilSet.Fingerprint() != set(map[string][]byte{}) || nilSet.Names() != nil {
		t.Error("a nil key set is not the empty one")
	}
}
