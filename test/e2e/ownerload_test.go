package e2e

// Owner lookups under load: a tenant's every request on
// an existing object makes dockgate ask dockerd whose it is. With 64 CI
// jobs at once, a lookup that dockerd answers late must not turn into a
// 502 for the job: the lookup is bounded by the request, retried once on a
// broken connection, and answered from the owner cache when the job names
// its objects by full ID.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// ownerLoadClients is how many tenant jobs run at once: the load under
// which 0.7–2% of requests got 502 with a fixed 5 s lookup timeout.
const ownerLoadClients = 64

func TestOwnerLookupsUnderLoad(t *testing.T) {
	// dockgate's owner lookups under load, not the engine's: once per run.
	testbed.OncePerRun(t)
	env := testbed.Shared(t)
	// Root is held to role:ci, a tenant owning by user: each client below
	// is a tenant job, and every request on its container needs its owner.
	// The 64 jobs all run as root here, where on a CI host they would be
	// many uids: the per-caller share must not be what this measures.
	g := azStartGate(t, env, azPolicy(t, true), "--max-connections-per-caller", "1024")
	direct := azDirect(t, env)
	before := azContainers(t, direct)
	t.Cleanup(func() { azRemoveNew(t, direct, before) })

	// Generous: this only detects a hang on a loaded 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	errs := make([]error, ownerLoadClients)
	var wg sync.WaitGroup
	for i := range ownerLoadClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half the jobs name their container as the docker CLI does
			// (by name: from the name cache once dockerd resolved it),
			// half as SDK tools do (by full ID: answered from the
			// cache).
			errs[i] = ownerLoadJob(ctx, g.Host, fmt.Sprintf("e2e-ownerload-%d", i), i%2 == 0)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("tenant jobs failed:\n%v", err)
	}

	// The audit trail is the count: every request of the jobs is there.
	recs, err := g.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var bad []string
	for _, rec := range recs {
		action, _ := rec["action"].(string)
		counts[action]++
		if st := azStatus(rec); st == 502 || st == 503 || st == 504 {
			bad = append(bad, fmt.Sprintf("%s %v: %d %v", action, rec["path"], st, rec["reason"]))
		}
	}
	t.Logf("requests by action: %v", counts)
	if len(bad) > 0 {
		t.Errorf("%d of %d requests failed upstream (want 0):\n%v", len(bad), len(recs), bad)
	}
	// The flow really ran through dockgate as a tenant: every container
	// request carried an owner fact.
	for _, action := range []string{"container.wait", "container.delete", "container.inspect", "container.kill", "exec.start", "exec.inspect"} {
		if counts[action] < ownerLoadClients {
			t.Errorf("%d %s requests on record, want at least %d", counts[action], action, ownerLoadClients)
		}
	}
	for _, rec := range recs {
		if rec["action"] != "container.wait" {
			continue
		}
		azCheckFacts(t, rec, "owner", "self", "allow")
		break
	}
}

// ownerLoadJob is one CI job's life of a container: create, start, two
// execs with their exit codes, inspects, kill, wait, remove — every step after
// create naming the container (by ID or name) and so looking its owner up.
func ownerLoadJob(ctx context.Context, host, name string, byName bool) error {
	c, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer c.Close()
	created, err := c.ContainerCreate(ctx,
		&container.Config{Image: testbed.DefaultImage, Cmd: []string{"sleep", "600"}, Labels: map[string]string{azLabel: "ownerload"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		return fmt.Errorf("%s: create: %w", name, err)
	}
	ref := created.ID
	if byName {
		ref = name
	}
	if err := c.ContainerStart(ctx, ref, container.StartOptions{}); err != nil {
		return fmt.Errorf("%s: start: %w", name, err)
	}
	for code := range 2 {
		ex, err := c.ContainerExecCreate(ctx, ref, container.ExecOptions{Cmd: []string{"sh", "-c", "exit " + strconv.Itoa(code+1)}})
		if err != nil {
			return fmt.Errorf("%s: exec create: %w", name, err)
		}
		// Attached, as `docker exec` runs it: the stream ends with the exec.
		hj, err := c.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
		if err != nil {
			return fmt.Errorf("%s: exec start: %w", name, err)
		}
		_, err = io.Copy(io.Discard, hj.Reader)
		hj.Close()
		if err != nil {
			return fmt.Errorf("%s: exec stream: %w", name, err)
		}
		// dockerd may close the stream a moment before it records the
		// exit.
		ei, err := c.ContainerExecInspect(ctx, ex.ID)
		for err == nil && ei.Running && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			ei, err = c.ContainerExecInspect(ctx, ex.ID)
		}
		if err != nil {
			return fmt.Errorf("%s: exec inspect: %w", name, err)
		}
		if ei.Running || ei.ExitCode != code+1 {
			return fmt.Errorf("%s: exec running %v, exit code %d, want %d", name, ei.Running, ei.ExitCode, code+1)
		}
	}
	for range 3 {
		ci, err := c.ContainerInspect(ctx, ref)
		if err != nil {
			return fmt.Errorf("%s: inspect: %w", name, err)
		}
		if ci.ID != created.ID {
			return fmt.Errorf("%s: inspect answered for %s, want %s", name, ci.ID, created.ID)
		}
	}
	// Killed rather than left to end on its own: on a loaded machine a
	// short sleep could end before the execs ran.
	if err := c.ContainerKill(ctx, ref, "KILL"); err != nil {
		return fmt.Errorf("%s: kill: %w", name, err)
	}
	waitC, errC := c.ContainerWait(ctx, ref, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.StatusCode != 137 {
			return fmt.Errorf("%s: exited %d, want 137 (killed)", name, w.StatusCode)
		}
	case err := <-errC:
		return fmt.Errorf("%s: wait: %w", name, err)
	}
	if err := c.ContainerRemove(ctx, ref, container.RemoveOptions{}); err != nil {
		return fmt.Errorf("%s: remove: %w", name, err)
	}
	return nil
}
