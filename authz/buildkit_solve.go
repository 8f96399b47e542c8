package authz

import (
	"strconv"
	"strings"

	"github.com/distribution/reference"
	controlapi "github.com/moby/buildkit/api/services/control"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/util/entitlements"
	"google.golang.org/protobuf/proto"
)

// The facts of a BuildKit solve (moby.buildkit.v1.Control/Solve, and
// LLBBridge/Solve from a client-side frontend). A judged BuildKit build
// needs the rows a legacy build with the same Dockerfile needs: its
// frontend image, the images and remote sources it fetches, what its
// steps may do beyond a sandbox (host network, insecure mode, devices, a
// cgroup parent), the names its exporters give images and what they push.
// The Dockerfile itself comes later, over the session, and is judged on
// its own pseudo-route (MatchBuildKitDockerfile) with what the solve
// recorded (BuildKitSolve). What BuildKit would do that dockgate cannot
// judge is the `build buildkit` fact, which only a row for callers trusted
// with any image allows.

// BuildKitSolve is what a judged solve tells the proxy: which session's
// file sync carries its Dockerfile, and how to judge that Dockerfile. The
// proxy registers it as a pending solve when the solve is allowed
// (Decision.Solve) and passes it back in Request.Solve with the Dockerfile.
type BuildKitSolve struct {
	// Session is the ID of the client's session (SolveRequest.Session, the
	// /build query's session); "" for an LLBBridge solve, whose session
	// is that of the Control/Solve with its Ref.
	Session string
	// Ref is the build's ref (SolveRequest.Ref; for an LLBBridge solve the
	// buildkit-controlapi-buildid metadata of the call).
	Ref string
	// Frontend is the frontend that builds: "dockerfile.v0", "gateway.v0",
	// or "" for raw LLB.
	Frontend string
	// BuildArgs are the build-arg:<name> attributes: what the Dockerfile's
	// ARGs expand to.
	BuildArgs map[string]string
	// Target is the stage built (the target attribute), "" for the last.
	Target string
	// DockerfileDir is the session directory the Dockerfile is read from:
	// "dockerfile", or the dockerfilekey attribute.
	DockerfileDir string
	// DockerfileSession is the session that directory is read from:
	// the local-sessionid:<dir> attribute when set, else Session.
	DockerfileSession string
	// DockerfileName is the Dockerfile's name in that directory: the
	// filename attribute, "Dockerfile" by default.
	DockerfileName string
	// ReadsDockerfile says the frontend will read the Dockerfile from the
	// session: a Dockerfile frontend (dockerfile.v0, or a gateway.v0
	// image, which is judged as one), no remote context, no Dockerfile
	// given inline as a frontend input. The proxy must judge what it reads
	// before dockerd gets it.
	ReadsDockerfile bool
	// Platforms are the platforms built for (the platform attribute,
	// comma-separated); none: this host's. Each is a FROM expansion.
	Platforms []string
	// NamedContexts are the names the build's context:<name> attributes
	// replace for every platform (`FROM <name>` builds from the context,
	// judged with the solve), as BuildKit looks them up: the familiar
	// reference without :latest ("alpine", "reg.example.com/app:1").
	NamedContexts []string
}

// The frontends BuildKit has built in.
const (
	frontendDockerfile = "dockerfile.v0"
	frontendGateway    = "gateway.v0"
)

