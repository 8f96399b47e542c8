package e2e

// A tenant's everyday work through the Go SDK, as testcontainers and CI
// tools do it: with root held to the CI role (and made a tenant), the
// test's own SDK client is a tenant. Every step must work as it does
// against dockerd, and what it creates must be its own.

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/dockgate/dockgate/test/testbed"
)

func TestTenancySDKFlow(t *testing.T) {
	env := testbed.Shared(t)
	// Root is in role:ci here; role:ci owns by user.
	g := azStartGate(t, env, azPolicy(t, true))
	direct := azDirect(t, env)
	before := azContainers(t, direct)
	t.Cleanup(func() { azRemoveNew(t, direct, before) })
	const owner = "user:root"
	c, err := client.NewClientWithOpts(client.WithHost(g.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	labels := map[string]string{azLabel: "tenancy-sdk", "org.testcontainers": "true"}

	net, err := c.NetworkCreate(ctx, "e2e-tnsdk-net", network.CreateOptions{Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: "e2e-tnsdk-vol", Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tnCleanup(t, direct, []string{vol.Name, "e2e-tnsdk-anon"}, []string{net.ID}) })

	created, err := c.ContainerCreate(ctx,
		&container.Config{Image: testbed.DefaultImage, Cmd: []string{"sh", "-c", "echo hello > /data/f; echo started; exec sleep 60"}, Labels: labels},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol.Name, Target: "/data"}, {Type: mount.TypeVolume, Source: "e2e-tnsdk-anon", Target: "/anon"}}},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"e2e-tnsdk-net": {Aliases: []string{"db"}}}},
		nil, "e2e-tnsdk-db")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, "e2e-tnsdk-db", container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	// Its own objects, with their labels, by name and ID.
	ci, err := c.ContainerInspect(ctx, "e2e-tnsdk-db")
	if err != nil || ci.ID != created.ID || ci.Config.Labels[tnOwnerKey] != owner || ci.Config.Labels["org.testcontainers"] != "true" {
		t.Fatalf("inspect: %v, labels %v", err, ci.Config)
	}
	for _, v := range []string{vol.Name, "e2e-tnsdk-anon"} {
		vi, err := c.VolumeInspect(ctx, v)
		if err != nil || vi.Labels[tnOwnerKey] != owner {
			t.Errorf("volume %s: %v, labels %v", v, err, vi.Labels)
		}
	}
	if ni, err := c.NetworkInspect(ctx, "e2e-tnsdk-net", network.InspectOptions{}); err != nil || ni.Labels[tnOwnerKey] != owner {
		t.Errorf("network: %v, labels %v", err, ni.Labels)
	}

	// Lists with the client's own filters (testcontainers filters by label).
	list, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "org.testcontainers=true"), filters.Arg("name", "e2e-tnsdk-db"))})
	if err != nil || len(list) != 1 || list[0].ID != created.ID {
		t.Fatalf("list: %v %+v", err, list)
	}

	// exec attached, with its exit code; logs.
	ex, err := c.ContainerExecCreate(ctx, created.ID, container.ExecOptions{Cmd: []string{"sh", "-c", "cat /data/f; exit 3"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	hj, err := c.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	stdcopy.StdCopy(&out, &errOut, hj.Reader)
	hj.Close()
	if out.String() != "hello\n" {
		t.Errorf("exec output %q %q", out.String(), errOut.String())
	}
	if ei, err := c.ContainerExecInspect(ctx, ex.ID); err != nil || ei.ExitCode != 3 {
		t.Errorf("exec inspect: %v, exit %d", err, ei.ExitCode)
	}
	rc, err := c.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	stdcopy.StdCopy(&out, io.Discard, rc)
	rc.Close()
	if !strings.Contains(out.String(), "started") {
		t.Errorf("logs %q", out.String())
	}

	// Network connect and disconnect of its own container.
	if err := c.NetworkDisconnect(ctx, net.ID, "e2e-tnsdk-db", false); err != nil {
		t.Errorf("disconnect: %v", err)
	}
	if err := c.NetworkConnect(ctx, "e2e-tnsdk-net", created.ID[:12], nil); err != nil {
		t.Errorf("connect: %v", err)
	}

	// Stop, wait, remove with its anonymous volume; then the network and the
	// named volume.
	if err := c.ContainerStop(ctx, created.ID, container.StopOptions{Timeout: new(int)}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := c.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatalf("wait: %v", err)
	}
	if err := c.ContainerRemove(ctx, created.ID, container.RemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.NetworkRemove(ctx, net.ID); err != nil {
		t.Errorf("network remove: %v", err)
	}
	if err := c.VolumeRemove(ctx, vol.Name, false); err != nil {
		t.Errorf("volume remove: %v", err)
	}

	// Its events: its container's, in order.
	msgs, errs := c.Events(ctx, events.ListOptions{Since: start.Format(time.RFC3339Nano), Until: time.Now().Add(time.Second).Format(time.RFC3339Nano)})
	var seen []string
	for done := false; !done; {
		select {
		case m := <-msgs:
			if m.Actor.ID == created.ID {
				seen = append(seen, string(m.Action))
			} else if m.Type == events.ContainerEventType {
				t.Errorf("event of another container: %+v", m)
			}
		case err := <-errs:
			if err != nil && err != io.EOF {
				t.Fatalf("events: %v", err)
			}
			done = true
		}
	}
	if got := strings.Join(seen, " "); !strings.Contains(got, "create") || !strings.Contains(got, "start") || !strings.Contains(got, "destroy") {
		t.Errorf("events of its container: %s", got)
	}
}
