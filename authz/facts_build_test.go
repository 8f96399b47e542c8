package authz

import (
	"archive/tar"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestBuildDockerfileFacts(t *testing.T) {
	ctx := func(dockerfile string) []byte {
		return makeTar(t, tarEntry{name: "app.go", body: "package main"}, tarEntry{name: "Dockerfile", body: dockerfile})
	}
	const build = "/v1.41/build?t=ci.local/app:1"
	for _, tc := range []struct {
		name   string
		target string
		body   []byte
		want   []string
		status int
	}{
		{name: "FROM base", target: build, body: ctx("FROM reg.example.com/approved/base:1\nRUN true\n"),
			want: []string{"image-target ci.local/app:1", "image reg.example.com/approved/base:1"}},
		{name: "FROM normalized", target: build, body: ctx("from busybox\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/library/busybox:latest"}},
		{name: "FROM a local image under an approved name: local-image", target: build, body: ctx("FROM reg.example.com/approved/app:2\n"),
			want: []string{"image-target ci.local/app:1", "local-image reg.example.com/approved/app:2"}},
		{name: "FROM a pulled image: its provenance", target: build, body: ctx("FROM reg.example.com/approved/app:1\n"),
			want: []string{"image-target ci.local/app:1", "image reg.example.com/approved/app:1", "image reg.example.com/approved/app@" + dA}},
		{name: "ARG default substituted", target: build, body: ctx("ARG BASE=evil/base\nARG TAG=2\nFROM ${BASE}:$TAG\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/evil/base:2"}},
		{name: "ARG default from an earlier ARG", target: build, body: ctx("ARG REG=evil.example.com\nARG BASE=$REG/base\nFROM $BASE\n"),
			want: []string{"image-target ci.local/app:1", "image evil.example.com/base:latest"}},
		{name: "build-arg overrides a declared ARG", target: build + "&buildargs=" + url.QueryEscape(`{"BASE":"evil/other"}`), body: ctx("ARG BASE=reg.example.com/approved/base:1\nFROM $BASE\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/evil/other:latest"}},
		{name: "build-arg for an undeclared ARG is not used", target: build + "&buildargs=" + url.QueryEscape(`{"BASE":"evil/other"}`), body: ctx("FROM ${BASE:-reg.example.com/approved/base:1}\n"),
			want: []string{"image-target ci.local/app:1", "image reg.example.com/approved/base:1"}},
		{name: "shell default in FROM", target: build, body: ctx("FROM ${NOPE:-evil/x}\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/evil/x:latest"}},
		{name: "stages resolved, scratch skipped", target: build, body: ctx("FROM golang:1 AS Build\nRUN go build\nFROM scratch\nCOPY --from=build /app /app\nFROM build\nCOPY --from=0 /a /b\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/library/golang:1"}},
		{name: "COPY --from an image", target: build, body: ctx("FROM scratch\nCOPY --from=evil/tools:1 /bin/x /x\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/evil/tools:1"}},
		{name: "FROM a digit is an image, not a stage", target: build, body: ctx("FROM scratch\nFROM 0\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/library/0:latest", "image sha256:0"}},
		{name: "stage name used before it is defined is an image", target: build, body: ctx("FROM later\nFROM scratch AS later\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/library/later:latest"}},
		{name: "syntax directive", target: build, body: ctx("# syntax=docker/dockerfile:1\nFROM scratch\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/docker/dockerfile:1"}},
		{name: "escape directive", target: build, body: ctx("# escape=`\nARG B=evil/y\nFROM $B\n"),
			want: []string{"image-target ci.local/app:1", "image docker.io/evil/y:latest"}},
		{name: "dockerfile query", target: "/v1.41/build?dockerfile=sub/Dockerfile.prod", body: makeTar(t, tarEntry{name: "Dockerfile", body: "FROM scratch\n"}, tarEntry{name: "./sub/Dockerfile.prod", body: "FROM evil/prod\n"}),
			want: []string{"image docker.io/evil/prod:latest"}},
		{name: "lower-case dockerfile by default", target: "/v1.41/build", body: makeTar(t, tarEntry{name: "dockerfile", body: "FROM evil/lower\n"}),
			want: []string{"image docker.io/evil/lower:latest"}},
		{name: "gzip context", target: "/v1.41/build", body: gzipped(t, ctx("FROM evil/gz\n")),
			want: []string{"image docker.io/evil/gz:latest"}},
		{name: "BuildKit with the context as the body: its Dockerfile judged", target: "/v1.41/build?version=2", body: ctx("FROM evil/bk\n"),
			want: []string{"image docker.io/evil/bk:latest"}},
		{name: "remote context: not read", target: "/v1.41/build?remote=https://example.com/x.git", body: nil,
			want: []string{"build remote-context"}},
		{name: "no body: no Dockerfile fact", target: "/v1.41/build", body: nil, want: nil},
		{name: "missing Dockerfile refused", target: "/v1.41/build", body: makeTar(t, tarEntry{name: "x", body: "y"}), status: 400},
		{name: "Dockerfile as a symlink refused", target: "/v1.41/build", body: makeTar(t, tarEntry{name: "real", body: "FROM evil\n"}, tarEntry{name: "Dockerfile", typ: tar.TypeSymlink, link: "real"}), status: 400},
		{name: "two Dockerfiles refused", target: "/v1.41/build", body: makeTar(t, tarEntry{name: "Dockerfile", body: "FROM scratch\n"}, tarEntry{name: "./Dockerfile", body: "FROM evil\n"}), status: 400},
		{name: "invalid FROM refused", target: "/v1.41/build", body: ctx("FROM Evil\n"), status: 400},
		{name: "malformed buildargs refused", target: build + "&buildargs=%7B", body: ctx("FROM scratch\n"), status: 400},
		{name: "xz context", target: "/v1.41/build", body: xzed(t, ctx("FROM evil/xz\n")),
			want: []string{"image docker.io/evil/xz:latest"}},
		{name: "zstd context", target: "/v1.41/build", body: zstded(t, ctx("FROM evil/zst\n")),
			want: []string{"image docker.io/evil/zst:latest"}},
		{name: "malformed xz context refused", target: "/v1.41/build", body: append([]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, make([]byte, 64)...), status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, err := spooledFacts(t, tc.target, tc.body)
			if tc.status != 0 {
				var re *RouteError
				if !errors.As(err, &re) || re.Status != tc.status {
					t.Fatalf("want refusal %d, got %v, %v", tc.status, have, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(have, tc.want) {
				t.Fatalf("facts %q, want %q", have, tc.want)
			}
		})
	}
}

// TestBuildKitChannelFacts: opening BuildKit's channels (/session, /grpc)
// has no fact but its endpoint: what goes over them is judged call by
// call (buildKitCallRoutes) and Dockerfile by Dockerfile.
func TestBuildKitChannelFacts(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "session upgrade", target: "/v1.41/session", header: http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade"}}, want: []string{}, exact: true},
		{name: "session without a version prefix", target: "/session", want: []string{}, exact: true},
		{name: "grpc upgrade", target: "/grpc", header: http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade"}}, want: []string{}, exact: true},
		{name: "grpc with a version prefix", target: "/v1.44/grpc", want: []string{}, exact: true},
	})
}
