package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// ownerJobs is how many tenant CI jobs run at once in the owners
// measurement: the load under which owner lookups with a fixed 5 s
// timeout turned 0.7–2% of tenant requests into 502s.
const ownerJobs = 64

// ownerPolicy makes the bench's own caller (root) a tenant owning by uid,
// allowed everything but other owners' objects: every request on an
// existing object needs an owner lookup.
const ownerPolicy = `p, uid:0, *, **, allow
p, uid:0, tenant, uid, allow
p, uid:0, owner, other, deny
`

// owners runs ownerJobs tenant jobs at once, each the life of a container
// as CI drives it (create, start, two attached execs, inspects, kill, wait,
// remove), straight at dockerd and through a dockgate of its own whose
// policy makes the caller a tenant. It reports the 502s dockgate answered
// and the latency of the requests that need an owner lookup.
func (b *bench) owners(ctx context.Context) ([]row, error) {
	rounds := max(1, b.cfg.rounds/2)
	logf("owner lookups: %d tenant jobs at once, %d each", ownerJobs, rounds)
	dir := filepath.Join(b.dir, "owners")
	pdir := filepath.Join(dir, "policy")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pdir, "tenant.csv"), []byte(ownerPolicy), 0o644); err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	gate, err := testbed.StartDockgate(startCtx, b.bin, filepath.Join(dir, "g"), b.dockerd, "--policy", pdir,
		// One uid stands for 64 jobs here: the per-caller share is not
		// what this row measures.
		"--max-connections-per-caller", "1024")
	cancel()
	if err != nil {
		return nil, fmt.Errorf("tenant dockgate: %w", err)
	}
	defer gate.Stop()

	direct := runOwnerJobs(ctx, b.dockerd, rounds)
	proxied := runOwnerJobs(ctx, gate.Host, rounds)
	recs, err := gate.AuditRecords()
	if err != nil {
		return nil, fmt.Errorf("tenant dockgate's audit log: %w", err)
	}
	bad, lookups := 0, 0
	for _, rec := range recs {
		if st, _ := rec["status"].(float64); st == 502 {
			bad++
		}
		if facts, _ := rec["facts"].([]any); slices.ContainsFunc(facts, func(f any) bool {
			m, _ := f.(map[string]any)
			return m["kind"] == "owner"
		}) {
			lookups++
		}
	}
	name := fmt.Sprintf("tenant requests, %d jobs at once", ownerJobs)
	errs := errors.Join(direct.err, proxied.err)
	count := row{Name: name + ": 502s", Unit: "count", Dockgate: float64(bad)}
	if proxied.err != nil {
		count.Error = proxied.err.Error()
	}
	if lookups == 0 {
		count.Error = "no request carried an owner fact: the policy made no tenant"
	}
	logf("owner lookups: %d requests with an owner fact, %d answered 502", lookups, bad)
	return []row{
		withTarget(count, "= 0", bad == 0),
		latency(name+" p50", percentile(direct.lats, 0.50), percentile(proxied.lats, 0.50), errs),
		latency(name+" p99", percentile(direct.lats, 0.99), percentile(proxied.lats, 0.99), errs),
	}, nil
}

// ownerRun is what one side's jobs did: the latencies of the requests that
// name an existing container or exec, and the first failure.
type ownerRun struct {
	lats []time.Duration
	err  error
}

func runOwnerJobs(ctx context.Context, host string, rounds int) ownerRun {
	var (
		mu  sync.Mutex
		run ownerRun
		wg  sync.WaitGroup
	)
	for i := range ownerJobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lats []time.Duration
			err := func() error {
				c, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
				if err != nil {
					return err
				}
				defer c.Close()
				for range rounds {
					if err := ownerJob(ctx, c, &lats); err != nil {
						return fmt.Errorf("job %d: %w", i, err)
					}
				}
				return nil
			}()
			mu.Lock()
			defer mu.Unlock()
			run.lats = append(run.lats, lats...)
			if run.err == nil {
				run.err = err
			}
		}()
	}
	wg.Wait()
	return run
}

// ownerJob is one container's life; the requests that need an owner
// lookup are timed into lats (wait is not: it lasts as long as the
// container).
func ownerJob(ctx context.Context, c *client.Client, lats *[]time.Duration) error {
	timed := func(op func() error) error {
		t0 := time.Now()
		err := op()
		if err == nil {
			*lats = append(*lats, time.Since(t0))
		}
		return err
	}
	resp, err := c.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"sleep", "600"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	id := resp.ID
	defer c.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true})
	if err := timed(func() error { return c.ContainerStart(ctx, id, container.StartOptions{}) }); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	for range 2 {
		var execID string
		if err := timed(func() error {
			ex, err := c.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true})
			execID = ex.ID
			return err
		}); err != nil {
			return fmt.Errorf("exec create: %w", err)
		}
		if err := timed(func() error {
			hr, err := c.ContainerExecAttach(ctx, execID, container.ExecAttachOptions{})
			if err != nil {
				return err
			}
			defer hr.Close()
			_, err = io.Copy(io.Discard, hr.Reader)
			return err
		}); err != nil {
			return fmt.Errorf("exec start: %w", err)
		}
		if err := timed(func() error { _, err := c.ContainerExecInspect(ctx, execID); return err }); err != nil {
			return fmt.Errorf("exec inspect: %w", err)
		}
	}
	for range 3 {
		if err := timed(func() error { _, err := c.ContainerInspect(ctx, id); return err }); err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
	}
	if err := timed(func() error { return c.ContainerKill(ctx, id, "KILL") }); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	waitC, errC := c.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		return fmt.Errorf("wait: %w", err)
	}
	if err := timed(func() error { return c.ContainerRemove(ctx, id, container.RemoveOptions{}) }); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}
