package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/dockgate/dockgate/test/signing"
	"github.com/dockgate/dockgate/test/testbed"
)

// The signatures rows: what the signature fact costs a container create
// (docs/supply-chain.md). Three dockgates of their own stand before the
// bed's dockerd, with an image pulled from a real registry (Debian's
// docker-registry, started here) and signed there as cosign signs:
//
//   - plain: a policy with no signature row, so nothing is looked up;
//   - cached: the same policy plus a row requiring the key, so that every
//     create is judged by the image's RepoDigest, verified once and then
//     answered from the cache;
//   - cold: the same, with --signature-cache-size 0, so that every create
//     asks the registry for the signatures again.
//
// The rows are the time each adds to plain's create, the three taking
// turns request by request: of a create dockerd answers at once with 409 (the name is
// taken), which dockgate judges in full, and of a real create, whose
// milliseconds of dockerd's work and their noise are the same on every
// side. The target, on the first: a cached verification adds at most 1 ms.

const sigPlainPolicy = "p, uid:0, *, **, allow\n"

// sigPolicy requires root's images to be signed by the key "release":
// every other signature value is refused, so that a create that is not
// verified fails the measurement rather than measuring something else.
const sigPolicy = `p, uid:0, endpoint, *, allow
p, uid:0, image, **, allow
p, uid:0, signature, key:release, allow
`

func (b *bench) signatures(ctx context.Context) ([]row, error) {
	logf("signatures: a registry, a signed image, three dockgates")
	dir := filepath.Join(b.dir, "signatures")
	reg, err := testbed.StartRegistry(ctx, filepath.Join(dir, "registry"))
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	defer reg.Stop()
	ref := reg.Addr + "/bench/signed:1"
	if err := b.direct.ImageTag(ctx, image, ref); err != nil {
		return nil, err
	}
	defer b.direct.ImageRemove(context.Background(), ref, dimage.RemoveOptions{})
	digest, err := pushForDigest(ctx, b.direct, ref)
	if err != nil {
		return nil, err
	}
	key, err := signing.GenerateKey(filepath.Join(dir, "keys"), "release")
	if err != nil {
		return nil, err
	}
	if err := signing.SignCosign(ctx, strings.TrimSuffix(ref, ":1")+"@"+digest, key); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	gates := []struct {
		name, policy string
		args         []string
	}{
		{"plain", sigPlainPolicy, nil},
		{"cached", sigPolicy, nil},
		{"cold", sigPolicy, []string{"--signature-cache-size", "0"}},
	}
	clients := make([]*client.Client, len(gates))
	for i, g := range gates {
		pdir := filepath.Join(dir, g.name, "policy")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(pdir, "bench.csv"), []byte(g.policy), 0o644); err != nil {
			return nil, err
		}
		if g.policy == sigPolicy {
			if err := signing.WritePublicKey(filepath.Join(pdir, "keys"), "release", key.Public()); err != nil {
				return nil, err
			}
		}
		startCtx, cancel := context.WithTimeout(ctx, time.Minute)
		gate, err := testbed.StartDockgate(startCtx, b.bin, filepath.Join(dir, g.name, "g"), b.dockerd, append([]string{"--policy", pdir}, g.args...)...)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s dockgate: %w", g.name, err)
		}
		defer gate.Stop()
		if clients[i], err = newSDK(ctx, gate.Host); err != nil {
			return nil, err
		}
		defer clients[i].Close()
	}

	// A create dockerd answers 409 (the name is taken) is judged by
	// dockgate exactly as any create of the image, signature included, and
	// costs dockerd little: the time dockgate adds is not lost in the
	// milliseconds, and their noise, of making a container.
	taken, err := b.direct.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: []string{"true"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "bench-signature-taken")
	if err != nil {
		return nil, fmt.Errorf("create the container whose name is taken: %w", err)
	}
	defer b.direct.ContainerRemove(context.Background(), taken.ID, container.RemoveOptions{Force: true})

	var rows []row
	for _, m := range []struct{ what, name string }{
		{"container create judged, answered 409 by dockerd", "bench-signature-taken"},
		{"container create", ""},
	} {
		logf("signatures: %s, through each", m.what)
		ts := timeCreates(ctx, clients, ref, m.name, time.Duration(b.cfg.rounds)*b.cfg.duration)
		plain, cached, cold := &ts[0], &ts[1], &ts[2]
		errCached, errCold := errors.Join(plain.err, cached.err), errors.Join(plain.err, cold.err)
		p50 := latency(m.what+" p50, signature from the cache (vs no signature row)", percentile(plain.lats, 0.50), percentile(cached.lats, 0.50), errCached)
		if m.name != "" {
			p50 = withTarget(p50, "≤ +1000 µs", p50.Added != nil && *p50.Added <= 1000)
		}
		rows = append(rows, p50,
			latency(m.what+" p99, signature from the cache (vs no signature row)", percentile(plain.lats, 0.99), percentile(cached.lats, 0.99), errCached),
			latency(m.what+" p50, signature verified cold in the registry (vs no signature row)", percentile(plain.lats, 0.50), percentile(cold.lats, 0.50), errCold))
	}
	return rows, nil
}

