package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/test/signing"
)

// TestExplainShowsSignatures explains pulls and creates under a policy
// that requires role:ci's images to be signed by the key "release",
// against an in-process registry.
func TestExplainShowsSignatures(t *testing.T) {
	b := newSigBed(t)
	repo := b.host + "/" + b.repo
	unsigned := b.push(t, "unsigned")
	stranger, err := signing.GenerateKey(t.TempDir(), "stranger")
	if err != nil {
		t.Fatal(err)
	}
	byStranger := b.push(t, "stranger")
	if err := signing.AttachBundle(context.Background(), b.ref(byStranger), stranger); err != nil {
		t.Fatal(err)
	}
	bundled := b.push(t, "bundled")
	if err := signing.AttachBundle(context.Background(), b.ref(bundled), b.release); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Dir(b.keys)
	os.WriteFile(filepath.Join(pol, "a.csv"), []byte(`p, *, endpoint, *, allow
p, *, image, **, allow
p, *, signature, *, allow
p, role:ci, signature, key:release, allow
p, role:ci, signature, unsigned, deny
p, role:ci, signature, unverified, deny
`), 0o644)
	q := regexp.QuoteMeta
	pull := func(tag string) []string {
		return []string{"POST", "/v1.41/images/create?fromImage=" + repo + "&tag=" + tag}
	}
	tests := []struct {
		name   string
		args   []string
		body   string
		down   bool
		code   int
		stdout []string // regexps
	}{
		{"a pull by tag is resolved, verified and forwarded as a pull of the digest verified",
			append([]string{"--as", "role:ci"}, pull("1")...), "", false, 0,
			[]string{`(?m)^signature: +` + q(repo+":1 is "+b.digest) + ` in its registry now$`,
				`(?m)^signature: +` + q(repo+"@"+b.digest) + ` signed by release$`,
				`(?m)^  allow +signature +key:release +a\.csv:\d+: `,
				`(?m)^forwarded as: POST /v1\.41/images/create\?.*tag=` + q(strings.Replace(b.digest, ":", "%3A", 1)) + `$`}},
		{"a Sigstore bundle attached as a referrer verifies as well",
			append([]string{"--as", "role:ci"}, pull("bundled")...), "", false, 0,
			[]string{`(?m)^signature: +` + q(repo+"@"+bundled) + ` signed by release$`}},
		{"an unsigned image is refused to the role that requires signatures, with why",
			append([]string{"--as", "role:ci"}, pull("unsigned")...), "", false, 1,
			[]string{`(?m)^signature: +` + q(repo+"@"+unsigned) + ` unsigned: no signature of `,
				`(?m)^  deny +signature +unsigned +a\.csv:5: `,
				`(?m)^refused \(403\): dockgate: role:ci may not signature unsigned: .*` + q(repo+"@"+unsigned) + ` has no signature by a key of the policy`}},
		{"an unsigned image is allowed to another role, and explain still says why it is unsigned",
			append([]string{"--as", "uid:1000"}, pull("unsigned")...), "", false, 0,
			[]string{`(?m)^signature: +` + q(repo+"@"+unsigned) + ` unsigned`, `(?m)^  allow +signature +unsigned +a\.csv:3: `}},
		{"a signature by a key the policy does not have is unsigned, with the cause",
			append([]string{"--as", "role:ci"}, pull("stranger")...), "", false, 1,
			[]string{`(?m)^signature: +` + q(repo+"@"+byStranger) + ` unsigned \(bad-signature\): `, `(?m)^  deny +signature +unsigned `}},
		{"a registry that cannot be asked makes the pull unverified",
			append([]string{"--as", "role:ci"}, pull("1")...), "", true, 1,
			[]string{`(?m)^signature: +` + q(repo+":1") + ` not resolved: `, `(?m)^  deny +signature +unverified +a\.csv:6: `,
				`(?m)^refused \(403\): dockgate: role:ci may not signature unverified: a\.csv:6: .*\(the digest of ` + q(repo+":1") + ` could not be looked up: registry ` + q(b.host) + ` unreachable`}},
		{"a create of an image dockerd has is judged by the digest it was pulled as",
			[]string{"--as", "role:ci", "--image", repo + ":1=" + repo + "@" + b.digest, "POST", "/v1.41/containers/create"}, `{"Image":"` + repo + `:1"}`, false, 0,
			[]string{`(?m)^signature: +` + q(repo+"@"+b.digest) + ` signed by release$`, `(?m)^  allow +signature +key:release `}},
		{"a create of an image pulled as unsigned content under the same name is refused",
			[]string{"--as", "role:ci", "--image", repo + ":1=" + repo + "@" + unsigned, "POST", "/v1.41/containers/create"}, `{"Image":"` + repo + `:1"}`, false, 1,
			[]string{`(?m)^  deny +signature +unsigned `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.down.Store(tt.down)
			defer b.down.Store(false)
			args := append([]string{"--config", "", "--policy", pol, "--signature-timeout", "5s"}, tt.args...)
			if tt.body != "" {
				args = append(args, "-")
			}
			var out, errOut bytes.Buffer
			code := explain(args, strings.NewReader(tt.body), &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errOut.String())
			}
			for _, re := range tt.stdout {
				if !regexp.MustCompile(re).MatchString(out.String()) {
					t.Errorf("stdout does not match %q:\n%s", re, out.String())
				}
			}
		})
	}
}

func TestExplainAsksNoRegistryForAPolicyWithoutSignatureRows(t *testing.T) {
	var out, errOut bytes.Buffer
	// A docker config that does not exist would fail a policy that
	// verifies; this one does not look signatures up at all.
	code := explain([]string{"--config", "", "--signature-docker-config", "/nonexistent/config.json", "--as", "uid:0",
		"POST", "/v1.41/images/create?fromImage=127.0.0.1:1/x&tag=1"}, strings.NewReader(""), &out, &errOut)
	if code != 0 || strings.Contains(out.String(), "signature") {
		t.Errorf("exit %d, want 0 with no signature lines\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}
