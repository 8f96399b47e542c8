package authz

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/dockgate/dockgate/authz/policy"
)

// buildRequest is a classic build of the context body, spooled as the
// proxy spools it.
func buildRequest(t *testing.T, target string, body []byte, header http.Header) (*Match, *Request) {
	t.Helper()
	u := parseTarget(t, target)
	m, err := NewRouter().Route(http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	f := spoolFile(t, body)
	return m, &Request{Method: http.MethodPost, URL: u, Header: header, Caller: "user:test", BodyFile: f, BodySize: int64(len(body))}
}

// pinnedBuild runs the extractor on a classic build and returns the
// context it forwards: nil when it forwards the one received.
func pinnedBuild(t *testing.T, target string, body []byte) map[string]string {
	t.Helper()
	m, req := buildRequest(t, target, body, http.Header{"Content-Type": {"application/x-tar"}})
	if _, err := newExtractor(fakeHost(t))(context.Background(), m, req, newFakeInspector()); err != nil {
		t.Fatalf("facts: %v", err)
	}
	if req.RewriteSpool == nil {
		return nil
	}
	var out bytes.Buffer
	if err := req.RewriteSpool(&out); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	files := map[string]string{}
	tr := tar.NewReader(&out)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the forwarded context is no tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = string(b)
	}
	return files
}

// TestBuildBasesPinnedToJudgedImages: a classic build's FROM lines whose
// base is on the daemon are forwarded naming the image ID judged, so that
// a re-tag while the build runs cannot change its base.
func TestBuildBasesPinnedToJudgedImages(t *testing.T) {
	ctx := func(df string) []byte {
		return makeTar(t, tarEntry{name: "app.go", body: "package main"}, tarEntry{name: "Dockerfile", body: df})
	}
	const build = "/v1.41/build?t=ci.local/app:1"
	for _, tc := range []struct {
		name, target string
		body         []byte
		dockerfile   string // the forwarded Dockerfile; "" when the context is forwarded as received
		path         string // where it is, Dockerfile when ""
	}{
		{name: "FROM an approved name pinned to its ID", target: build, body: ctx("FROM reg.example.com/approved/app:1\nRUN true\n"),
			dockerfile: "FROM " + idApp + "\nRUN true\n"},
		{name: "FROM through an ARG, with a stage name, a platform flag and continuation lines", target: build,
			body:       ctx("ARG BASE=reg.example.com/approved/app:1\nFROM --platform=linux/amd64 $BASE \\\n  AS Build\nRUN true\nFROM evil\nCOPY --from=build /a /a\nFROM build\nFROM scratch\n"),
			dockerfile: "ARG BASE=reg.example.com/approved/app:1\nFROM --platform=linux/amd64 " + idApp + " AS Build\n\nRUN true\nFROM " + idEvil + "\nCOPY --from=build /a /a\nFROM build\nFROM scratch\n"},
		{name: "the base a build-arg chose is pinned", target: build + "&buildargs=%7B%22B%22%3A%22evil%22%7D", body: ctx("ARG B=2222\nFROM $B\n"),
			dockerfile: "ARG B=2222\nFROM " + idEvil + "\n"},
		{name: "CRLF Dockerfile", target: build, body: ctx("FROM evil\r\nRUN true\r\n"),
			dockerfile: "FROM " + idEvil + "\nRUN true\r\n"},
		{name: "lower-case dockerfile", target: "/v1.41/build", body: makeTar(t, tarEntry{name: "./dockerfile", body: "FROM evil\n"}),
			dockerfile: "FROM " + idEvil + "\n", path: "./dockerfile"},
		{name: "gzip context forwarded as a plain tar", target: build, body: gzipped(t, ctx("FROM evil\n")),
			dockerfile: "FROM " + idEvil + "\n"},
		{name: "base not on the daemon: pulled by name, not pinned", target: build, body: ctx("FROM reg.example.com/approved/base:1\n")},
		{name: "pull=1: every base pulled by name, not pinned", target: build + "&pull=1", body: ctx("FROM evil\n")},
		{name: "scratch and stages only: nothing to pin", target: build, body: ctx("FROM scratch AS a\nFROM a\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := pinnedBuild(t, tc.target, tc.body)
			if tc.dockerfile == "" {
				if files != nil {
					t.Fatalf("context rewritten: %q", files)
				}
				return
			}
			path := tc.path
			if path == "" {
				path = "Dockerfile"
			}
			if files[path] != tc.dockerfile {
				t.Errorf("forwarded Dockerfile:\n got %q\nwant %q", files[path], tc.dockerfile)
			}
			if path == "Dockerfile" && files["app.go"] != "package main" {
				t.Errorf("the rest of the context changed: %q", files)
			}
		})
	}
}

