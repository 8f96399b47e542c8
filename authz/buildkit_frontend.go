package authz

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/attestations"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/gitutil"
)

// The facts of a solve's frontend and its attributes, read as BuildKit's
// dockerui and dockerfile frontend read them (frontend/dockerui,
// frontend/dockerfile/builder).

// httpContext is dockerui's httpPrefix: a context fetched over HTTP.
var httpContext = regexp.MustCompile(`^https?://`)

// frontendFacts judges what the frontend fetches and runs, and records in
// s what it reads from the session.
func (x *extraction) frontendFacts(frontend string, attrs map[string]string, inputs map[string]*pb.Definition, s *BuildKitSolve) error {
	switch frontend {
	case "", frontendDockerfile, frontendGateway:
	default:
		return badBody("unknown BuildKit frontend %q", frontend)
	}
	labels := map[string]string{}
	for k, v := range attrs {
		if l, ok := strings.CutPrefix(k, "label:"); ok {
			labels[l] = v
		}
	}
	if err := checkOwnerLabels("BuildKit label: attributes", labels); err != nil {
		return err
	}
	if frontend == frontendGateway {
		// The frontend is an image that BuildKit runs.
		if err := x.addImageInUse(attrs["source"]); err != nil {
			return err
		}
	}
	if v, ok := attrs["build-arg:BUILDKIT_SYNTAX"]; ok {
		// The Dockerfile frontend forwards to this image, as to `# syntax=`.
		ref, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if err := x.addImageInUse(ref); err != nil {
			return err
		}
	}
	if v := attrs["override-copy-image"]; v != "" {
		// BuildKit before 0.11 (dockerd 20.10's) runs this image for
		// COPY when file ops are disabled by a build arg.
		if err := x.addImageInUse(v); err != nil {
			return err
		}
	}
	attests, err := attestations.Parse(attrs)
	if err != nil {
		return badBody("BuildKit attestations: %v", err)
	}
	if sbom, ok := attests[attestations.KeyTypeSbom]; ok {
		// The SBOM generator is an image BuildKit runs on the result.
		if err := x.addImageInUse(sbom["generator"]); err != nil {
			return err
		}
	}
	switch mode := attrs["force-network-mode"]; mode {
	case "", "none", "sandbox":
	case "host":
		x.add("build", "network=host")
	default:
		return badBody("BuildKit force-network-mode %q: not a network mode BuildKit knows", mode)
	}
	if cg := attrs["cgroup-parent"]; cg != "" {
		x.add("cgroup-parent", cg)
	}
	if err := x.frontendCacheFacts(attrs); err != nil {
		return err
	}
	contextKey := "context"
	if v, ok := attrs["contextkey"]; ok {
		contextKey = v
	}
	remote := false
	if c := attrs[contextKey]; c != "" {
		if _, err := gitutil.ParseGitRef(c); err == nil || httpContext.MatchString(c) {
			x.add("build", "remote-context")
			remote = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		name, ok := strings.CutPrefix(k, "context:")
		if !ok {
			continue
		}
		if err := x.namedContextFacts(name, attrs[k]); err != nil {
			return err
		}
		if !strings.Contains(name, "::") {
			s.NamedContexts = append(s.NamedContexts, name)
		}
	}
	_, forceLocal := attrs["dockerfilekey"]
	inline := false
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		def := inputs[name]
		if name == "dockerfile" && !forceLocal && !remote {
			// buildx's `-f -`: the Dockerfile as one file of an LLB input.
			df, ok, err := inlineDockerfile(def, s.DockerfileName)
			if err != nil {
				return err
			}
			if !ok {
				x.add("build", buildKitFact)
				continue
			}
			inline = true
			if err := x.solveDockerfileFacts(df, s); err != nil {
				return err
			}
			continue
		}
		if err := x.llbFacts("input "+name, def); err != nil {
			return err
		}
	}
	s.ReadsDockerfile = frontend != "" && !remote && !inline
	return nil
}

// namedContextFacts judges a context:<name> attribute: what a FROM,
// COPY --from or RUN --mount=from of name builds from instead
// (dockerui.NamedContext).
func (x *extraction) namedContextFacts(name, v string) error {
	typ, rest, ok := strings.Cut(v, ":")
	if !ok {
		return badBody("BuildKit context:%s: invalid context %q", name, v)
	}
	if strings.HasPrefix(typ, "git@") {
		typ = "git"
	}
	switch typ {
	case "docker-image":
		ref := strings.TrimPrefix(rest, "//")
		if ref == "scratch" {
			return nil
		}
		return x.addImageRun(ref)
	case "git", "http", "https":
		x.add("build", "remote-context")
	case "local", "input", "target":
		// The client's own files, a frontend input (judged as LLB) or a
		// stage of the same build.
	case "oci-layout":
		// An image from the client's OCI layout store, which dockgate
		// does not read.
		x.add("build", buildKitFact)
	default:
		return badBody("BuildKit context:%s: unknown context type %q", name, typ)
	}
	return nil
}

// frontendCacheFacts: the frontend's own cache imports, cache-from (a
// comma-separated list of registry refs, dockerd's /build cachefrom) and
// cache-imports (JSON CacheOptionsEntry list).
func (x *extraction) frontendCacheFacts(attrs map[string]string) error {
	for _, ref := range strings.Split(attrs["cache-from"], ",") {
		if ref = strings.TrimSpace(ref); ref == "" {
			continue
		}
		if err := x.cacheImportFacts("registry", map[string]string{"ref": ref}); err != nil {
			return err
		}
	}
	raw := attrs["cache-imports"]
	if raw == "" {
		return nil
	}
	var entries []struct {
		Type  string
		Attrs map[string]string
	}
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		return badBody("BuildKit cache-imports: %v", err)
	}
	for _, e := range entries {
		if err := x.cacheImportFacts(e.Type, e.Attrs); err != nil {
			return err
		}
	}
	return nil
}

// namedContextKey is the name BuildKit looks a base up by among the named
// contexts (dockerui.Client.NamedContext): the familiar reference without
// :latest; "" for a name that is no reference (no context can replace it).
func namedContextKey(name string) string {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(reference.FamiliarString(named), ":latest")
}
