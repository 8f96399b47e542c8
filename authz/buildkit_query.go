package authz

import (
	"encoding/json"
	"strings"
)

// buildKitQueryFacts: POST /build?version=2, the classic docker CLI with
// DOCKER_BUILDKIT=1. dockerd turns the query into a Solve of the
// Dockerfile frontend (moby builder/builder-next Builder.Build); the same
// attributes are judged here as a Solve's, beyond what buildFacts read of
// the query as for every build. Where the Dockerfile comes from follows
// remote: the spooled body (no remote; dockerd serves it to BuildKit as
// the context), the session (client-session: the proxy judges it there),
// a URL (a remote context, fetched by BuildKit), or another request's
// upload (upload-request, which dockgate cannot tie to this build).
func (x *extraction) buildKitQueryFacts(q map[string][]string) error {
	attrs := map[string]string{"filename": "Dockerfile"}
	if t := first(q["target"]); t != "" {
		attrs["target"] = t
	}
	if d := first(q["dockerfile"]); d != "" && d != "." {
		attrs["filename"] = d
	}
	remote := first(q["remote"])
	if remote != "" && remote != "client-session" && remote != "upload-request" {
		attrs["context"] = remote
	}
	if raw := first(q["buildargs"]); raw != "" {
		var buildArgs map[string]*string
		if err := json.Unmarshal([]byte(raw), &buildArgs); err != nil {
			return badBody("invalid buildargs: %v", err)
		}
		for k, v := range buildArgs {
			if v != nil {
				attrs["build-arg:"+k] = *v
			}
		}
	}
	if p := first(q["platform"]); p != "" {
		attrs["platform"] = p
	}
	switch mode := first(q["networkmode"]); mode {
	case "host", "none":
		attrs["force-network-mode"] = mode
	}
	solve := newBuildKitSolve(frontendDockerfile, attrs)
	solve.Session = first(q["session"])
	solve.DockerfileSession = solve.Session
	if err := x.frontendFacts(frontendDockerfile, attrs, nil, solve); err != nil {
		return err
	}
	if raw := first(q["outputs"]); raw != "" {
		outs, err := buildOutputs(raw)
		if err != nil {
			return err
		}
		for _, o := range outs {
			if err := x.exporterFacts(o.Type, o.Attrs); err != nil {
				return err
			}
		}
	}
	switch {
	case strings.HasPrefix(first(q["buildid"]), "upload-request:"):
		// Only uploads a context for another build; dockerd reads
		// nothing else of this request.
		solve.ReadsDockerfile = false
	case remote == "upload-request":
		// The context, and so the Dockerfile, is another request's body.
		x.add("build", buildKitFact)
		solve.ReadsDockerfile = false
	case remote == "":
		// The context is the body: its Dockerfile is judged here.
		solve.ReadsDockerfile = false
		df, _, err := x.contextDockerfile(tarEntryPath(solve.DockerfileName), first(q["dockerfile"]) == "")
		if err != nil {
			return err
		}
		if df != nil {
			if err := x.solveDockerfileFacts(df, solve); err != nil {
				return err
			}
		}
	}
	x.req.Solve = solve
	return nil
}
