package authz

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Build facts from the Dockerfile. The build context is
// spooled (Match.Spool); its Dockerfile is read out of the tarball where
// dockerd's classic builder reads it, parsed with BuildKit's Dockerfile
// parser, and every image the build would start from or copy out of is an
// image fact, judged by provenance like a container's image (addImageRun):
// the FROM bases after ARG substitution (stage names resolved, scratch
// skipped), COPY --from images, and the `# syntax=` frontend.
//
// BuildKit builds (version=2) are a solve described by the query
// (buildkit_query.go): their Dockerfile is in the spooled context, or
// comes over the session and is judged there (MatchBuildKitDockerfile).

// buildKitFact is the build fact of everything that reaches BuildKit.
const buildKitFact = "buildkit"

// buildkitChannelFacts: what dockgate cannot judge on BuildKit's channels
// (a session tunnelled inside /grpc, a client-side frontend's calls): the
// `build buildkit` fact, which only a row for callers trusted with any
// image allows.
func buildkitChannelFacts(x *extraction) error {
	x.add("build", buildKitFact)
	return nil
}

// dockerfileFacts reads the facts of the Dockerfile of a classic build.
func (x *extraction) dockerfileFacts(q map[string][]string) error {
	if first(q["version"]) == "2" {
		return x.buildKitQueryFacts(q)
	}
	if r := first(q["remote"]); r != "" && r != "client-session" {
		// A remote context (git or URL): the Dockerfile is fetched by
		// dockerd; the remote-context fact says so.
		return nil
	}
	name := first(q["dockerfile"])
	isDefault := name == ""
	if isDefault {
		name = "Dockerfile"
	}
	df, dfPath, err := x.contextDockerfile(tarEntryPath(name), isDefault)
	if err != nil || df == nil {
		return err
	}
	var buildArgs map[string]*string
	if raw := first(q["buildargs"]); raw != "" {
		if err := json.Unmarshal([]byte(raw), &buildArgs); err != nil {
			return badBody("invalid buildargs: %v", err)
		}
	}
	if err := x.dockerfileImageFacts(df, buildArgs); err != nil {
		return err
	}
	return x.pinBuildBases(q, dfPath, df)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// contextDockerfile returns the Dockerfile at path in the spooled
// context and the path it was found at, nil when the build has no body
// (dockerd then fails). With the default name dockerd also accepts
// "dockerfile". A Dockerfile that is a link, appears twice, or is missing
// is refused: dockerd would read something dockgate did not, or fail.
func (x *extraction) contextDockerfile(path string, isDefault bool) ([]byte, string, error) {
	tr, ok, err := x.spooledTar()
	if err != nil || !ok {
		return nil, "", err
	}
	found := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", tarError(err)
		}
		p := tarEntryPath(hdr.Name)
		if p != path && !(isDefault && p == "dockerfile") {
			continue
		}
		if _, dup := found[p]; dup {
			return nil, "", badBody("build: the context has %s twice", p)
		}
		b, err := readTarFile(tr, hdr, "the Dockerfile "+p)
		if err != nil {
			return nil, "", err
		}
		found[p] = b
	}
	if b, ok := found[path]; ok {
		return b, path, nil
	}
	if b, ok := found["dockerfile"]; ok && isDefault {
		return b, "dockerfile", nil
	}
	return nil, "", badBody("build: no Dockerfile %q in the context", path)
}

// parseDockerfile parses a Dockerfile to judge, with the fact of its
// `# syntax=` frontend; one that sets an owner label is refused. Both
// builders' Dockerfiles start here.
func (x *extraction) parseDockerfile(df []byte) (*parser.Result, error) {
	if syntax, _, _, ok := parser.DetectSyntax(df); ok && syntax != "" {
		if err := x.addImageInUse(syntax); err != nil {
			return nil, err
		}
	}
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		return nil, badBody("build: cannot parse the Dockerfile: %v", err)
	}
	if err := checkOwnerDockerfile("build Dockerfile", res); err != nil {
		return nil, err
	}
	return res, nil
}

// dockerfileImageFacts parses df and adds the image facts of its bases.
func (x *extraction) dockerfileImageFacts(df []byte, buildArgs map[string]*string) error {
	res, err := x.parseDockerfile(df)
	if err != nil {
		return err
	}
	lex := shell.NewLex(res.EscapeToken)
	// Meta ARGs (before the first FROM) are what FROM may expand; a
	// --build-arg overrides the default of a declared one.
	meta := map[string]string{}
	var stages []string
	seenFrom := false
	for _, n := range res.AST.Children {
		switch strings.ToLower(n.Value) {
		case "arg":
			if seenFrom {
				continue
			}
			for a := n.Next; a != nil; a = a.Next {
				key, def, hasDef := strings.Cut(a.Value, "=")
				if hasDef {
					v, _, err := lex.ProcessWord(def, envOf(meta))
					if err != nil {
						return badBody("build: ARG %s: %v", key, err)
					}
					def = v
				}
				if v, ok := buildArgs[key]; ok && v != nil {
					meta[key] = *v
				} else if hasDef {
					meta[key] = def
				} else {
					delete(meta, key)
				}
			}
		case "from":
			seenFrom = true
			if n.Next == nil {
				return badBody("build: FROM without an image")
			}
			image, _, err := lex.ProcessWord(n.Next.Value, envOf(meta))
			if err != nil {
				return badBody("build: FROM %s: %v", n.Next.Value, err)
			}
			if err := x.addBuildBase(image, stages, false); err != nil {
				return err
			}
			stage := ""
			if as := n.Next.Next; as != nil && strings.EqualFold(as.Value, "as") && as.Next != nil {
				stage = as.Next.Value
			}
			x.noteBuildBase(n, image, stage, stages)
			stages = append(stages, stage)
		case "copy":
			for _, f := range n.Flags {
				from, ok := strings.CutPrefix(f, "--from=")
				if !ok {
					continue
				}
				if err := x.addBuildBase(from, stages, true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// addBuildBase adds the facts of an image a build starts from (FROM) or
// copies out of (COPY --from), unless it names an earlier stage or is
// scratch. COPY --from also takes a stage's index; FROM does not, so
// "FROM 0" is the image docker.io/library/0.
func (x *extraction) addBuildBase(image string, stages []string, byIndex bool) error {
	if image == "scratch" {
		return nil
	}
	if len(x.namedContexts) > 0 {
		if key := namedContextKey(image); key != "" && slices.Contains(x.namedContexts, key) {
			return nil
		}
	}
	for i, s := range stages {
		if s != "" && strings.EqualFold(s, image) || byIndex && image == strconv.Itoa(i) {
			return nil
		}
	}
	return x.addImageRun(image)
}

// envOf is the environment of an ARG or FROM expansion.
func envOf(m map[string]string) shell.EnvGetter {
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return shell.EnvsFromSlice(env)
}
