package authz

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
	"google.golang.org/protobuf/encoding/protowire"
)

// dockerfileSolve is the Solve the docker CLI and buildx send for a
// Dockerfile build whose files come over the session, with attrs added.
func dockerfileSolve(attrs map[string]string) *controlapi.SolveRequest {
	a := map[string]string{"filename": "Dockerfile"}
	for k, v := range attrs {
		a[k] = v
	}
	return &controlapi.SolveRequest{Ref: "ref1", Session: "sess1", Frontend: "dockerfile.v0", FrontendAttrs: a}
}

func TestBuildKitSolveFacts(t *testing.T) {
	image := func(ref string) *pb.Definition { return llbDef(t, llb.Image(ref)) }
	withExporter := func(typ string, attrs map[string]string) *controlapi.SolveRequest {
		r := dockerfileSolve(nil)
		r.Exporters = []*controlapi.Exporter{{Type: typ, Attrs: attrs}}
		return r
	}
	withCache := func(c *controlapi.CacheOptions) *controlapi.SolveRequest {
		r := dockerfileSolve(nil)
		r.Cache = c
		return r
	}
	withEntitlements := func(e ...string) *controlapi.SolveRequest {
		r := dockerfileSolve(nil)
		r.Entitlements = e
		return r
	}
	rawLLB := func(def *pb.Definition) *controlapi.SolveRequest {
		return &controlapi.SolveRequest{Ref: "ref1", Session: "sess1", Definition: def}
	}
	inline := func(name, dockerfile string, attrs map[string]string) *controlapi.SolveRequest {
		r := dockerfileSolve(attrs)
		r.FrontendInputs = map[string]*pb.Definition{
			"dockerfile": llbDef(t, llb.Scratch().File(llb.Mkfile(name, 0o600, []byte(dockerfile)))),
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		req    *controlapi.SolveRequest
		body   []byte // instead of req
		want   []string
		status int
	}{
		{name: "Dockerfile from the session: judged when it comes", req: dockerfileSolve(map[string]string{"build-arg:BASE": "evil/x"}), want: []string{}},
		{name: "unapproved frontend by BUILDKIT_SYNTAX build-arg", req: dockerfileSolve(map[string]string{"build-arg:BUILDKIT_SYNTAX": "evil/frontend:1 --opt"}),
			want: []string{"image docker.io/evil/frontend:1"}},
		{name: "gateway frontend image", req: &controlapi.SolveRequest{Frontend: "gateway.v0", FrontendAttrs: map[string]string{"source": "evil/frontend:2"}},
			want: []string{"image docker.io/evil/frontend:2"}},
		{name: "gateway frontend without an image refused", req: &controlapi.SolveRequest{Frontend: "gateway.v0"}, status: 400},
		{name: "unknown frontend refused", req: &controlapi.SolveRequest{Frontend: "evil.v0"}, status: 400},
		{name: "COPY helper image of an old BuildKit", req: dockerfileSolve(map[string]string{"build-arg:BUILDKIT_DISABLE_FILEOP": "1", "override-copy-image": "evil/copy:1"}),
			want: []string{"image docker.io/evil/copy:1"}},
		{name: "SBOM scanner image", req: dockerfileSolve(map[string]string{"attest:sbom": ""}),
			want: []string{"image docker.io/docker/buildkit-syft-scanner:stable-1"}},
		{name: "SBOM scanner image chosen by the client", req: dockerfileSolve(map[string]string{"attest:sbom": "generator=evil/scanner:1"}),
			want: []string{"image docker.io/evil/scanner:1"}},
		{name: "context: override to an unapproved image", req: dockerfileSolve(map[string]string{"context:alpine": "docker-image://evil/alpine:1"}),
			want: []string{"image docker.io/evil/alpine:1"}},
		{name: "context: override to a local image under an approved name", req: dockerfileSolve(map[string]string{"context:base": "docker-image://reg.example.com/approved/app:2"}),
			want: []string{"local-image reg.example.com/approved/app:2"}},
		{name: "context: override to a git repository", req: dockerfileSolve(map[string]string{"context:src": "git@github.com:evil/src.git"}),
			want: []string{"build remote-context"}},
		{name: "context: override to a URL", req: dockerfileSolve(map[string]string{"context:src": "https://evil.example.com/src.tar"}),
			want: []string{"build remote-context"}},
		{name: "context: override to the client's files or a stage", req: dockerfileSolve(map[string]string{"context:a": "local:a", "context:b": "target:b", "context:c": "input:c"}),
			want: []string{}},
		{name: "context: override from an OCI layout store is not judged", req: dockerfileSolve(map[string]string{"context:alpine": "oci-layout://store@sha256:" + dA[7:]}),
			want: []string{"build buildkit"}},
		{name: "context: of an unknown type refused", req: dockerfileSolve(map[string]string{"context:alpine": "ftp://evil"}), status: 400},
		{name: "remote git context", req: dockerfileSolve(map[string]string{"context": "https://github.com/evil/src.git#main"}),
			want: []string{"build remote-context"}},
		{name: "remote context under another key", req: dockerfileSolve(map[string]string{"contextkey": "ctx", "ctx": "http://evil.example.com/ctx.tar"}),
			want: []string{"build remote-context"}},
		{name: "network.host entitlement", req: withEntitlements("network.host"), want: []string{"build network=host"}},
		{name: "host network forced by the frontend attribute", req: dockerfileSolve(map[string]string{"force-network-mode": "host"}), want: []string{"build network=host"}},
		{name: "unknown network mode refused", req: dockerfileSolve(map[string]string{"force-network-mode": "bridge"}), status: 400},
		{name: "security.insecure entitlement", req: withEntitlements("security.insecure"), want: []string{"privileged build"}},
		{name: "device entitlement for one device", req: withEntitlements("device=nvidia.com/gpu=all"), want: []string{"device cdi:nvidia.com/gpu=all"}},
		{name: "device entitlement for every device", req: withEntitlements("device"), want: []string{"device cdi:*"}},
		{name: "unknown entitlement refused", req: withEntitlements("kernel.modules"), status: 400},
		{name: "cgroup parent", req: dockerfileSolve(map[string]string{"cgroup-parent": "/system.slice"}), want: []string{"cgroup-parent /system.slice"}},
		{name: "owner label forged by an attribute refused", req: dockerfileSolve(map[string]string{"label:io.dockgate.owner": "user:root"}), status: 403},
		{name: "exporter name in an approved namespace", req: withExporter("image", map[string]string{"name": "reg.example.com/approved/app:9"}),
			want: []string{"image-target reg.example.com/approved/app:9"}},
		{name: "exporter names, several", req: withExporter("moby", map[string]string{"name": "ci.local/a:1,ci.local/b"}),
			want: []string{"image-target ci.local/a:1", "image-target ci.local/b:latest"}},
		{name: "exporter push=true", req: withExporter("image", map[string]string{"name": "ci.local/a:1", "push": "true"}),
			want: []string{"image-target ci.local/a:1", "endpoint image.push", "image ci.local/a:1"}},
		{name: "exporter push with an odd boolean refused", req: withExporter("image", map[string]string{"name": "ci.local/a:1", "push": "yes"}), status: 400},
		{name: "deprecated exporter field", req: &controlapi.SolveRequest{Frontend: "dockerfile.v0", ExporterDeprecated: "image", ExporterAttrsDeprecated: map[string]string{"name": "evil/x:1"}},
			want: []string{"image-target docker.io/evil/x:1"}},
		{name: "exporter to the client", req: withExporter("local", nil), want: []string{}},
		{name: "unknown exporter refused", req: withExporter("s3", nil), status: 400},
		{name: "cache export to a registry", req: withCache(&controlapi.CacheOptions{Exports: []*controlapi.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "reg.example.com/approved/cache:1", "mode": "max"}}}}),
			want: []string{"image-target reg.example.com/approved/cache:1", "endpoint image.push", "image reg.example.com/approved/cache:1"}},
		{name: "cache export, deprecated field", req: withCache(&controlapi.CacheOptions{ExportRefDeprecated: "evil/cache"}),
			want: []string{"image-target docker.io/evil/cache:latest", "endpoint image.push", "image docker.io/evil/cache:latest"}},
		{name: "cache import from a registry", req: withCache(&controlapi.CacheOptions{Imports: []*controlapi.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "evil/cache:1"}}}}),
			want: []string{"image docker.io/evil/cache:1"}},
		{name: "cache import, deprecated field", req: withCache(&controlapi.CacheOptions{ImportRefsDeprecated: []string{"evil/cache:2"}}),
			want: []string{"image docker.io/evil/cache:2"}},
		{name: "cache-from attribute (dockerd's cachefrom)", req: dockerfileSolve(map[string]string{"cache-from": "evil/cache:3,"}),
			want: []string{"image docker.io/evil/cache:3"}},
		{name: "cache-imports attribute", req: dockerfileSolve(map[string]string{"cache-imports": `[{"Type":"registry","Attrs":{"ref":"evil/cache:4"}}]`}),
			want: []string{"image docker.io/evil/cache:4"}},
		{name: "inline and local caches", req: withCache(&controlapi.CacheOptions{Exports: []*controlapi.CacheOptionsEntry{{Type: "inline"}, {Type: "local"}}, Imports: []*controlapi.CacheOptionsEntry{{Type: "local"}}}),
			want: []string{}},
		{name: "cache in another store is not judged", req: withCache(&controlapi.CacheOptions{Exports: []*controlapi.CacheOptionsEntry{{Type: "gha"}}}),
			want: []string{"build buildkit"}},
		{name: "LLB docker-image source", req: rawLLB(image("evil/x")), want: []string{"image docker.io/evil/x:latest"}},
		{name: "LLB docker-image source, a local image under an approved name", req: rawLLB(image("reg.example.com/approved/app:2")),
			want: []string{"local-image reg.example.com/approved/app:2"}},
		{name: "LLB exec in the host network", req: rawLLB(llbDef(t, llb.Image("busybox").Run(llb.Shlex("true"), llb.Network(llb.NetModeHost)).Root())),
			want: []string{"image docker.io/library/busybox:latest", "build network=host"}},
		{name: "LLB exec insecure", req: rawLLB(llbDef(t, llb.Image("busybox").Run(llb.Shlex("true"), llb.Security(llb.SecurityModeInsecure)).Root())),
			want: []string{"image docker.io/library/busybox:latest", "privileged build"}},
		{name: "LLB exec with cache, secret and tmpfs mounts", req: rawLLB(llbDef(t, llb.Image("busybox").Run(llb.Shlex("true"),
			llb.AddMount("/c", llb.Scratch(), llb.AsPersistentCacheDir("c", llb.CacheMountShared)),
			llb.AddSecret("/s"), llb.AddMount("/t", llb.Scratch(), llb.Tmpfs())).Root())),
			want: []string{"image docker.io/library/busybox:latest"}},
		{name: "LLB git source", req: rawLLB(llbDef(t, llb.Git("https://github.com/evil/src.git", "main"))), want: []string{"build remote-context"}},
		{name: "LLB http source", req: rawLLB(llbDef(t, llb.HTTP("https://evil.example.com/x"))), want: []string{"build remote-context"}},
		{name: "LLB local source", req: rawLLB(llbDef(t, llb.Local("context"))), want: []string{}},
		{name: "LLB OCI layout source is not judged", req: rawLLB(llbDef(t, llb.OCILayout("store@sha256:"+dA[7:]))), want: []string{"build buildkit"}},
		{name: "LLB op that does not decode refused", req: rawLLB(&pb.Definition{Def: [][]byte{{0xff, 0xff, 0xff}}}), status: 400},
		{name: "LLB frontend input judged", req: func() *controlapi.SolveRequest {
			r := dockerfileSolve(nil)
			r.FrontendInputs = map[string]*pb.Definition{"context": image("evil/ctx")}
			return r
		}(), want: []string{"image docker.io/evil/ctx:latest"}},
		{name: "inline Dockerfile (buildx -f -): unapproved FROM via build-arg", req: inline("Dockerfile", "ARG BASE=busybox\nFROM $BASE\n", map[string]string{"build-arg:BASE": "evil/inline"}),
			want: []string{"image docker.io/evil/inline:latest"}},
		{name: "inline Dockerfile under another name is not judged", req: inline("Other", "FROM evil/inline\n", nil), want: []string{"build buildkit"}},
		{name: "inline Dockerfile that does not parse refused", req: inline("Dockerfile", "FROM\n", nil), status: 400},
		{name: "source policy is not judged", req: func() *controlapi.SolveRequest {
			r := dockerfileSolve(nil)
			r.SourcePolicy = &spb.Policy{Rules: []*spb.Rule{{Action: spb.PolicyAction_CONVERT, Selector: &spb.Selector{Identifier: "docker-image://busybox"}, Updates: &spb.Update{Identifier: "docker-image://evil/x"}}}}
			return r
		}(), want: []string{"build buildkit"}},
		{name: "session exporter is not judged", req: func() *controlapi.SolveRequest {
			r := dockerfileSolve(nil)
			r.EnableSessionExporter = true
			return r
		}(), want: []string{"build buildkit"}},
		{name: "fields newer than dockgate knows are not judged", body: protowire.AppendString(protowire.AppendTag(marshalPB(t, dockerfileSolve(nil)), 15, protowire.BytesType), "evil-policy-session"),
			want: []string{"build buildkit"}},
		{name: "undecodable message refused", body: []byte{0x0a, 0xff}, status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = marshalPB(t, tc.req)
			}
			have, _, err := bkFacts(t, MatchBuildKitCall("/moby.buildkit.v1.Control/Solve"), body, nil, nil)
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
}

