package authz

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/containerd/platforms"
)

func TestBuildKitDockerfileFacts(t *testing.T) {
	solve := &BuildKitSolve{Session: "s", Frontend: "dockerfile.v0", DockerfileDir: "dockerfile", DockerfileName: "Dockerfile", ReadsDockerfile: true,
		BuildArgs: map[string]string{"BASE": "evil/arg"}}
	named := *solve
	named.NamedContexts = []string{"alpine", "reg.example.com/tools:1"}
	twoPlatforms := *solve
	twoPlatforms.Platforms = []string{"linux/amd64", "linux/arm64"}
	archArg := *solve
	archArg.BuildArgs = map[string]string{"TARGETARCH": "evil"}
	hostArch := platforms.DefaultSpec().Architecture
	for _, tc := range []struct {
		name   string
		df     string
		solve  *BuildKitSolve
		want   []string
		status int
	}{
		{name: "approved FROM", df: "FROM busybox\nRUN true\n", want: []string{"image docker.io/library/busybox:latest"}},
		{name: "unapproved FROM via ARG and the solve's build-arg", df: "ARG BASE=busybox\nFROM $BASE\n", want: []string{"image docker.io/evil/arg:latest"}},
		{name: "multi-stage within approved images", df: "FROM golang:1 AS build\nRUN go build\nFROM busybox\nCOPY --from=build /a /a\n",
			want: []string{"image docker.io/library/golang:1", "image docker.io/library/busybox:latest"}},
		{name: "COPY --from an unapproved image", df: "FROM scratch\nCOPY --from=evil/tools:1 /x /x\n", want: []string{"image docker.io/evil/tools:1"}},
		{name: "RUN --mount=from an unapproved image", df: "FROM busybox\nRUN --mount=from=evil/tools:2,target=/t true\n",
			want: []string{"image docker.io/library/busybox:latest", "image docker.io/evil/tools:2"}},
		{name: "RUN --mount=type=cache,from an unapproved image", df: "FROM busybox\nRUN --mount=type=cache,from=evil/cache:1,target=/c true\n",
			want: []string{"image docker.io/library/busybox:latest", "image docker.io/evil/cache:1"}},
		{name: "RUN --mount=from a stage, in any case, even a later one", df: "FROM busybox AS Tools\nFROM busybox\nRUN --mount=from=tools,target=/t --mount=from=later,target=/l true\nFROM scratch AS later\n",
			want: []string{"image docker.io/library/busybox:latest"}},
		{name: "RUN --mount=from a digit is an image, not a stage index", df: "FROM busybox\nRUN --mount=from=0,target=/t true\n",
			want: []string{"image docker.io/library/busybox:latest", "image docker.io/library/0:latest", "image sha256:0"}},
		{name: "RUN --mount of a secret, cache and tmpfs", df: "FROM busybox\nRUN --mount=type=secret,id=s --mount=type=cache,target=/c --mount=type=tmpfs,target=/t true\n",
			want: []string{"image docker.io/library/busybox:latest"}},
		{name: "unapproved syntax frontend", df: "# syntax=evil/dockerfile:1\nFROM busybox\n", want: []string{"image docker.io/evil/dockerfile:1", "image docker.io/library/busybox:latest"}},
		{name: "RUN --network=host", df: "FROM busybox\nRUN --network=host true\n", want: []string{"image docker.io/library/busybox:latest", "build network=host"}},
		{name: "RUN --device", df: "FROM busybox\nRUN --device=vendor.com/gpu=0 true\n", want: []string{"image docker.io/library/busybox:latest", "device cdi:vendor.com/gpu=0"}},
		{name: "named context replaces FROM: judged with the solve", df: "FROM alpine\nFROM docker.io/library/alpine:latest\nCOPY --from=reg.example.com/tools:1 /x /x\n", solve: &named, want: []string{}},
		{name: "named context does not replace another tag", df: "FROM alpine:3\n", solve: &named, want: []string{"image docker.io/library/alpine:3"}},
		{name: "unapproved FROM via a platform arg BuildKit sets", df: "FROM ${TARGETARCH:+evil/x}\n", want: []string{"image docker.io/evil/x:latest"}},
		{name: "unapproved FROM via a platform arg a build-arg overrides", df: "FROM reg.example.com/${TARGETARCH}/base\n", solve: &archArg, want: []string{"image reg.example.com/evil/base:latest"}},
		{name: "a meta ARG without a default keeps the platform arg", df: "ARG TARGETARCH\nFROM evil/${TARGETARCH:-none}\n", want: []string{"image docker.io/evil/" + hostArch + ":latest"}},
		{name: "a meta ARG default expanded with a platform arg", df: "ARG IMG=evil/${BUILDOS}\nFROM $IMG\n", want: []string{"image docker.io/evil/linux:latest"}},
		{name: "FROM judged for every platform built", df: "FROM evil/base-${TARGETARCH}\n", solve: &twoPlatforms,
			want: []string{"image docker.io/evil/base-amd64:latest", "image docker.io/evil/base-arm64:latest"}},
		{name: "a stage chosen by a platform arg", df: "FROM busybox AS base-amd64\nFROM busybox AS base-arm64\nFROM base-${TARGETARCH}\n", solve: &twoPlatforms,
			want: []string{"image docker.io/library/busybox:latest"}},
		{name: "meta ARG redeclared without a default keeps its value", df: "ARG B=evil/keep\nARG B\nFROM $B\n", solve: &named, want: []string{"image docker.io/evil/keep:latest"}},
		{name: "owner label forged by LABEL refused", df: "FROM busybox\nLABEL io.dockgate.owner=user:root\n", status: 403},
		{name: "Dockerfile that does not parse refused", df: "FROM\n", status: 400},
		{name: "RUN --mount=from a variable refused (BuildKit does not expand it)", df: "FROM busybox\nARG T=evil/x\nRUN --mount=from=$T,target=/t true\n", status: 400},
		{name: "invalid image refused", df: "FROM Evil\n", status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.solve
			if s == nil {
				s = solve
			}
			have, _, err := bkFacts(t, MatchBuildKitDockerfile(), []byte(tc.df), nil, s)
			if tc.status != 0 {
				var re *RouteError
				if !errors.As(err, &re) || re.Status != tc.status {
					t.Fatalf("want refusal %d, got %q, %v", tc.status, have, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(have, tc.want) {
				t.Fatalf("facts\n got %q\nwant %q", have, tc.want)
			}
		})
	}
	t.Run("a Dockerfile without its solve is refused", func(t *testing.T) {
		_, _, err := bkFacts(t, MatchBuildKitDockerfile(), []byte("FROM busybox\n"), nil, nil)
		var re *RouteError
		if !errors.As(err, &re) || re.Status != http.StatusInternalServerError {
			t.Fatalf("want a refusal, got %v", err)
		}
	})
}

// TestBuildKitQuerySolve: POST /build?version=2 (the classic docker CLI
// with DOCKER_BUILDKIT=1) is the solve its query describes.
func TestBuildKitQuerySolve(t *testing.T) {
	ctx := func(dockerfile string) []byte {
		return makeTar(t, tarEntry{name: "Dockerfile", body: dockerfile})
	}
	const v2 = "/v1.41/build?version=2&session=sess9&remote=client-session&t=ci.local/app:1"
	args := "&buildargs=" + url.QueryEscape(`{"BASE":"evil/x","UNSET":null}`)
	for _, tc := range []struct {
		name   string
		target string
		body   []byte
		want   []string
		solve  func(t *testing.T, s *BuildKitSolve)
		status int
	}{
		{name: "Dockerfile from the session: recorded for the proxy", target: v2 + args + "&target=final&dockerfile=prod.Dockerfile",
			want: []string{"image-target ci.local/app:1"},
			solve: func(t *testing.T, s *BuildKitSolve) {
				want := BuildKitSolve{Session: "sess9", Frontend: "dockerfile.v0", BuildArgs: map[string]string{"BASE": "evil/x"}, Target: "final",
					DockerfileDir: "dockerfile", DockerfileSession: "sess9", DockerfileName: "prod.Dockerfile", ReadsDockerfile: true}
				if !sameSolve(*s, want) {
					t.Fatalf("solve %+v, want %+v", *s, want)
				}
			}},
		{name: "unapproved frontend by BUILDKIT_SYNTAX build-arg", target: v2 + "&buildargs=" + url.QueryEscape(`{"BUILDKIT_SYNTAX":"evil/fe:1"}`),
			want: []string{"image-target ci.local/app:1", "image docker.io/evil/fe:1"}},
		{name: "host network", target: v2 + "&networkmode=host", want: []string{"build network=host", "image-target ci.local/app:1"}},
		{name: "output pushed", target: v2 + "&outputs=" + url.QueryEscape(`[{"Type":"image","Attrs":{"name":"ci.local/app:2","push":"true"}}]`),
			want: []string{"image-target ci.local/app:1", "build output=image", "image-target ci.local/app:2", "endpoint image.push", "image ci.local/app:2"}},
		{name: "context in the body: unapproved RUN --mount=from judged", target: "/v1.41/build?version=2" + args, body: ctx("ARG BASE\nFROM $BASE\nRUN --mount=from=evil/tools,target=/t true\n"),
			want: []string{"image docker.io/evil/x:latest", "image docker.io/evil/tools:latest"},
			solve: func(t *testing.T, s *BuildKitSolve) {
				if s.ReadsDockerfile {
					t.Fatalf("solve %+v reads the Dockerfile from a session", *s)
				}
			}},
		{name: "context uploaded by another request is not judged", target: "/v1.41/build?version=2&remote=upload-request&buildid=b1", want: []string{"build buildkit"}},
		{name: "the upload itself", target: "/v1.41/build?version=2&buildid=upload-request:b1", body: makeTar(t, tarEntry{name: "x", body: "y"}), want: []string{}},
		{name: "remote context", target: "/v1.41/build?version=2&remote=https://github.com/evil/x.git", want: []string{"build remote-context"},
			solve: func(t *testing.T, s *BuildKitSolve) {
				if s.ReadsDockerfile {
					t.Fatalf("solve %+v reads the Dockerfile from a session", *s)
				}
			}},
		{name: "Dockerfile in the body that does not parse refused", target: "/v1.41/build?version=2", body: ctx("FROM\n"), status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := parseTarget(t, tc.target)
			m, err := NewRouter().Route(http.MethodPost, u)
			if err != nil {
				t.Fatal(err)
			}
			req := &Request{Method: http.MethodPost, URL: u, Header: http.Header{"Content-Type": {"application/x-tar"}}, Caller: "user:test"}
			if tc.body != nil {
				f := spoolFile(t, tc.body)
				req.BodyFile, req.BodySize = f, int64(len(tc.body))
			}
			facts, err := newExtractor(fakeHost(t))(t.Context(), m, req, newFakeInspector())
			if tc.status != 0 {
				var re *RouteError
				if !errors.As(err, &re) || re.Status != tc.status {
					t.Fatalf("want refusal %d, got %v, %v", tc.status, facts, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			have := []string{}
			for _, f := range facts {
				have = append(have, f.Kind+" "+f.Value)
			}
			if !slices.Equal(have, tc.want) {
				t.Fatalf("facts\n got %q\nwant %q", have, tc.want)
			}
			if req.Solve == nil {
				t.Fatal("no solve recorded")
			}
			if tc.solve != nil {
				tc.solve(t, req.Solve)
			}
		})
	}
}

// TestBuildKitNeedsTheRowsOfALegacyBuild: a Dockerfile judged for a
// BuildKit solve is decided as the same Dockerfile in a classic build:
// allowed by the same rows, refused for the same fact.
func TestBuildKitNeedsTheRowsOfALegacyBuild(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"ci.csv": `
g, user:jenkins, role:ci
p, role:ci, endpoint, *, allow
p, role:ci, image, reg.example.com/approved/**, allow
p, role:ci, image, docker.io/docker/dockerfile:*, allow
p, role:ci, local-image, ci.local/**, allow
`})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	args := map[string]string{"BASE": "evil/x"}
	for _, tc := range []struct {
		name, df string
		allow    bool
	}{
		{name: "approved pulled base", df: "FROM reg.example.com/approved/app:1\nRUN true\n", allow: true},
		{name: "multi-stage within approved images", df: "# syntax=docker/dockerfile:1\nFROM reg.example.com/approved/app:1 AS b\nRUN true\nFROM reg.example.com/approved/app@" + dA + "\nCOPY --from=b /a /a\n", allow: true},
		{name: "unapproved FROM", df: "FROM evil/x\n"},
		{name: "unapproved FROM via a build-arg", df: "ARG BASE=reg.example.com/approved/app:1\nFROM $BASE\n"},
		{name: "a local image under an approved name", df: "FROM reg.example.com/approved/app:2\n"},
		{name: "COPY --from an unapproved image", df: "FROM reg.example.com/approved/app:1\nCOPY --from=evil/tools /x /x\n"},
		{name: "unapproved syntax frontend", df: "# syntax=evil/dockerfile\nFROM reg.example.com/approved/app:1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subjects := []string{"user:jenkins", "*"}
			// The classic build of the same Dockerfile and build args.
			tarball := makeTar(t, tarEntry{name: "Dockerfile", body: tc.df})
			u := parseTarget(t, "/v1.41/build?pull=1&buildargs="+url.QueryEscape(`{"BASE":"evil/x"}`))
			m, err := NewRouter().Route(http.MethodPost, u)
			if err != nil {
				t.Fatal(err)
			}
			legacyReq := &Request{Method: http.MethodPost, URL: u, Header: http.Header{"Content-Type": {"application/x-tar"}}, Caller: "user:jenkins", Subjects: subjects,
				BodyFile: spoolFile(t, tarball), BodySize: int64(len(tarball))}
			legacy := Judge(t.Context(), d, m, legacyReq)

			bm := MatchBuildKitDockerfile()
			req := bkRequest(bm, []byte(tc.df), nil, &BuildKitSolve{Frontend: "dockerfile.v0", BuildArgs: args, DockerfileDir: "dockerfile", DockerfileName: "Dockerfile", ReadsDockerfile: true})
			req.Caller, req.Subjects, req.Creator = "user:jenkins", subjects, nil
			bk := Judge(t.Context(), d, bm, req)

			if legacy.Allow != tc.allow || bk.Allow != tc.allow {
				t.Fatalf("classic build allowed %v (%s), BuildKit %v (%s), want %v", legacy.Allow, legacy.Reason, bk.Allow, bk.Reason, tc.allow)
			}
			if legacy.Reason != bk.Reason {
				t.Fatalf("refused for another reason:\nclassic  %s\nBuildKit %s", legacy.Reason, bk.Reason)
			}
		})
	}
}