// buildKitSolveFacts: moby.buildkit.v1.Control/Solve.
func buildKitSolveFacts(x *extraction) error {
	x.req.Solve = nil
	var req controlapi.SolveRequest
	if err := x.decodeBuildKit("Control/Solve", &req); err != nil {
		return err
	}
	solve := newBuildKitSolve(req.Frontend, req.FrontendAttrs)
	solve.Session, solve.Ref = req.Session, req.Ref
	if s, ok := req.FrontendAttrs["local-sessionid:"+solve.DockerfileDir]; ok {
		solve.DockerfileSession = s
	} else {
		solve.DockerfileSession = req.Session
	}
	if err := x.frontendFacts(req.Frontend, req.FrontendAttrs, req.FrontendInputs, solve); err != nil {
		return err
	}
	if err := x.llbFacts("Definition", req.Definition); err != nil {
		return err
	}
	for _, e := range req.Entitlements {
		if err := x.entitlementFacts(e); err != nil {
			return err
		}
	}
	exporters := req.Exporters
	if req.ExporterDeprecated != "" {
		exporters = append(exporters, &controlapi.Exporter{Type: req.ExporterDeprecated, Attrs: req.ExporterAttrsDeprecated})
	}
	for _, e := range exporters {
		if err := x.exporterFacts(e.GetType(), e.GetAttrs()); err != nil {
			return err
		}
	}
	if req.EnableSessionExporter {
		// The client's session names the exporters, out of dockgate's
		// sight.
		x.add("build", buildKitFact)
	}
	if c := req.Cache; c != nil {
		for _, ref := range c.ImportRefsDeprecated {
			if err := x.cacheImportFacts("registry", map[string]string{"ref": ref}); err != nil {
				return err
			}
		}
		for _, e := range c.Imports {
			if err := x.cacheImportFacts(e.GetType(), e.GetAttrs()); err != nil {
				return err
			}
		}
		if c.ExportRefDeprecated != "" {
			if err := x.cacheExportFacts("registry", map[string]string{"ref": c.ExportRefDeprecated}); err != nil {
				return err
			}
		}
		for _, e := range c.Exports {
			if err := x.cacheExportFacts(e.GetType(), e.GetAttrs()); err != nil {
				return err
			}
		}
	}
	if len(req.SourcePolicy.GetRules()) > 0 {
		// A source policy rewrites the sources judged here into others.
		x.add("build", buildKitFact)
	}
	if x.req.Owner != "" {
		if err := x.labelSolve(&req, exporters); err != nil {
			return err
		}
	}
	x.req.Solve = solve
	return nil
}

// buildKitGatewaySolveFacts: moby.buildkit.v1.frontend.LLBBridge/Solve, a
// client-side frontend asking BuildKit to solve LLB or to run a frontend.
// Its exporters and entitlements are those of its Control/Solve.
func buildKitGatewaySolveFacts(x *extraction) error {
	x.req.Solve = nil
	var req gatewaypb.SolveRequest
	if err := x.decodeBuildKit("LLBBridge/Solve", &req); err != nil {
		return err
	}
	solve := newBuildKitSolve(req.Frontend, req.FrontendOpt)
	solve.Ref = grpcMetadata(x.req, "buildkit-controlapi-buildid")
	solve.DockerfileSession = req.FrontendOpt["local-sessionid:"+solve.DockerfileDir]
	if err := x.frontendFacts(req.Frontend, req.FrontendOpt, req.FrontendInputs, solve); err != nil {
		return err
	}
	if err := x.llbFacts("Definition", req.Definition); err != nil {
		return err
	}
	for _, e := range req.CacheImports {
		if err := x.cacheImportFacts(e.GetType(), e.GetAttrs()); err != nil {
			return err
		}
	}
	for _, p := range req.SourcePolicies {
		if len(p.GetRules()) > 0 {
			x.add("build", buildKitFact)
		}
	}
	if x.req.Owner != "" {
		if err := x.labelGatewaySolve(&req); err != nil {
			return err
		}
	}
	x.req.Solve = solve
	return nil
}

// decodeBuildKit decodes the call's request message into m with BuildKit's
// generated types. Fields BuildKit's types here do not know (a newer
// client's) may change what the solve does: they are the `build buildkit`
// fact.
func (x *extraction) decodeBuildKit(call string, m proto.Message) error {
	body, err := x.body()
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return badBody("BuildKit %s: cannot decode the request: %v", call, err)
	}
	if hasUnknownFields(m.ProtoReflect()) {
		x.add("build", buildKitFact)
	}
	return nil
}

