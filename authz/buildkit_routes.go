package authz

import "net/http"

// BuildKit's gRPC calls. Once dockerd upgraded POST /grpc to h2c, the
// client calls BuildKit's control API on it; each call is judged like an
// HTTP request on a pseudo-route whose Path is the call's full gRPC method
// ("/moby.buildkit.v1.Control/Solve"), so that container callers, audit
// mode, refusal messages and audit records work as for HTTP. The proxy
// judges a call with Judge(ctx, decider, MatchBuildKitCall(method), req)
// where req.Method is POST, req.URL.Path the full method, req.Body the
// protobuf bytes of the call's first request message and req.Header its
// gRPC metadata. Whether a call streams does not matter: its first message
// says what it does.

const (
	buildKitControl = "/moby.buildkit.v1.Control/"
	buildKitBridge  = "/moby.buildkit.v1.frontend.LLBBridge/"
	grpcHealth      = "/grpc.health.v1.Health/"
)

// BuildKitDockerfilePath is the Path of the Dockerfile's pseudo-route
// (MatchBuildKitDockerfile): the call of the session it arrives by.
const BuildKitDockerfilePath = "/moby.filesync.v1.FileSync/DiffCopy"

// buildKitCallRoutes is every gRPC call dockgate knows on /grpc, one line
// each; a call not listed is ActionUnknown and refused whatever the policy
// says.
//
//   - build.run: a solve, judged like a build (Solve facts).
//   - grpc.start: what reads BuildKit's state (status of a build, workers,
//     disk usage, build history, health); opening /grpc already needs it.
//   - build.prune: what deletes build cache or build records; a tenant may
//     not (the cache records no owner).
//   - session.start: a session tunnelled inside /grpc, as POST /session.
//   - build.frontend: a client-side frontend's calls into BuildKit
//     (buildx's gateway build) that only read what judged solves made or
//     what a registry says of an image (its config), or hand BuildKit the
//     result of a judged solve (Return): every solve they can name was
//     judged on its own (LLBBridge/Solve). The ones that run a container
//     of their own outside any solve (NewContainer, ExecProcess,
//     ReleaseContainer: buildx's debugging shell) are not judged, so they
//     also carry the `build buildkit` fact.
func buildKitCallRoutes() []Route {
	return []Route{
		// A tenant's Solve is forwarded with its owner labels
		// (buildkit_owner.go).
		grpcCall(buildKitControl+"Solve", "build.run", readsBody, reads(buildKitSolveFacts), labelsImage),
		grpcCall(buildKitControl+"Status", "grpc.start"),
		grpcCall(buildKitControl+"ListWorkers", "grpc.start"),
		grpcCall(buildKitControl+"Info", "grpc.start"),
		grpcCall(buildKitControl+"DiskUsage", "grpc.start"),
		grpcCall(buildKitControl+"ListenBuildHistory", "grpc.start"),
		grpcCall(buildKitControl+"Prune", "build.prune", scopedBy(refuseBuildPrune)),
		grpcCall(buildKitControl+"UpdateBuildHistory", "build.prune", scopedBy(refuseBuildPrune)),
		grpcCall(buildKitControl+"Session", "session.start", reads(buildkitChannelFacts)),
		grpcCall(grpcHealth+"Check", "grpc.start"),
		grpcCall(buildKitBridge+"Solve", "build.run", readsBody, reads(buildKitGatewaySolveFacts), labelsImage),
		grpcCall(buildKitBridge+"ResolveImageConfig", "build.frontend"),
		grpcCall(buildKitBridge+"ResolveSourceMeta", "build.frontend"),
		grpcCall(buildKitBridge+"ReadFile", "build.frontend"),
		grpcCall(buildKitBridge+"ReadDir", "build.frontend"),
		grpcCall(buildKitBridge+"StatFile", "build.frontend"),
		grpcCall(buildKitBridge+"Evaluate", "build.frontend"),
		grpcCall(buildKitBridge+"Ping", "build.frontend"),
		// The image config a client-side frontend returns is checked for
		// the owner labels dockgate alone sets.
		grpcCall(buildKitBridge+"Return", "build.frontend", readsBody, reads(buildKitReturnFacts), labelsImage),
		grpcCall(buildKitBridge+"Inputs", "build.frontend"),
		grpcCall(buildKitBridge+"NewContainer", "build.frontend", reads(buildkitChannelFacts)),
		grpcCall(buildKitBridge+"ReleaseContainer", "build.frontend", reads(buildkitChannelFacts)),
		grpcCall(buildKitBridge+"ExecProcess", "build.frontend", reads(buildkitChannelFacts)),
		grpcCall(buildKitBridge+"Warn", "build.frontend"),
	}
}

// buildKitDockerfileRoute is the Dockerfile of a solve, read out of the
// session's file sync: judged as a build with the solve's build args.
func buildKitDockerfileRoute() Route {
	return grpcCall(BuildKitDockerfilePath, "build.run", readsBody, reads(buildKitDockerfileFacts))
}

func grpcCall(fullMethod, action string, opts ...routeOpt) Route {
	return newRoute(http.MethodPost, fullMethod, action, opts)
}

// buildKitCalls indexes buildKitCallRoutes by full method. Built once and
// only read: each Match shares its row.
var buildKitCalls = func() map[string]*Route {
	idx := map[string]*Route{}
	for _, r := range buildKitCallRoutes() {
		idx[r.Path] = &r
	}
	return idx
}()

var buildKitDockerfile = buildKitDockerfileRoute()

// MatchBuildKitCall names a gRPC call a client makes on /grpc, fullMethod
// as gRPC sends it ("/moby.buildkit.v1.Control/Solve"). A method dockgate
// does not know is ActionUnknown: Judge refuses it whatever the policy
// says.
func MatchBuildKitCall(fullMethod string) *Match {
	if r, ok := buildKitCalls[fullMethod]; ok {
		return &Match{Route: r}
	}
	return &Match{Route: unknownRoute}
}

// MatchBuildKitDockerfile is the pseudo-route (action build.run) a
// Dockerfile read out of a session's file sync is judged on:
// req.Body is the Dockerfile, req.Solve the solve it belongs to (the
// Decision.Solve of that solve), req.URL.Path BuildKitDockerfilePath. Its
// facts are those of the legacy build's Dockerfile with the solve's build
// args, plus RUN --mount=from images and RUN's network, security and
// devices; a Dockerfile that does not parse is refused (400).
func MatchBuildKitDockerfile() *Match {
	return &Match{Route: &buildKitDockerfile}
}
