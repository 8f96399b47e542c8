package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
)

func TestExplain(t *testing.T) {
	const ci = "../../policies/ci"
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout []string // regexps, each must match
	}{
		{"allowed request exits 0 and names its rule",
			[]string{"--policy", ci, "--as", "user:jenkins", "GET", "/v1.41/containers/json"}, "", 0,
			[]string{`(?m)^action: +container\.list \(API 1\.41\)$`, `(?m)^caller: +user:jenkins \(subjects: user:jenkins, \*\)$`,
				`(?m)^  allow +endpoint +container\.list +ci\.csv:\d+: p, role:ci, endpoint, \*, allow$`, `(?m)^allowed$`}},
		{"a denied endpoint exits 1 with the refusal message",
			[]string{"--policy", ci, "--as", "user:jenkins", "--as", "uid:1001", "POST", "/plugins/pull?remote=vieux/sshfs"}, "", 1,
			[]string{`(?m)^  deny +endpoint +plugin\.install +ci\.csv:\d+: p, role:ci, endpoint, plugin\.\*, deny$`,
				`(?m)^refused \(403\): dockgate: user:jenkins may not endpoint plugin\.install: ci\.csv:\d+: p, role:ci, endpoint, plugin\.\*, deny; a deny row wins over every allow row, and allowing it is root on the host \(a plugin runs with the privileges it asks for\)$`}},
		{"flags may follow the request",
			[]string{"GET", "/_ping", "--policy", ci, "--as", "group:ci-runners"}, "", 0,
			[]string{`(?m)^allowed$`}},
		{"a caller without rows is refused with no rule allows it",
			[]string{"--policy", ci, "--as", "uid:1002", "GET", "/_ping"}, "", 1,
			[]string{`(?m)^refused \(403\): dockgate: uid:1002 may not endpoint system\.ping: no rule allows it; to allow it, add "p, uid:1002, endpoint, system\.ping, allow" to the policy$`}},
		{"unknown endpoint is refused whatever the policy",
			[]string{"--policy", ci, "--as", "uid:0", "GET", "/v1.41/frobnicate"}, "", 1,
			[]string{`(?m)^action: +unknown`, `(?m)^refused \(403\): dockgate: uid:0 may not call GET /v1\.41/frobnicate: unknown endpoint; no policy row can allow an endpoint dockgate does not know`}},
		{"a path dockerd would redirect is refused before the policy",
			[]string{"--as", "uid:0", "GET", "/v1.41//containers/json"}, "", 1,
			[]string{`(?m)^action: +none$`, `(?m)^refused \(400\): dockgate: path is not in canonical form`}},
		{"the embedded default policy without --policy",
			[]string{"--as", "uid:1000", "POST", "/v1.41/containers/create"}, `{"Image":"busybox"}`, 0,
			[]string{`(?m)^policy: +embedded:default `, `default\.csv:\d+: p, \*, endpoint, container\.create, allow`}},
		{"a bind of dockerd's socket is shown delegated to dockgate's",
			[]string{"--as", "uid:0", "POST", "/v1.41/containers/create"}, `{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock:ro"]}}`, 0,
			[]string{`(?m)^  allow +docker-socket +/(var/)?run/docker\.sock `, `(?m)^forwarded body: .*"Binds":\["/run/dockgate/docker\.sock:/var/run/docker\.sock:ro"\]`,
				`(?m)^delegated: bind /var/run/docker\.sock:/var/run/docker\.sock:ro becomes /run/dockgate/docker\.sock:/var/run/docker\.sock:ro \(the container gets dockgate's socket, never dockerd's\)$`}},
		{"a role name is explained as one",
			[]string{"--policy", ci, "--as", "role:ci", "GET", "/_ping"}, "", 0,
			[]string{`(?m)^note: +role:ci is not a caller subject`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.stdin != "" {
				args = append(args, "-")
			}
			var out, errOut bytes.Buffer
			code := explain(args, strings.NewReader(tt.stdin), &out, &errOut)
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

func TestExplainReadsFactsWithTheExtractor(t *testing.T) {
	var gotBody string
	extract := func(_ context.Context, m *authz.Match, req *authz.Request, _ authz.Inspector) ([]policy.Fact, error) {
		gotBody = string(req.Body)
		return []policy.Fact{{Kind: "image", Value: "registry.example.com/approved/app:1"}, {Kind: "privileged", Value: "container"}}, nil
	}
	var out, errOut bytes.Buffer
	code := explainWith(extract, []string{"--policy", "../../policies/ci", "--as", "user:jenkins", "POST", "/v1.41/containers/create", "-"},
		strings.NewReader(`{"Image":"x"}`), &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	if gotBody != `{"Image":"x"}` {
		t.Errorf("extractor saw body %q", gotBody)
	}
	for _, re := range []string{
		`(?m)^  allow +image +registry\.example\.com/approved/app:1 +ci\.csv:\d+: p, role:ci, image, registry\.example\.com/approved/\*\*, allow$`,
		`(?m)^  deny +privileged +container +no rule allows it$`,
		`(?m)^refused \(403\): dockgate: user:jenkins may not privileged container: no rule allows it; allowing it is root on the host .*"p, user:jenkins, privileged, container, allow" would do it$`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("stdout does not match %q:\n%s", re, out.String())
		}
	}
}

func TestExplainPrivilegedContainerWithTheRealExtractor(t *testing.T) {
	var out, errOut bytes.Buffer
	code := explain([]string{"--as", "uid:1000", "POST", "/v1.41/containers/create", "-"},
		strings.NewReader(`{"Image":"busybox","HostConfig":{"Privileged":true}}`), &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "refused (403): dockgate: uid:1000 may not privileged container: no rule allows it") {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestExplainReadsASpooledTarball(t *testing.T) {
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	df := "ARG BASE=evil/base:1\nFROM $BASE\n"
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df)), Typeflag: tar.TypeReg})
	tw.Write([]byte(df))
	tw.Close()
	policy := t.TempDir()
	if err := os.WriteFile(filepath.Join(policy, "p.csv"), []byte("p, *, endpoint, build.run, allow\np, *, image, docker.io/library/**, allow\np, *, image-target, docker.io/library/**, allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := explain([]string{"--policy", policy, "--as", "uid:1000", "POST", "/v1.41/build?t=app", "-"}, bytes.NewReader(tarball.Bytes()), &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "refused (403): dockgate: uid:1000 may not image docker.io/evil/base:1: no rule allows it") {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestExplainUsage(t *testing.T) {
	for _, args := range [][]string{
		{"GET", "/_ping"},                            // no --as
		{"--as", "uid:0", "GET"},                     // no path
		{"--as", "uid:0", "GET", "/_ping", "a", "b"}, // too many
		{"--as", "uid:0", "GET", "_ping"},
		{"--as", "uid:0", "POST", "/containers/create", "/nonexistent/body.json"},
		{"--policy", "/nonexistent", "--as", "uid:0", "GET", "/_ping"},
	} {
		var out, errOut bytes.Buffer
		if code := explain(args, strings.NewReader(""), &out, &errOut); code != 2 {
			t.Errorf("explain %q: exit %d, want 2\n%s%s", args, code, out.String(), errOut.String())
		}
	}
}

// TestExplainShowsWhatATenantsRequestBecomes: explain names a tenant's
// owner and shows the target and body its request goes to dockerd with.
func TestExplainShowsWhatATenantsRequestBecomes(t *testing.T) {
	root, err := filepath.Abs("../../policies/ci")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		body string
		want []string
	}{
		{[]string{"GET", "/v1.41/containers/json?all=1"}, "", []string{
			"tenant:   owner user:jenkins, objects expire after 24h0m0s",
			"forwarded as: GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%7B%22io.dockgate.owner%3Duser%3Ajenkins%22%3Atrue%7D%7D",
		}},
		{[]string{"POST", "/v1.41/containers/create", "-"}, `{"Image":"registry.example.com/approved/app"}`, []string{
			`forwarded body: {`, `"io.dockgate.owner":"user:jenkins"`,
			"the created container's image is checked against the image judged before the answer reaches the client",
		}},
		{[]string{"GET", "/v1.41/images/json"}, "", []string{"the answer is filtered to the caller's own objects"}},
	} {
		var out, errOut bytes.Buffer
		code := explain(append([]string{"--policy", root, "--as", "user:jenkins"}, tc.args...), strings.NewReader(tc.body), &out, &errOut)
		for _, w := range tc.want {
			if code != 0 || !strings.Contains(out.String(), w) {
				t.Errorf("%v: exit %d, want %q in:\n%s%s", tc.args, code, w, out.String(), errOut.String())
			}
		}
	}
}