// TestPinnedDockerfileChecked: a rewrite that would not parse to the
// same instructions is refused, never forwarded.
func TestPinnedDockerfileChecked(t *testing.T) {
	df := []byte("FROM evil\nRUN true\n")
	if _, err := pinnedDockerfile(df, []basePin{{start: 5, end: 5, id: idEvil}}); err == nil {
		t.Error("a pin past the end of the Dockerfile was accepted")
	}
	if _, err := pinnedDockerfile(df, []basePin{{start: 2, end: 2, id: idEvil}}); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("a pin of a RUN line: %v", err)
	}
	out, err := pinnedDockerfile(df, []basePin{{start: 1, end: 1, id: idEvil}})
	if err != nil || string(out) != "FROM "+idEvil+"\nRUN true\n" {
		t.Errorf("pin of the FROM: %q, %v", out, err)
	}
}

// registryInspector is the fake inspector with registries behind it: the
// digests they serve by name, and the credentials each lookup came with.
type registryInspector struct {
	*fakeInspector
	serves map[string]digest.Digest
	auths  []string
}

func (r *registryInspector) RegistryDigest(_ context.Context, ref, auth string) (digest.Digest, error) {
	r.auths = append(r.auths, auth)
	d, ok := r.serves[ref]
	if !ok {
		return "", errors.New("manifest unknown")
	}
	return d, nil
}

// TestBuildBaseNotOnTheDaemonPinnedToTheRegistryDigest: a FROM base that
// is not on the daemon is forwarded as the digest its registry serves
// under the name when judged (with the caller's credentials for that
// registry), and carries the digest's image fact; one the registry does
// not know fails the build closed.
func TestBuildBaseNotOnTheDaemonPinnedToTheRegistryDigest(t *testing.T) {
	const d = digest.Digest("sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd")
	in := &registryInspector{fakeInspector: newFakeInspector(), serves: map[string]digest.Digest{"reg.example.com/approved/base:1": d}}
	auth := base64.URLEncoding.EncodeToString([]byte(`{"reg.example.com":{"username":"ci","password":"s3cret"},"https://index.docker.io/v1/":{"username":"hub"}}`))
	run := func(df string) (*Request, []policy.Fact, error) {
		m, req := buildRequest(t, "/v1.41/build?t=ci.local/app:1", makeTar(t, tarEntry{name: "Dockerfile", body: df}),
			http.Header{"Content-Type": {"application/x-tar"}, "X-Registry-Config": {auth}})
		facts, err := newExtractor(fakeHost(t))(context.Background(), m, req, in)
		return req, facts, err
	}

	req, facts, err := run("FROM reg.example.com/approved/base:1\nRUN true\n")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(facts, policy.Fact{Kind: "image", Value: "reg.example.com/approved/base@" + string(d)}) {
		t.Errorf("facts %v lack the digest the registry serves", facts)
	}
	var out bytes.Buffer
	if req.RewriteSpool == nil || req.RewriteSpool(&out) != nil {
		t.Fatal("the context is not rewritten")
	}
	tr := tar.NewReader(&out)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(tr)
	if want := "FROM reg.example.com/approved/base@" + string(d) + "\nRUN true\n"; string(got) != want {
		t.Errorf("forwarded Dockerfile %q, want %q", got, want)
	}
	if len(in.auths) != 1 {
		t.Fatalf("%d registry lookups", len(in.auths))
	}
	raw, _ := base64.URLEncoding.DecodeString(in.auths[0])
	if !strings.Contains(string(raw), `"username":"ci"`) {
		t.Errorf("the lookup went with %q, want reg.example.com's credentials", raw)
	}

	_, _, err = run("FROM reg.example.com/approved/gone:1\n")
	var re *RouteError
	if !errors.As(err, &re) || re.Status != http.StatusBadGateway || !strings.Contains(re.Message, "pull it first") {
		t.Errorf("a base no registry serves: %v, want a 502 saying to pull it first", err)
	}
}

func TestRegistryAuthFor(t *testing.T) {
	cfg := base64.URLEncoding.EncodeToString([]byte(`{"https://index.docker.io/v1/":{"username":"hub"},"127.0.0.1:5000":{"username":"local"},"https://reg.example.com/":{"username":"reg"}}`))
	for domain, want := range map[string]string{"docker.io": "hub", "127.0.0.1:5000": "local", "reg.example.com": "reg", "other.example.com": ""} {
		enc := registryAuthFor(cfg, domain)
		raw, _ := base64.URLEncoding.DecodeString(enc)
		if (want == "") != (enc == "") || want != "" && !strings.Contains(string(raw), `"username":"`+want+`"`) {
			t.Errorf("%s: got %q, want %s's", domain, raw, want)
		}
	}
	if registryAuthFor("!!!", "docker.io") != "" {
		t.Error("an invalid X-Registry-Config gave credentials")
	}
}
