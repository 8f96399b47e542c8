package clientflows

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/image"
	dockerclient "github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/solver/pb"
	"github.com/tonistiigi/fsutil"
)

// BuildKit is the BuildKit inside a dockerd, reached as buildx's docker
// driver reaches it: the control API over the hijacked `POST /grpc`
// (h2c, we are the gRPC client) and the build's session over the hijacked
// `POST /session` (dockerd is the gRPC client of the files, secrets and
// credentials we serve). Docker is the Engine API client on the same
// socket, which buildx uses for what BuildKit inside dockerd does not do
// itself (a push after a build).
type BuildKit struct {
	Client *bkclient.Client
	Docker *dockerclient.Client
}

// DialBuildKit connects to the dockerd, or to whatever stands in front of
// it, listening on the Unix socket path socket. ctx bounds the client's
// connections, as it does in buildx: every /grpc and /session it dials
// ends with it.
func DialBuildKit(ctx context.Context, socket string) (*BuildKit, error) {
	docker, err := dockerclient.NewClientWithOpts(dockerclient.WithHost("unix://"+socket), dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", socket, err)
	}
	// The hijacks below name the API version in their path; negotiate it
	// first, as the CLI does before buildx asks for its client.
	if _, err := docker.Ping(ctx); err != nil {
		docker.Close()
		return nil, fmt.Errorf("ping %s: %w", socket, err)
	}
	c, err := bkclient.New(ctx, "",
		bkclient.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			return docker.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		bkclient.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return docker.DialHijack(ctx, "/session", proto, meta)
		}))
	if err != nil {
		docker.Close()
		return nil, fmt.Errorf("buildkit client for %s: %w", socket, err)
	}
	return &BuildKit{Client: c, Docker: docker}, nil
}

// Close closes both clients.
func (b *BuildKit) Close() error {
	return errors.Join(b.Client.Close(), b.Docker.Close())
}

// MobyExporter is the exporter that puts an image into dockerd's own image
// store. buildx's docker driver sends it for `--load`, `--push` and
// `-t` alike, on dockerd 20.10 and on Engine 29 with the containerd image
// store; BuildKit's own "image" exporter would, on Engine 29, leave the
// image where `docker run` does not find it.
const MobyExporter = "moby"

// DockerfileBuild is a `docker buildx build` as the docker driver sends it.
type DockerfileBuild struct {
	ContextDir    string            // the build context
	DockerfileDir string            // the dir holding the Dockerfile; ContextDir when empty
	Filename      string            // the Dockerfile's name in DockerfileDir; "Dockerfile" when empty
	BuildArgs     map[string]string // --build-arg
	Target        string            // --target
	Tag           string            // -t: the exported image's name; no export when empty
	Push          bool              // --push: push=true on the exporter, then a push through the Engine API, as buildx does
	Secrets       map[string][]byte // --secret id=...: served from the session
	Network       string            // --network: "none" when empty (the bed's dockerd has no default bridge); "host" asks for the network.host entitlement
	Entitlements  []string          // --allow: "network.host", "security.insecure"
	CacheTo       string            // --cache-to type=registry,ref=CacheTo,mode=max
	CacheFrom     string            // --cache-from type=registry,ref=CacheFrom
	Frontend      string            // "dockerfile.v0" when empty
	FrontendAttrs map[string]string // more frontend options, as given (they win over the above)
}

// BuildResult is what a build left: BuildKit's answer (nil on failure)
// and its progress as text, one line per step, log line and error.
type BuildResult struct {
	Response *bkclient.SolveResponse
	Log      string
}

// BuildDockerfile runs b with BuildKit's Dockerfile frontend. The error is
// BuildKit's own, its message intact (a refusal by a proxy in between
// reads as the proxy wrote it).
func (k *BuildKit) BuildDockerfile(ctx context.Context, b DockerfileBuild) (BuildResult, error) {
	opt, err := b.solveOpt()
	if err != nil {
		return BuildResult{}, err
	}
	return k.solve(ctx, nil, opt, b.Tag, b.Push)
}

func (b DockerfileBuild) solveOpt() (bkclient.SolveOpt, error) {
	dfDir := b.DockerfileDir
	if dfDir == "" {
		dfDir = b.ContextDir
	}
	ctxFS, err := fsutil.NewFS(b.ContextDir)
	if err != nil {
		return bkclient.SolveOpt{}, fmt.Errorf("build context %s: %w", b.ContextDir, err)
	}
	dfFS, err := fsutil.NewFS(dfDir)
	if err != nil {
		return bkclient.SolveOpt{}, fmt.Errorf("dockerfile dir %s: %w", dfDir, err)
	}
	attrs := map[string]string{
		"filename": cmp.Or(b.Filename, "Dockerfile"),
		// dockerd's BuildKit resolves a base image in its own store first,
		// as buildx asks it to for the docker driver: the bed has no
		// network beyond loopback.
		"image-resolve-mode": pb.AttrImageResolveModePreferLocal,
		"force-network-mode": cmp.Or(b.Network, "none"),
	}
	if b.Target != "" {
		attrs["target"] = b.Target
	}
	for k, v := range b.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	for k, v := range b.FrontendAttrs {
		attrs[k] = v
	}
	ents := b.Entitlements
	if b.Network == "host" && !slices.Contains(ents, "network.host") {
		ents = append(ents, "network.host")
	}
	opt := bkclient.SolveOpt{
		Frontend:            cmp.Or(b.Frontend, "dockerfile.v0"),
		FrontendAttrs:       attrs,
		LocalMounts:         map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		AllowedEntitlements: ents,
		Exports:             exports(b.Tag, b.Push),
	}
	if len(b.Secrets) > 0 {
		opt.Session = []session.Attachable{secretsprovider.FromMap(b.Secrets)}
	}
	if b.CacheTo != "" {
		opt.CacheExports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": b.CacheTo, "mode": "max"}}}
	}
	if b.CacheFrom != "" {
		opt.CacheImports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": b.CacheFrom}}}
	}
	return opt, nil
}