// grpcMetadata is the first value of a gRPC metadata key, whatever the
// spelling of the header name.
func grpcMetadata(req *Request, key string) string {
	for k, vs := range req.Header {
		if strings.EqualFold(k, key) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// newBuildKitSolve reads what a solve says about its Dockerfile from the
// frontend attributes (BuildKit's dockerui.Client: filename,
// dockerfilekey, target, build-arg:*).
func newBuildKitSolve(frontend string, attrs map[string]string) *BuildKitSolve {
	s := &BuildKitSolve{Frontend: frontend, Target: attrs["target"], DockerfileDir: "dockerfile", DockerfileName: "Dockerfile"}
	if v, ok := attrs["filename"]; ok {
		s.DockerfileName = v
	}
	if v, ok := attrs["dockerfilekey"]; ok {
		s.DockerfileDir = v
	}
	if v := attrs["platform"]; v != "" {
		s.Platforms = strings.Split(v, ",")
	}
	for k, v := range attrs {
		if name, ok := strings.CutPrefix(k, "build-arg:"); ok {
			if s.BuildArgs == nil {
				s.BuildArgs = map[string]string{}
			}
			s.BuildArgs[name] = v
		}
	}
	return s
}

// entitlementFacts: an entitlement lets the build's steps out of
// BuildKit's sandbox. Values as util/entitlements parses them.
func (x *extraction) entitlementFacts(e string) error {
	key, rest, _ := strings.Cut(e, "=")
	switch entitlements.Entitlement(key) {
	case entitlements.EntitlementNetworkHost:
		x.add("build", "network=host")
	case entitlements.EntitlementSecurityInsecure:
		x.add("privileged", "build")
	case entitlements.EntitlementDevice:
		cfg, err := entitlements.ParseDevicesConfig(rest)
		if err != nil {
			return badBody("BuildKit entitlement %q: %v", e, err)
		}
		if cfg.All {
			x.add("device", cdiDevice("*"))
		}
		for alias, name := range cfg.Devices {
			if name == "" {
				name = alias
			}
			x.add("device", cdiDevice(name))
		}
	default:
		return badBody("unknown BuildKit entitlement %q", e)
	}
	return nil
}

// cdiDevice is the device fact of a CDI device a build step may use;
// "cdi:*" is every device BuildKit knows.
func cdiDevice(name string) string { return "cdi:" + name }

// exporterFacts: what an exporter of the build's result does. The names
// it gives the image are image-target facts (as a legacy build's t= and
// outputs); push=true is the push endpoint and the image fact of each name
// pushed, as POST /images/{name}/push judges them.
func (x *extraction) exporterFacts(typ string, attrs map[string]string) error {
	switch typ {
	case "image", "moby", "docker", "oci":
	case "local", "tar", "cacheonly":
	default:
		return badBody("unknown BuildKit exporter %q", typ)
	}
	var names []string
	for _, n := range strings.Split(attrs["name"], ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if err := x.addImageName(n, ""); err != nil {
			return err
		}
	}
	if v, ok := attrs["push"]; ok {
		push, err := strconv.ParseBool(v)
		if err != nil {
			return badBody("BuildKit exporter %s: invalid push=%q", typ, v)
		}
		if push {
			x.add("endpoint", "image.push")
			for _, n := range names {
				if err := x.addImagePushed(n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// cacheImportFacts: a cache import reads layers the build may start
// from. A registry ref is an image the build uses; local and inline
// caches are the client's or the image's own; caches in other stores
// (gha, s3, azblob) are not judged.
func (x *extraction) cacheImportFacts(typ string, attrs map[string]string) error {
	switch typ {
	case "registry":
		return x.addImageInUse(attrs["ref"])
	case "local", "inline":
		return nil
	}
	x.add("build", buildKitFact)
	return nil
}

// cacheExportFacts: a cache export to a registry creates and pushes ref
// (image-target, endpoint image.push and its image fact).
func (x *extraction) cacheExportFacts(typ string, attrs map[string]string) error {
	switch typ {
	case "registry":
		ref := attrs["ref"]
		if err := x.addImageName(ref, ""); err != nil {
			return err
		}
		x.add("endpoint", "image.push")
		return x.addImagePushed(ref)
	case "local", "inline":
		return nil
	}
	x.add("build", buildKitFact)
	return nil
}

// addImagePushed adds the image fact of a name BuildKit pushes: the name
// with its tag, :latest when it has none (BuildKit pushes that one tag,
// never all of a repository's).
func (x *extraction) addImagePushed(name string) error {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return badBody("invalid image reference %q: %v", name, err)
	}
	x.add("image", reference.TagNameOnly(named).String())
	return nil
}
