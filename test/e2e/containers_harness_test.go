package e2e

// The harness for containers as callers (docs/containers.md), proved
// against dockerd directly: the in-container client (test/incontainer/dgcall)
// and the testcontainers flow with Ryuk on, our reaper (test/reaper) as
// its Ryuk. The tests of dockgate judging containers build on these.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/dockgate/dockgate/internal/syncbuf"
	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/testbed"
)

// harnessClientImage is the bed's busybox plus dgcall.
const harnessClientImage = "test/dgcall:1"

// harnessImage imports the client image once per bed.
func harnessImage(t *testing.T, ctx context.Context, c *client.Client, env *testbed.Env) string {
	t.Helper()
	if _, err := c.ImageInspect(ctx, harnessClientImage); err == nil {
		return harnessClientImage
	}
	start := time.Now()
	if err := testbed.ClientImage(ctx, env.DirectHost(), harnessClientImage); err != nil {
		t.Fatal(err)
	}
	t.Logf("built dgcall and imported %s in %v", harnessClientImage, time.Since(start).Round(time.Millisecond))
	return harnessClientImage
}

// TestHarnessDgcallInAContainer: dgcall in a busybox container with
// dockerd's socket bound at /var/run/docker.sock gets dockerd's answers.
func TestHarnessDgcallInAContainer(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img := harnessImage(t, ctx, c, env)
	host := env.DirectHost()
	spec := testbed.ContainerSpec{Image: img, Labels: map[string]string{"e2e.harness": "dgcall"}}

	a, r, err := testbed.Dgcall(ctx, host, host, spec, "GET", "/_ping")
	if err != nil || a.Status != 200 || a.Body != "OK" {
		t.Errorf("GET /_ping: %+v %v\n%v", a, err, r)
	}
	// The container that asks is in the list it gets (all=1: dockerd may
	// mark it running only after its process has asked).
	a, r, err = testbed.Dgcall(ctx, host, host, spec, "GET", "/v1.41/containers/json?all=1")
	if err != nil || a.Status != 200 || !strings.HasPrefix(a.Body, "[") || !strings.Contains(a.Body, `"e2e.harness":"dgcall"`) {
		t.Errorf("GET /v1.41/containers/json?all=1: %+v %v\n%v", a, err, r)
	}
	// Any answer is exit 0, a 404 too.
	a, r, err = testbed.Dgcall(ctx, host, host, spec, "GET", "/v1.41/containers/e2e-harness-no-such/json")
	if err != nil || a.Status != 404 {
		t.Errorf("GET of no container: %+v %v\n%v", a, err, r)
	}
	// A request held after connecting still gets its answer.
	start := time.Now()
	a, r, err = testbed.Dgcall(ctx, host, host, spec, "-hold", "1", "POST", "/v1.41/containers/create", `{"Image":"`+img+`","Labels":{"e2e.harness":"dgcall-created"}}`)
	if err != nil || a.Status != 201 || time.Since(start) < time.Second {
		t.Errorf("held create: %+v %v after %v\n%v", a, err, time.Since(start), r)
	}
	removeLabelled(t, ctx, c, "e2e.harness=dgcall-created")
	// No socket bound: no answer, exit 1.
	r, err = testbed.RunContainer(ctx, host, testbed.ContainerSpec{Image: img, Cmd: []string{testbed.DgcallInside, "GET", "/_ping"}})
	if err != nil || r.Code != 1 || !strings.Contains(r.Stderr, "connect") {
		t.Errorf("dgcall without a socket: %v %v", r, err)
	}
}

func removeLabelled(t *testing.T, ctx context.Context, c *client.Client, label string) {
	t.Helper()
	cs, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		t.Errorf("list containers %s: %v", label, err)
		return
	}
	for _, ct := range cs {
		if err := c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %.12s: %v", ct.ID, err)
		}
	}
}

// harnessReaperSubnet is the network testcontainers-go attaches its Ryuk
// to on a dockerd without a default bridge (reaper_default), made by the
// test on a subnet per engine: the engines' beds run at once, and two
// bridges of one subnet would route the host's connections to the Ryuk's
// mapped port (through docker-proxy) to either.
//
// The gateway is named too: dockerd 20.10 shows a network's gateway only
// when it was given, and testcontainers-go, which finds itself in a
// container (/.dockerenv), dials the Ryuk's port on that gateway; without
// one it falls back to this machine's default route, where nothing
// listens.
var harnessReaperSubnet = map[string][2]string{
	testbed.EngineDebian:  {"10.199.41.0/24", "10.199.41.1"},
	testbed.EngineCurrent: {"10.199.42.0/24", "10.199.42.1"},
}

