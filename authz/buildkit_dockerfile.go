package authz

import (
	"bytes"
	"net/http"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// The Dockerfile of a BuildKit build, read out of the session (or given
// inline as a frontend input): the facts of the legacy build's Dockerfile
// (FROM after ARG substitution with the solve's build args, stages,
// COPY --from, `# syntax=`), plus what only BuildKit reads: the images of
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

// solveDockerfileFacts judges df as the Dockerfile of solve s.
func (x *extraction) solveDockerfileFacts(df []byte, s *BuildKitSolve) error {
	args := make(map[string]*string, len(s.BuildArgs))
	for k, v := range s.BuildArgs {
		args[k] = &v
	}
	x.namedContexts = s.NamedContexts
	defer func() { x.namedContexts = nil }()
	if err := x.dockerfileImageFacts(df, args); err != nil {
		return err
	}
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		return badBody("build: cannot parse the Dockerfile: %v", err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return badBody("build: cannot parse the Dockerfile: %v", err)
	}
	// RUN --mount=from names a stage of the file wherever it is defined
	// (dockerfile2llb detectRunMount, by name only), else an image.
	names := make([]string, 0, len(stages))
	for _, st := range stages {
		names = append(names, st.Name)
	}
	for _, st := range stages {
		for _, c := range st.Commands {
			run, ok := c.(*instructions.RunCommand)
			if !ok {
				continue
			}
			if err := x.runFacts(run, names); err != nil {
				return err
			}
		}
	}
	return nil
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
