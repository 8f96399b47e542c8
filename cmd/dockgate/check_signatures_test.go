package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/dockgate/dockgate/test/signing"
)

func TestCheckSignatureKeys(t *testing.T) {
	withKey := func(t *testing.T, rows string) (dir, fingerprint string) {
		dir = t.TempDir()
		if _, err := signing.GenerateKey(filepath.Join(dir, "keys"), "release"); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "a.csv"), []byte(rows), 0o644)
		raw, _ := os.ReadFile(filepath.Join(dir, "keys", "release.pub"))
		b, _ := pem.Decode(raw)
		sum := sha256.Sum256(b.Bytes)
		return dir, "SHA256:" + hex.EncodeToString(sum[:])
	}
	required, fp := withKey(t, "p, role:ci, endpoint, *, allow\np, role:ci, signature, key:release, allow\n")
	unused, _ := withKey(t, "p, *, endpoint, *, allow\n")
	noKeys := t.TempDir()
	os.WriteFile(filepath.Join(noKeys, "a.csv"), []byte("p, *, signature, *, allow\np, role:ci, signature, unsigned, deny\n"), 0o644)
	missingKey := t.TempDir()
	os.WriteFile(filepath.Join(missingKey, "a.csv"), []byte("p, role:ci, signature, key:release, allow\n"), 0o644)

	tests := []struct {
		name           string
		dir            string
		code           int
		stdout, stderr string // regexps
	}{
		{"the keys a policy requires are listed with their fingerprints", required, 0,
			`^key: release \(ECDSA P-256\) ` + regexp.QuoteMeta(fp) + `\nok: `, `^$`},
		{"keys no row names are a warning: nothing is verified", unused, 0,
			`^key: release \(ECDSA P-256\) SHA256:[0-9a-f]{64}\nok: `, `warning: keys/ holds 1 key\(s\) \(release\) but no row names the signature kind`},
		{"signature rows without keys are a warning: every registry image is unsigned", noKeys, 0,
			`^ok: `, `warning: a row names the signature kind but the policy has no keys`},
		{"a row naming a key the policy does not have does not load", missingKey, 1,
			`^$`, `a\.csv:1: .*release`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "check", "--config", "", "--policy", tt.dir)
			if code != tt.code || !regexp.MustCompile(tt.stdout).MatchString(out) || !regexp.MustCompile(tt.stderr).MatchString(errOut) {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
		})
	}
}
