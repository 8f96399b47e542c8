package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	dimage "github.com/docker/docker/api/types/image"

	"github.com/dockgate/dockgate/test/clientflows"
)

// bkBuilds is how many rounds of builds there are, one build per side in
// each. A multiple of three, so that each side builds first, second and
// third in a round equally often.
const bkBuilds = 9

// bkDockerfile is a small multi-stage build. Its RUN steps read the build
// arg N, which every build sets anew, so that each build runs them instead
// of finding them all in the cache: a build of nothing but cache hits
// would time the session's setup alone.
const bkDockerfile = `FROM ` + image + ` AS base
ARG N
RUN echo "$N" > /n

FROM base AS final
COPY ctx.txt /ctx.txt
RUN cat /n /ctx.txt > /built
`

// buildkit times BuildKit builds of bkDockerfile with the BuildKit Go
// client (over /grpc and /session, as buildx's docker driver) and with
// Debian's 20.10 CLI (DOCKER_BUILDKIT=1: /session and /build?version=2),
// directly, through dockgate and through the bare relay in copy mode, in
// bkBuilds rounds of one build each. The order within a round turns with
// each round: in a fixed order dockgate's builds always came right after a
// direct one, and anything a build leaves dockerd to finish (containerd's
// unpacking, BuildKit's cache bookkeeping) fell on one side only. Each side's
// time is the median of its builds, and its ratio to direct the median of
// the rounds' ratios, as for the streams: the two builds of a round are
// seconds apart, the medians of all builds up to a minute. The target is the
// issue's: through dockgate at most 1.1× direct.
func (b *bench) buildkit(ctx context.Context) ([]row, error) {
	dir, err := os.MkdirTemp(b.dir, "buildkit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for name, content := range map[string]string{"Dockerfile": bkDockerfile, "ctx.txt": "from the context\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	relay, _, stopRelay, err := startRelay(ctx, b.dir, b.directSocket, "copy")
	if err != nil {
		return nil, err
	}
	defer stopRelay()
	const tag = "ci.local/bench-buildkit:1"
	defer b.direct.ImageRemove(context.Background(), tag, dimage.RemoveOptions{})

	sockets := []string{b.directSocket, b.proxySocket, relay}
	builds := 0
	nextArg := func() string { builds++; return strconv.Itoa(builds) }
	clients := []struct {
		name  string
		build func(ctx context.Context, socket string) error
	}{
		{"Go client (/grpc + /session)", func(ctx context.Context, socket string) error {
			bk, err := clientflows.DialBuildKit(ctx, socket)
			if err != nil {
				return err
			}
			defer bk.Close()
			res, err := bk.BuildDockerfile(ctx, clientflows.DockerfileBuild{ContextDir: dir, Tag: tag, BuildArgs: map[string]string{"N": nextArg()}})
			if err != nil {
				return fmt.Errorf("%w\n%s", err, res.Log)
			}
			return nil
		}},
		{"20.10 CLI (/session + /build?version=2)", func(ctx context.Context, socket string) error {
			if _, err := os.Stat(clientflows.OldCLI); err != nil {
				return fmt.Errorf("not installed: %s", clientflows.OldCLI)
			}
			run := clientflows.HostRunner("unix://"+socket, dir)
			r := clientflows.ClassicBuildKitBuild(ctx, run, clientflows.OldCLI, 5*time.Minute,
				"--network", "none", "--build-arg", "N="+nextArg(), "-t", tag, dir)
			if r.Code != 0 {
				return fmt.Errorf("%v", r)
			}
			return nil
		}},
	}
	var rows []row
	for _, c := range clients {
		name := "BuildKit multi-stage build, " + c.name
		logf("%s (%d rounds)", name, bkBuilds)
		// One build first, unmeasured: the first build of a daemon loads
		// its frontend and base image.
		if err := c.build(ctx, b.directSocket); err != nil {
			rows = append(rows, row{Name: name, Unit: "ms", Error: err.Error()})
			continue
		}
		var times [3][]time.Duration
		var errs [3][]error
		var gateShares, relayShares []float64
		sideNames := [3]string{"direct", "dockgate", "relay"}
		for round := range bkBuilds {
			var took [3]time.Duration
			var order []string
			for k := range sockets {
				side := (k + round) % len(sockets)
				order = append(order, sideNames[side])
				start := time.Now()
				if err := c.build(ctx, sockets[side]); err != nil {
					errs[side] = append(errs[side], err)
					continue
				}
				took[side] = time.Since(start)
				times[side] = append(times[side], took[side])
			}
			logf("  round %d (%v): direct %v, dockgate %v, relay %v", round+1, order,
				took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), took[2].Round(time.Millisecond))
			if took[0] > 0 && took[1] > 0 {
				gateShares = append(gateShares, float64(took[1])/float64(took[0]))
			}
			if took[0] > 0 && took[2] > 0 {
				relayShares = append(relayShares, float64(took[2])/float64(took[0]))
			}
		}
		d, g, r := medianDuration(times[0]), medianDuration(times[1]), medianDuration(times[2])
		gate := pairedShare(flowRow(name, d, g, errors.Join(append(errs[0], errs[1]...)...)), gateShares)
		rows = append(rows,
			withTarget(gate, "≤ 1.10×", gate.Ratio != nil && *gate.Ratio <= 1.10),
			pairedShare(flowRow(name+" bare relay (floor)", d, r, errors.Join(append(errs[0], errs[2]...)...)), relayShares))
	}
	return rows, nil
}
