package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/test/testbed"
)

// tenantRatio is issue 19's target: a tenant's request that names an
// object takes at most this many times as long as root's same request.
const tenantRatio = 1.10

// rootPolicy lets root do everything, judged by a policy like the tenant
// gate's, so that the two gates differ only in the owner lookup.
const rootPolicy = "p, uid:0, *, **, allow\n"

// tenant measures what owning costs a request that names an object: GET
// /containers/{ref}/json through a gate whose policy lets root do
// everything and through one where root is a tenant (ownerPolicy), on the
// same container, which the tenant gate created so that the tenant owns
// it. The two gates alternate in rounds. By full ID the owner comes from
// the cache after the first request (labels never change after create;
// hammer's warm-up makes that first request); by name, which is what CI
// scripts use, the name comes from the name cache too once dockerd
// resolved it, while no event or forwarded request changed what it means
// (docs/tenancy.md).
func (b *bench) tenant(ctx context.Context) ([]row, error) {
	logf("tenant inspect vs root inspect")
	dir := filepath.Join(b.dir, "tenant")
	root, err := b.policyGate(ctx, filepath.Join(dir, "root"), rootPolicy)
	if err != nil {
		return nil, fmt.Errorf("root dockgate: %w", err)
	}
	defer root.Stop()
	tenant, err := b.policyGate(ctx, filepath.Join(dir, "tenant"), ownerPolicy)
	if err != nil {
		return nil, fmt.Errorf("tenant dockgate: %w", err)
	}
	defer tenant.Stop()

	tc, err := newSDK(ctx, tenant.Host)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	name := fmt.Sprintf("bench-tenant-%d", os.Getpid())
	resp, err := tc.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"true"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		return nil, fmt.Errorf("create through the tenant gate: %w", err)
	}
	defer b.direct.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})

	sockets := []string{root.Socket, tenant.Socket}
	var rows []row
	for _, ref := range []struct{ how, ref string }{{"by full ID", resp.ID}, {"by name (as CI names them)", name}} {
		for _, c := range []int{1, 4} {
			label := fmt.Sprintf("tenant inspect %s c=%d p50", ref.how, c)
			logf("%s", label)
			ts := alternate(b.cfg.rounds, b.cfg.duration, len(sockets), func(t *tally, side int, d time.Duration) {
				hammer(ctx, t, sockets[side], "/v1.41/containers/"+ref.ref+"/json", c, d)
			})
			rows = append(rows, tenantRow(label, &ts[0], &ts[1]))
		}
	}
	return rows, nil
}

// tenantRow compares the tenant's p50 with root's, as a ratio.
func tenantRow(name string, root, tenant *tally) row {
	r := versus(latency(name, percentile(root.lats, 0.50), percentile(tenant.lats, 0.50), errors.Join(root.err, tenant.err)), baseRoot)
	if r.Error == "" && r.Direct != nil && *r.Direct > 0 {
		r.Ratio = ptr(round(r.Dockgate / *r.Direct))
	}
	return atMostRatio(r, tenantRatio)
}

// policyGate starts a dockgate of its own in front of the bench's dockerd,
// judging by policy (one file).
func (b *bench) policyGate(ctx context.Context, dir, policy string) (*testbed.Dockgate, error) {
	pdir := filepath.Join(dir, "policy")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pdir, "bench.csv"), []byte(policy), 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return testbed.StartDockgate(ctx, b.bin, filepath.Join(dir, "g"), b.dockerd, "--policy", pdir)
}