// TestHarnessTestcontainersReaperRemovesWhatWasLeft: the testcontainers
// flow with Ryuk on, our reaper tagged as testcontainers-go's Ryuk image,
// run straight against dockerd: it starts its container and exits without
// terminating it; the reaper removes it after the reconnection timeout,
// then exits and is removed (AutoRemove).
func TestHarnessTestcontainersReaperRemovesWhatWasLeft(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()

	start := time.Now()
	if err := testbed.ReaperImage(ctx, env.DirectHost(), clientflows.RyukImage); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the reaper and imported it as %s in %v", clientflows.RyukImage, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if _, err := c.ImageRemove(context.Background(), clientflows.RyukImage, dockerimage.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", clientflows.RyukImage, err)
		}
	})
	harnessReaperNetwork(t, ctx, c, env.Engine)
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })

	u := tnNewUser(t, env.DirectHost(), 0)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(u.home, "flow")
	if err := copyExecutable(self, bin); err != nil {
		t.Fatal(err)
	}
	const reconnect = 2 * time.Second
	r := u.runProg(clientTimeout, clientflows.TestcontainersRyukRunEnv(env.Image, clientflows.RyukOptions{Leave: true, Reconnection: reconnect}), bin)
	exited := time.Now()
	if r.code != 0 {
		t.Fatalf("the flow: %v", r)
	}
	id := harnessField(r.stdout, "container")
	session := harnessField(r.stdout, "session")
	if id == "" || session == "" || !strings.Contains(r.stdout, "running: true") {
		t.Fatalf("the flow's transcript names no container or session:\n%s", r.stdout)
	}
	t.Logf("the flow ran in %v", exited.Sub(start).Round(time.Millisecond))

	// The reaper testcontainers-go started for the session; its log is
	// kept for a failure, since AutoRemove takes it with the container.
	reapers, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", "org.testcontainers.ryuk=true"), filters.Arg("label", "org.testcontainers.sessionId="+session))})
	if err != nil {
		t.Fatal(err)
	}
	var reaperLog harnessLog
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, rp := range reapers {
		if rp.Image != clientflows.RyukImage {
			t.Errorf("the session's Ryuk runs %s, not %s", rp.Image, clientflows.RyukImage)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			reaperLog.follow(ctx, c, rp.ID)
		}()
	}
	if len(reapers) != 1 {
		t.Errorf("%d Ryuk containers for session %s (already gone: the reaper ran before the flow's exit was seen?)", len(reapers), session)
	}

	gone := func(id string) bool {
		_, err := c.ContainerInspect(ctx, id)
		return client.IsErrNotFound(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !gone(id) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if !gone(id) {
		t.Fatalf("the flow's container %.12s is still there %v after the flow exited; the reaper's log:\n%s", id, time.Since(exited).Round(time.Second), reaperLog.String())
	}
	removedAfter := time.Since(exited)
	if removedAfter < reconnect {
		t.Errorf("the container was removed %v after the flow exited, before the reconnection timeout %v", removedAfter, reconnect)
	}
	for _, rp := range reapers {
		for !gone(rp.ID) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if !gone(rp.ID) {
			t.Errorf("the reaper %.12s did not exit and go (AutoRemove); its log:\n%s", rp.ID, reaperLog.String())
		}
	}
	wg.Wait()
	log := reaperLog.String()
	for _, want := range []string{"Started", "will remove what matches", "removed container " + id[:12], "exiting"} {
		if !strings.Contains(log, want) {
			t.Errorf("the reaper's log lacks %q:\n%s", want, log)
		}
	}
	t.Logf("removed %v after the flow exited (reconnection timeout %v); the reaper's log:\n%s", removedAfter.Round(time.Millisecond), reconnect, log)
}

// harnessReaperNetwork makes reaper_default on this engine's subnet
// unless it is there, and removes it after the test.
func harnessReaperNetwork(t *testing.T, ctx context.Context, c *client.Client, engine string) {
	t.Helper()
	const name = "reaper_default"
	if _, err := c.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		return
	}
	created, err := c.NetworkCreate(ctx, name, network.CreateOptions{
		Driver:     "bridge",
		Attachable: true,
		IPAM:       &network.IPAM{Config: []network.IPAMConfig{{Subnet: harnessReaperSubnet[engine][0], Gateway: harnessReaperSubnet[engine][1]}}},
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.NetworkRemove(context.Background(), created.ID); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("remove %s: %v", name, err)
		}
	})
}

var harnessFieldRE = regexp.MustCompile(`(?m)^(\w+): (\S+)$`)

// harnessField is the value of a "name: value" line of a transcript.
func harnessField(out, name string) string {
	for _, m := range harnessFieldRE.FindAllStringSubmatch(out, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	return ""
}

// harnessLog follows a container's log to its end.
type harnessLog struct{ syncbuf.Buffer }

func (l *harnessLog) follow(ctx context.Context, c *client.Client, id string) {
	rc, err := c.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		fmt.Fprintf(l, "(logs of %.12s: %v)\n", id, err)
		return
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(l, l, rc); err != nil && ctx.Err() == nil {
		fmt.Fprintf(l, "(logs of %.12s: %v)\n", id, err)
	}
}
