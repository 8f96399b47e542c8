package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func publicPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func writeKeyedPolicy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPolicyKeys(t *testing.T) {
	release := publicPEM(t)
	const rows = "p, role:ci, endpoint, *, allow\np, role:ci, signature, key:release, allow\n"
	cases := []struct {
		name     string
		files    map[string]string
		wantErr  string
		keys     []string
		verifies bool
	}{
		{name: "a key the rows name", files: map[string]string{"ci.csv": rows, "keys/release.pub": release}, keys: []string{"release"}, verifies: true},
		{name: "keys without signature rows verify nothing", files: map[string]string{"ci.csv": "p, role:ci, endpoint, *, allow\n", "keys/release.pub": release}, keys: []string{"release"}},
		{name: "a wildcard kind is no signature row", files: map[string]string{"ci.csv": "p, uid:0, *, **, allow\n"}},
		{name: "a row naming a key not installed", files: map[string]string{"ci.csv": rows}, wantErr: "ci.csv:2: signature key:release: there is no keys/release.pub (keys: none)"},
		{name: "a row naming a misspelt key", files: map[string]string{"ci.csv": rows, "keys/relase.pub": release}, wantErr: "ci.csv:2: signature key:release: there is no keys/release.pub (keys: relase)"},
		{name: "a value no signature fact has", files: map[string]string{"ci.csv": "p, role:ci, signature, signed, allow\n"}, wantErr: `ci.csv:1: signature value "signed": want key:<name>, unsigned or unverified`},
		{name: "patterns and the other values load", files: map[string]string{"ci.csv": "p, *, signature, *, allow\np, role:ci, signature, unsigned, deny\np, role:ci, signature, unverified, deny\np, role:x, signature, key:*, allow\n"}, verifies: true},
		{name: "a private key where the public key belongs", files: map[string]string{"ci.csv": rows, "keys/release.pub": "\n-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}, wantErr: `keys/release.pub:2: PEM block is "EC PRIVATE KEY"`},
		{name: "other files in keys/ are not keys", files: map[string]string{"ci.csv": rows, "keys/release.pub": release, "keys/cosign.key": "secret", "keys/.release.pub.swp": "x", "keys/README": "x"}, keys: []string{"release"}, verifies: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := LoadDir(writeKeyedPolicy(t, tc.files))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(p.Keys.Names(), ","); got != strings.Join(tc.keys, ",") {
				t.Errorf("keys %q, want %q", got, tc.keys)
			}
			if p.VerifiesSignatures != tc.verifies {
				t.Errorf("VerifiesSignatures = %v, want %v", p.VerifiesSignatures, tc.verifies)
			}
		})
	}
}

func TestAChangedKeyIsAnotherPolicy(t *testing.T) {
	dir := writeKeyedPolicy(t, map[string]string{"ci.csv": "p, role:ci, signature, key:release, allow\n", "keys/release.pub": publicPEM(t)})
	before, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys/release.pub"), []byte(publicPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if before.Hash == after.Hash || before.Keys.Fingerprint() == after.Keys.Fingerprint() {
		t.Fatal("a replaced key left the policy's hash or the keys' fingerprint unchanged: cached verdicts and the audit trail would not tell")
	}
	if got := after.Files[len(after.Files)-1]; got != "keys/release.pub" {
		t.Fatalf("files read: %v", after.Files)
	}
}

func TestAChangedKeyIsSeenByTheWatcher(t *testing.T) {
	dir := writeKeyedPolicy(t, map[string]string{"ci.csv": "p, role:ci, signature, key:release, allow\n", "keys/release.pub": publicPEM(t)})
	before := dirState(dir)
	if err := os.WriteFile(filepath.Join(dir, "keys/release.pub"), []byte(publicPEM(t)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dirState(dir) == before {
		t.Fatal("the watcher's view of the policy did not change with its key")
	}
	before = dirState(dir)
	if err := os.WriteFile(filepath.Join(dir, "keys/notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dirState(dir) != before {
		t.Fatal("a file that is no key changed the watcher's view")
	}
}
