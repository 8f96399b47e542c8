package authz

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pinnedBuild runs the extractor on a classic build and returns the
// context it forwards: nil when it forwards the one received.
func pinnedBuild(t *testing.T, target string, body []byte) map[string]string {
	t.Helper()
	u := parseTarget(t, target)
	m, err := NewRouter().Route(http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "body"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	req := &Request{Method: http.MethodPost, URL: u, Header: http.Header{"Content-Type": {"application/x-tar"}}, Caller: "user:test",
		BodyFile: f, BodySize: int64(len(body))}
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
