package policytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
)

const sigPolicy = `g, user:jenkins, role:ci
p, *, endpoint, *, allow
p, *, image, **, allow
p, role:ci, signature, key:release, allow
p, user:alice, signature, *, allow
`

// sigTests are cases of a policy that requires signatures for role:ci,
// each with what it must come to.
const sigTests = `tests:
  - name: a pull by tag of a signed image
    as: [user:jenkins]
    method: POST
    path: /v1.47/images/create?fromImage=registry.example.com/team/app&tag=1
    registry:
      - {ref: "registry.example.com/team/app:1", digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", signed_by: [release]}
    expect: allow
    facts: [signature key:release]
  - name: a pull of an image signed by a key the policy does not have
    as: [user:jenkins]
    method: POST
    path: /v1.47/images/create?fromImage=registry.example.com/team/app&tag=2
    registry:
      - {ref: "registry.example.com/team/app:2", digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", signed_by: [someone]}
    expect: deny
    refused: signature unsigned
  - name: a registry that does not answer
    as: [user:jenkins]
    method: POST
    path: /v1.47/images/create?fromImage=registry.example.com/team/app&tag=3
    registry:
      - {ref: "registry.example.com/team/app:3", digest: "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", unreachable: true}
    expect: deny
    refused: signature unverified
  - name: a caller allowed any signature
    as: [user:alice]
    method: POST
    path: /v1.47/images/create?fromImage=registry.example.com/team/app&tag=2
    registry:
      - {ref: "registry.example.com/team/app:2", digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}
    expect: allow
    facts: [signature unsigned]
  - name: a create judged by the digest the image came from
    as: [user:jenkins]
    method: POST
    path: /v1.47/containers/create
    body: {Image: "registry.example.com/team/app:1"}
    images:
      - {ref: "registry.example.com/team/app:1", id: "sha256:1111111111111111111111111111111111111111111111111111111111111111", repo_digests: ["registry.example.com/team/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"], repo_tags: ["registry.example.com/team/app:1"]}
    registry:
      - {ref: "registry.example.com/team/app", digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", signed_by: [release]}
    expect: allow
`

func TestSignatureFixtures(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	os.WriteFile(filepath.Join(dir, "keys", "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "p.csv"), []byte(sigPolicy), 0o644)
	// A case that does not say what the registry holds fails: it is
	// unverified, never a guess.
	undeclared := "  - {name: undeclared, as: [user:jenkins], method: POST, path: \"/v1.47/images/create?fromImage=registry.example.com/team/app&tag=9\", expect: allow}\n"
	os.WriteFile(filepath.Join(dir, "p_test.yaml"), []byte(sigTests+undeclared), 0o644)
	p, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(filepath.Join(dir, "p_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), p, []*File{f})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res[:len(res)-1] {
		if !r.Pass {
			t.Errorf("%s: %q", r.Case.Name, r.Why)
		}
	}
	last := res[len(res)-1]
	if last.Pass || !strings.Contains(strings.Join(last.Why, " "), "declare registry.example.com/team/app:9 under registry:") {
		t.Errorf("an undeclared registry image: pass %v, why %q", last.Pass, last.Why)
	}
}

func TestMalformedRegistryFixtures(t *testing.T) {
	for _, tc := range []struct{ entry, msg string }{
		{`{ref: "Bad Ref", digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`, `ref "Bad Ref"`},
		{`{ref: "r.example.com/a:1", digest: "sha256:short"}`, `digest "sha256:short"`},
		{`{ref: "r.example.com/a@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`, "give the digest as digest:"},
	} {
		path := filepath.Join(t.TempDir(), "x_test.yaml")
		os.WriteFile(path, []byte("tests:\n  - name: a\n    as: [x]\n    method: GET\n    path: /_ping\n    expect: allow\n    registry:\n      - "+tc.entry+"\n"), 0o644)
		_, err := ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.entry, err, tc.msg)
		}
	}
}
