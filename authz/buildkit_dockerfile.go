package authz

import (
	"net/http"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// The Dockerfile of a BuildKit build, read out of the session (or given
// inline as a frontend input): the facts of the legacy build's Dockerfile
// (FROM after ARG substitution with the solve's build args, stages,
// COPY --from, `# syntax=`), read with BuildKit's own semantics (its
// platform args, its meta ARG rules), plus what only BuildKit reads: the images of
// RUN --mount=from, and RUN's --network and --device (which the solve's
// entitlements must also grant). RUN --security exists only in the labs
// syntax (a frontend image); the parser here does not know it and refuses
// it, and the solve's security.insecure entitlement is judged anyway. A base that one of the
// solve's named contexts replaces was judged with the solve.

// buildKitDockerfileFacts: the Dockerfile pseudo-route
// (MatchBuildKitDockerfile). Without the solve it belongs to, the
// Dockerfile cannot be judged: refused.
func buildKitDockerfileFacts(x *extraction) error {
	if x.req.Solve == nil {
		return &RouteError{Status: http.StatusInternalServerError, Message: "internal error: a BuildKit Dockerfile to judge without the solve it belongs to"}
	}
	df, err := x.body()
	if err != nil {
		return err
	}
	return x.solveDockerfileFacts(df, x.req.Solve)
}

// solveDockerfileFacts judges df as the Dockerfile of solve s, read as
// BuildKit's Dockerfile frontend reads it (dockerfile2llb): the `# syntax=`
// frontend; every FROM base after expanding it, for each platform built,
// with BuildKit's global args (the platform args, the meta ARGs with the
// solve's build args); COPY --from and RUN --mount=from as written.
func (x *extraction) solveDockerfileFacts(df []byte, s *BuildKitSolve) error {
	res, err := x.parseDockerfile(df)
	if err != nil {
		return err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return badBody("build: cannot parse the Dockerfile: %v", err)
	}
	if len(stages) == 0 {
		return badBody("build: the Dockerfile has no FROM")
	}
	targets, err := s.targetPlatforms()
	if err != nil {
		return err
	}
	x.namedContexts = s.NamedContexts
	defer func() { x.namedContexts = nil }()
	// A base, a COPY --from or a RUN --mount=from names a stage of the
	// file wherever it is defined (findStateByName), else an image.
	names := make([]string, 0, len(stages))
	for _, st := range stages {
		names = append(names, st.Name)
	}
	lex := shell.NewLex(res.EscapeToken)
	for _, target := range targets {
		env, err := buildKitGlobalArgs(lex, target, s, stages, metaArgs)
		if err != nil {
			return err
		}
		for _, st := range stages {
			base, _, err := lex.ProcessWord(st.BaseName, envOf(env))
			if err != nil {
				return badBody("build: FROM %s: %v", st.BaseName, err)
			}
			if base == "" {
				return badBody("build: FROM %s: an empty base", st.BaseName)
			}
			if err := x.addBuildBase(base, names, false); err != nil {
				return err
			}
		}
	}
	for _, st := range stages {
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From == "" {
					continue
				}
				if err := x.addBuildBase(c.From, names, true); err != nil {
					return err
				}
			case *instructions.RunCommand:
				if err := x.runFacts(c, names); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// buildKitGlobalArgs is what a FROM expands with when BuildKit builds for
// target (dockerfile2llb defaultArgs and buildMetaArgs): the platform args
// (any build arg of the same name overrides them), then each meta ARG: the
// build arg of its name, else its default expanded; a meta ARG with
// neither leaves the name as it was.
func buildKitGlobalArgs(lex *shell.Lex, target ocispecs.Platform, s *BuildKitSolve, stages []instructions.Stage, metaArgs []instructions.ArgCommand) (map[string]string, error) {
	build := platforms.DefaultSpec()
	stage := s.Target
	if stage == "" {
		stage = stages[len(stages)-1].Name
	}
	if stage == "" {
		stage = "default"
	}
	env := map[string]string{
		"BUILDPLATFORM": platforms.Format(build), "BUILDOS": build.OS, "BUILDOSVERSION": build.OSVersion,
		"BUILDARCH": build.Architecture, "BUILDVARIANT": build.Variant,
		"TARGETPLATFORM": platforms.FormatAll(target), "TARGETOS": target.OS, "TARGETOSVERSION": target.OSVersion,
		"TARGETARCH": target.Architecture, "TARGETVARIANT": target.Variant, "TARGETSTAGE": stage,
	}
	for k := range env {
		if v, ok := s.BuildArgs[k]; ok {
			env[k] = v
		}
	}
	for _, cmd := range metaArgs {
		for _, kv := range cmd.Args {
			if v, ok := s.BuildArgs[kv.Key]; ok {
				env[kv.Key] = v
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, envOf(env))
			if err != nil {
				return nil, badBody("build: ARG %s: %v", kv.Key, err)
			}
			env[kv.Key] = v
		}
	}
	return env, nil
}

// targetPlatforms are the platforms the solve builds for (the platform
// attribute, as dockerui parses it), this host's when it names none.
func (s *BuildKitSolve) targetPlatforms() ([]ocispecs.Platform, error) {
	if len(s.Platforms) == 0 {
		return []ocispecs.Platform{platforms.DefaultSpec()}, nil
	}
	out := make([]ocispecs.Platform, 0, len(s.Platforms))
	for _, v := range s.Platforms {
		p, err := platforms.Parse(v)
		if err != nil {
			return nil, badBody("BuildKit platform %q: %v", v, err)
		}
		out = append(out, platforms.Normalize(p))
	}
	return out, nil
}

// runFacts: what a RUN instruction reads and may do beyond the sandbox.
func (x *extraction) runFacts(run *instructions.RunCommand, stages []string) error {
	for _, m := range instructions.GetMounts(run) {
		if m.From == "" {
			continue
		}
		if err := x.addBuildBase(m.From, stages, false); err != nil {
			return err
		}
	}
	switch instructions.GetNetwork(run) {
	case instructions.NetworkHost:
		x.add("build", "network=host")
	}
	for _, d := range instructions.GetDevices(run) {
		x.add("device", cdiDevice(d.Name))
	}
	return nil
}