// LLBSolve is a build that sends BuildKit its own graph (LLB), as
// clients other than the Dockerfile frontend do.
type LLBSolve struct {
	Tag          string   // the exported image's name; no export when empty
	Push         bool     // as DockerfileBuild.Push
	Entitlements []string // "network.host", "security.insecure"
}

// SolveLLB marshals st and has BuildKit build it.
func (k *BuildKit) SolveLLB(ctx context.Context, st llb.State, s LLBSolve) (BuildResult, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return BuildResult{}, fmt.Errorf("marshal LLB: %w", err)
	}
	return k.solve(ctx, def, bkSolveOpt(s), s.Tag, s.Push)
}

func bkSolveOpt(s LLBSolve) bkclient.SolveOpt {
	return bkclient.SolveOpt{AllowedEntitlements: s.Entitlements, Exports: exports(s.Tag, s.Push)}
}

// RunOnImage is the LLB of `RUN cmd` on ref (found in dockerd's store
// first, as the docker driver does), with the run's options (llb.Network,
// llb.Security; no network when none is given).
func RunOnImage(ref, cmd string, opts ...llb.RunOption) llb.State {
	all := append([]llb.RunOption{llb.Shlex(cmd), llb.Network(llb.NetModeNone)}, opts...)
	return llb.Image(ref, llb.ResolveModePreferLocal).Run(all...).Root()
}

func exports(tag string, push bool) []bkclient.ExportEntry {
	if tag == "" {
		return nil
	}
	attrs := map[string]string{"name": tag}
	if push {
		attrs["push"] = "true"
	}
	return []bkclient.ExportEntry{{Type: MobyExporter, Attrs: attrs}}
}

// solve runs one solve, collecting its progress, and pushes tag afterwards
// when asked: dockerd 20.10's moby exporter ignores push=true, so buildx
// pushes through the Engine API (a second push on Engine 29, where the
// exporter pushed already, finds every blob there).
func (k *BuildKit) solve(ctx context.Context, def *llb.Definition, opt bkclient.SolveOpt, tag string, push bool) (BuildResult, error) {
	ch := make(chan *bkclient.SolveStatus)
	var log strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeProgress(&log, ch)
	}()
	resp, err := k.Client.Solve(ctx, def, opt, ch) // closes ch
	<-done
	res := BuildResult{Response: resp, Log: log.String()}
	if err != nil {
		return res, fmt.Errorf("solve: %w", err)
	}
	if push {
		if err := k.pushImage(ctx, tag, &log); err != nil {
			res.Log = log.String()
			return res, err
		}
		res.Log = log.String()
	}
	return res, nil
}

// pushImage is buildx's pushWithMoby: the Engine API's push, its stream
// read to the end, an error in it returned.
func (k *BuildKit) pushImage(ctx context.Context, tag string, log io.Writer) error {
	// The bed's registry takes anyone: an empty auth config, base64 of "{}".
	rc, err := k.Docker.ImagePush(ctx, tag, image.PushOptions{RegistryAuth: "e30="})
	if err != nil {
		return fmt.Errorf("push %s: %w", tag, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, log, 0, false, nil); err != nil {
		return fmt.Errorf("push %s: %w", tag, err)
	}
	return nil
}

// writeProgress renders BuildKit's progress as text: each step when it
// starts, finishes or fails, and its output.
func writeProgress(w *strings.Builder, ch <-chan *bkclient.SolveStatus) {
	names := map[string]string{}
	seen := map[string]bool{}
	for st := range ch {
		for _, v := range st.Vertexes {
			d := v.Digest.String()
			names[d] = v.Name
			switch {
			case v.Error != "":
				fmt.Fprintf(w, "ERROR %s: %s\n", v.Name, v.Error)
			case v.Completed != nil && !seen[d+"done"]:
				seen[d+"done"] = true
				state := "DONE"
				if v.Cached {
					state = "CACHED"
				}
				fmt.Fprintf(w, "%s %s\n", state, v.Name)
			case v.Started != nil && !seen[d]:
				seen[d] = true
				fmt.Fprintf(w, "START %s\n", v.Name)
			}
		}
		for _, l := range st.Logs {
			for line := range strings.Lines(string(l.Data)) {
				fmt.Fprintf(w, "LOG %s: %s", names[l.Vertex.String()], ensureNewline(line))
			}
		}
		for _, warn := range st.Warnings {
			fmt.Fprintf(w, "WARN %s\n", warn.Short)
		}
	}
}

func ensureNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