// TestBuildKitSolveRecordsItsDockerfile: what the proxy needs to judge the
// Dockerfile when the session carries it.
func TestBuildKitSolveRecordsItsDockerfile(t *testing.T) {
	inlineInput := map[string]*pb.Definition{"dockerfile": llbDef(t, llb.Scratch().File(llb.Mkfile("Dockerfile", 0o600, []byte("FROM busybox\n"))))}
	for _, tc := range []struct {
		name  string
		req   *controlapi.SolveRequest
		check func(t *testing.T, s *BuildKitSolve)
	}{
		{name: "docker CLI and buildx: Dockerfile from the session", req: dockerfileSolve(map[string]string{"build-arg:BASE": "evil/x", "target": "final", "filename": "prod.Dockerfile", "context:alpine": "docker-image://busybox", "context:go::linux/arm64": "local:go"}),
			check: func(t *testing.T, s *BuildKitSolve) {
				want := BuildKitSolve{Session: "sess1", Ref: "ref1", Frontend: "dockerfile.v0", BuildArgs: map[string]string{"BASE": "evil/x"}, Target: "final",
					DockerfileDir: "dockerfile", DockerfileSession: "sess1", DockerfileName: "prod.Dockerfile", ReadsDockerfile: true, NamedContexts: []string{"alpine"}}
				if !sameSolve(*s, want) {
					t.Fatalf("solve %+v, want %+v", *s, want)
				}
			}},
		{name: "another session directory and session for the Dockerfile", req: dockerfileSolve(map[string]string{"dockerfilekey": "df2", "local-sessionid:df2": "sess2"}),
			check: func(t *testing.T, s *BuildKitSolve) {
				if s.DockerfileDir != "df2" || s.DockerfileSession != "sess2" || !s.ReadsDockerfile {
					t.Fatalf("solve %+v", *s)
				}
			}},
		{name: "remote context: the Dockerfile is fetched with it", req: dockerfileSolve(map[string]string{"context": "https://github.com/a/b.git"}),
			check: func(t *testing.T, s *BuildKitSolve) {
				if s.ReadsDockerfile {
					t.Fatalf("solve %+v reads the Dockerfile from the session", *s)
				}
			}},
		{name: "inline Dockerfile: already judged", req: func() *controlapi.SolveRequest {
			r := dockerfileSolve(nil)
			r.FrontendInputs = inlineInput
			return r
		}(), check: func(t *testing.T, s *BuildKitSolve) {
			if s.ReadsDockerfile {
				t.Fatalf("solve %+v reads the Dockerfile from the session", *s)
			}
		}},
		{name: "dockerfilekey makes the frontend ignore an inline Dockerfile", req: func() *controlapi.SolveRequest {
			r := dockerfileSolve(map[string]string{"dockerfilekey": "dockerfile"})
			r.FrontendInputs = inlineInput
			return r
		}(), check: func(t *testing.T, s *BuildKitSolve) {
			if !s.ReadsDockerfile {
				t.Fatalf("solve %+v does not read the Dockerfile from the session", *s)
			}
		}},
		{name: "raw LLB reads no Dockerfile", req: &controlapi.SolveRequest{Session: "s", Definition: llbDef(t, llb.Image("busybox"))},
			check: func(t *testing.T, s *BuildKitSolve) {
				if s.ReadsDockerfile {
					t.Fatalf("solve %+v reads a Dockerfile", *s)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, req, err := bkFacts(t, MatchBuildKitCall("/moby.buildkit.v1.Control/Solve"), marshalPB(t, tc.req), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if req.Solve == nil {
				t.Fatal("no solve recorded")
			}
			tc.check(t, req.Solve)
		})
	}
}

func sameSolve(a, b BuildKitSolve) bool {
	eqArgs := len(a.BuildArgs) == len(b.BuildArgs)
	for k, v := range a.BuildArgs {
		if bv, ok := b.BuildArgs[k]; !ok || bv != v {
			eqArgs = false
		}
	}
	na, nb := a.NamedContexts, b.NamedContexts
	a.BuildArgs, b.BuildArgs, a.NamedContexts, b.NamedContexts = nil, nil, nil, nil
	return eqArgs && slices.Equal(na, nb) && a.Session == b.Session && a.Ref == b.Ref && a.Frontend == b.Frontend && a.Target == b.Target &&
		a.DockerfileDir == b.DockerfileDir && a.DockerfileSession == b.DockerfileSession && a.DockerfileName == b.DockerfileName && a.ReadsDockerfile == b.ReadsDockerfile
}

// TestBuildKitGatewaySolveFacts: a client-side frontend (buildx's gateway
// build) asks BuildKit to solve over LLBBridge.
func TestBuildKitGatewaySolveFacts(t *testing.T) {
	md := http.Header{"buildkit-controlapi-buildid": {"ref7"}}
	for _, tc := range []struct {
		name   string
		req    *gatewaypb.SolveRequest
		want   []string
		status int
	}{
		{name: "the Dockerfile frontend with an unapproved build-arg frontend", req: &gatewaypb.SolveRequest{Frontend: "dockerfile.v0", FrontendOpt: map[string]string{"build-arg:BUILDKIT_SYNTAX": "evil/fe"}},
			want: []string{"image docker.io/evil/fe:latest"}},
		{name: "LLB with an unapproved image", req: &gatewaypb.SolveRequest{Definition: llbDef(t, llb.Image("evil/x"))}, want: []string{"image docker.io/evil/x:latest"}},
		{name: "cache import from a registry", req: &gatewaypb.SolveRequest{Frontend: "dockerfile.v0", CacheImports: []*gatewaypb.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "evil/c"}}}},
			want: []string{"image docker.io/evil/c:latest"}},
		{name: "source policies are not judged", req: &gatewaypb.SolveRequest{Frontend: "dockerfile.v0", SourcePolicies: []*spb.Policy{{Rules: []*spb.Rule{{Action: spb.PolicyAction_ALLOW}}}}},
			want: []string{"build buildkit"}},
		{name: "unknown frontend refused", req: &gatewaypb.SolveRequest{Frontend: "x.v0"}, status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, req, err := bkFacts(t, MatchBuildKitCall("/moby.buildkit.v1.frontend.LLBBridge/Solve"), marshalPB(t, tc.req), md, nil)
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
			if req.Solve == nil || req.Solve.Ref != "ref7" {
				t.Fatalf("solve %+v, want the build id of the metadata", req.Solve)
			}
		})
	}
}