// timeCreates creates (and removes, untimed) containers of ref through
// each client in turn, one create each per turn, for d per client, and
// returns each client's latencies. Taking turns request by request rather
// than in slices of time puts every side under the same load of a shared
// machine. With a name that is taken, every create must be answered 409
// Conflict by dockerd (not refused by dockgate).
func timeCreates(ctx context.Context, clients []*client.Client, ref, name string, d time.Duration) []tally {
	create := func(c *client.Client) (time.Duration, error) {
		start := time.Now()
		resp, err := c.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: []string{"true"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, name)
		lat := time.Since(start)
		if name != "" {
			if err == nil {
				c.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
				return 0, fmt.Errorf("create %s named %s: made a container, want 409 (the name is taken)", ref, name)
			}
			if !errdefs.IsConflict(err) {
				return 0, fmt.Errorf("create %s named %s: %w, want 409 (the name is taken)", ref, name, err)
			}
			return lat, nil
		}
		if err != nil {
			return 0, fmt.Errorf("create %s: %w", ref, err)
		}
		return lat, c.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	}
	ts := make([]tally, len(clients))
	// Warm-up: the cached side's first lookup, and a failing side fails
	// fast.
	for i, c := range clients {
		if _, err := create(c); err != nil {
			ts[i].fail(err)
			return ts
		}
	}
	lats := make([][]time.Duration, len(clients))
	start := time.Now()
	for time.Since(start) < d*time.Duration(len(clients)) || len(lats[0]) == 0 {
		for i, c := range clients {
			if err := ctx.Err(); err != nil {
				ts[i].fail(err)
				return ts
			}
			lat, err := create(c)
			if err != nil {
				ts[i].fail(err)
				return ts
			}
			lats[i] = append(lats[i], lat)
		}
	}
	for i := range ts {
		ts[i].add(len(lats[i]), time.Since(start), lats[i])
	}
	return ts
}

// pushForDigest pushes ref from dockerd to its registry and returns the
// digest the registry holds it as (its RepoDigest).
func pushForDigest(ctx context.Context, c *client.Client, ref string) (string, error) {
	rc, err := c.ImagePush(ctx, ref, dimage.PushOptions{RegistryAuth: base64.URLEncoding.EncodeToString([]byte("{}"))})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			rc.Close()
			return "", fmt.Errorf("push %s: %w", ref, err)
		}
		if msg.Error != "" {
			rc.Close()
			return "", fmt.Errorf("push %s: %s", ref, msg.Error)
		}
	}
	rc.Close()
	im, err := c.ImageInspect(ctx, ref)
	if err != nil {
		return "", err
	}
	repo := strings.TrimSuffix(ref, ":1")
	for _, rd := range im.RepoDigests {
		if d, ok := strings.CutPrefix(rd, repo+"@"); ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("%s has no RepoDigest of %s after the push: %v", ref, repo, im.RepoDigests)
}
