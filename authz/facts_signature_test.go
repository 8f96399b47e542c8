package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/signature"
)

// fakeSignatures answers for the fake daemon's images: app's digest dA is
// signed by release; tool's dB by nobody the policy knows; the registry
// down.example.com does not answer; tags resolve as tags says.
type fakeSignatures struct {
	tags     map[string]string
	verified []string
}

func (f *fakeSignatures) Verify(_ context.Context, repo, digest string, keys *signature.KeySet) signature.Result {
	f.verified = append(f.verified, repo+"@"+digest)
	switch {
	case strings.HasPrefix(repo, "down.example.com/"):
		return signature.Result{Status: signature.Unverified, Cause: "registry down.example.com unreachable"}
	case repo == "reg.example.com/approved/app" && digest == dA && slices.Contains(keys.Names(), "release"):
		return signature.Result{Status: signature.Signed, Keys: []string{"release"}}
	}
	return signature.Result{Status: signature.Unsigned, Cause: "no signature"}
}

func (f *fakeSignatures) Resolve(_ context.Context, ref string) (string, error) {
	if d, ok := f.tags[ref]; ok {
		return d, nil
	}
	return "", errors.New("manifest unknown")
}

func signaturePolicy(t *testing.T, rows string) *policy.Policy {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	fsys := fstest.MapFS{
		"p.csv":            {Data: []byte(rows)},
		"keys/release.pub": {Data: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})},
	}
	p, err := policy.LoadFS(fsys, "sig")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignatureFacts(t *testing.T) {
	const rows = `g, uid:1000, role:ci
p, *, endpoint, *, allow
p, *, image, **, allow
p, *, local-image, **, allow
p, *, build, **, allow
p, role:ci, signature, key:release, allow
p, uid:0, signature, *, allow
`
	p := signaturePolicy(t, rows)
	body := func(image string) string { return `{"Image":"` + image + `"}` }
	cases := []struct {
		name      string
		as        string
		target    string
		body      string
		noVerify  bool // the decider has no verifier
		want      []string
		allow     bool
		reason    string // part of the refusal
		forwarded string // the target forwarded, "" for as received
		tag       *ImageTag
	}{
		{name: "a pull by tag of a signed image is pinned to the digest verified, then tagged", as: "uid:1000",
			target: "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp&tag=1",
			want:   []string{"image reg.example.com/approved/app:1", "signature key:release"}, allow: true,
			forwarded: "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp&tag=" + strings.Replace(dA, ":", "%3A", 1),
			tag:       &ImageTag{Image: "reg.example.com/approved/app@" + dA, Repo: "reg.example.com/approved/app", Tag: "1"}},
		{name: "a pull by digest of a signed image", as: "uid:1000", target: "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp&tag=" + dA,
			want: []string{"signature key:release"}, allow: true},
		{name: "a tag moved to unsigned content", as: "uid:1000", target: "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp&tag=2",
			want: []string{"signature unsigned"}, reason: "uid:1000 may not signature unsigned"},
		{name: "a tag the registry cannot resolve", as: "uid:1000", target: "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp&tag=missing",
			want: []string{"signature unverified"}, reason: "could not be looked up: manifest unknown"},
		{name: "a registry that does not answer", as: "uid:1000", target: "/v1.41/images/create?fromImage=down.example.com%2Fapp&tag=" + dA,
			want: []string{"signature unverified"}, reason: "registry down.example.com unreachable"},
		{name: "a pull of every tag cannot be pinned", as: "uid:1000", target: "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp",
			want: []string{"signature unverified"}, reason: "pull one tag or digest"},
		{name: "without registry access nothing is verified", as: "uid:1000", noVerify: true, target: "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp&tag=" + dA,
			want: []string{"signature unverified"}, reason: "no registry access"},
		{name: "a create is judged by the RepoDigest of the image here", as: "uid:1000", target: createTarget, body: body("reg.example.com/approved/app:1"),
			want: []string{"signature key:release"}, allow: true},
		{name: "a local image under an approved name is unsigned", as: "uid:1000", target: createTarget, body: body("reg.example.com/approved/app:2"),
			want: []string{"signature unsigned"}, reason: "has no registry digest"},
		{name: "an image signed by no key of the policy", as: "uid:1000", target: createTarget, body: body("evil/tool"),
			want: []string{"signature unsigned"}, reason: "docker.io/evil/tool@" + dB + " has no signature by a key of the policy"},
		{name: "a create of an absent image has no signature fact: dockerd answers 404 and the pull is judged", as: "uid:1000", target: createTarget, body: body("reg.example.com/approved/new:1"),
			allow: true},
		{name: "a role that does not require signatures", as: "uid:0", target: createTarget, body: body("evil/tool"),
			want: []string{"signature unsigned"}, allow: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigs := &fakeSignatures{tags: map[string]string{"reg.example.com/approved/app:1": dA, "reg.example.com/approved/app:2": dB}}
			d := &PolicyDecider{Extract: newExtractor(fakeHost(t)), Inspector: newFakeInspector()}
			if !tc.noVerify {
				d.Signatures = sigs
			}
			d.Put(p, false)
			u := parseTarget(t, tc.target)
			m, err := NewRouter().Route(http.MethodPost, u)
			if err != nil {
				t.Fatal(err)
			}
			req := &Request{Method: http.MethodPost, URL: u, Header: http.Header{"Content-Type": {"application/json"}},
				Caller: tc.as, Subjects: []string{tc.as, "*"}}
			if tc.body != "" {
				req.Body = []byte(tc.body)
			}
			dec := Judge(context.Background(), d, m, req)
			var have []string
			for _, f := range dec.Facts {
				have = append(have, f.Kind+" "+f.Value)
			}
			for _, w := range tc.want {
				if !slices.Contains(have, w) {
					t.Errorf("missing %q in %q", w, have)
				}
			}
			if len(tc.want) == 0 && slices.ContainsFunc(have, func(s string) bool { return strings.HasPrefix(s, "signature ") }) {
				t.Errorf("unexpected signature fact in %q", have)
			}
			if dec.Allow != tc.allow {
				t.Fatalf("allowed %v, want %v: %s", dec.Allow, tc.allow, dec.Reason)
			}
			if !tc.allow && !strings.Contains(dec.Reason, tc.reason) {
				t.Errorf("refusal %q, want one containing %q", dec.Reason, tc.reason)
			}
			if tc.allow && dec.Target != tc.forwarded {
				t.Errorf("forwarded %q, want %q", dec.Target, tc.forwarded)
			}
			if (dec.Tag == nil) != (tc.tag == nil) || dec.Tag != nil && *dec.Tag != *tc.tag {
				t.Errorf("tag %+v, want %+v", dec.Tag, tc.tag)
			}
		})
	}
}

func TestNoSignatureRowsLookNothingUp(t *testing.T) {
	p := signaturePolicy(t, "p, *, endpoint, *, allow\np, *, image, **, allow\n")
	sigs := &fakeSignatures{}
	d := &PolicyDecider{Extract: newExtractor(fakeHost(t)), Inspector: newFakeInspector(), Signatures: sigs}
	d.Put(p, false)
	u := parseTarget(t, "/v1.41/images/create?fromImage=reg.example.com%2Fapproved%2Fapp&tag=1")
	m, _ := NewRouter().Route(http.MethodPost, u)
	dec := Judge(context.Background(), d, m, &Request{Method: http.MethodPost, URL: u, Caller: "uid:1000", Subjects: []string{"uid:1000", "*"}})
	if !dec.Allow || dec.Target != "" || dec.Tag != nil || len(sigs.verified) > 0 {
		t.Fatalf("a policy without signature rows verified %v (allow %v, target %q, tag %v)", sigs.verified, dec.Allow, dec.Target, dec.Tag)
	}
}
