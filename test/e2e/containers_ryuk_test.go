package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/clientflows"
	"github.com/dockgate/dockgate/test/testbed"
)

// ryukOtherUID is a second CI job, whose containers the first job's Ryuk
// must neither see nor remove.
const ryukOtherUID = 65533

// TestTestcontainersRyukThroughDockgate: testcontainers-go runs through
// dockgate as a CI job under the CI example policy, with Ryuk on (our
// reaper as its image). Ryuk is given a Docker socket, which is
// dockgate's; from inside it acts for the job: once the job's process has
// ended it removes the job's container of the session, and the
// containers of the same session label that are not the job's (another
// job's, an administrator's) it neither sees nor removes.
func TestTestcontainersRyukThroughDockgate(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	if err := testbed.ReaperImage(ctx, env.DirectHost(), clientflows.RyukImage); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := c.ImageRemove(context.Background(), clientflows.RyukImage, dockerimage.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", clientflows.RyukImage, err)
		}
	})
	ryukRepo := "docker.io/" + clientflows.RyukImage[:strings.LastIndex(clientflows.RyukImage, ":")]
	g := azStartGate(t, env, azPolicy(t, false,
		"g, uid:"+strconv.Itoa(ryukOtherUID)+", role:ci",
		"p, uid:"+strconv.Itoa(ryukOtherUID)+", tenant, uid, allow",
		"p, role:ci, image, "+ryukRepo+":*, allow",
		"p, role:ci, local-image, "+ryukRepo+":*, allow"))
	job := tnNewUser(t, g.Host, azUID)
	other := tnNewUser(t, g.Host, ryukOtherUID)
	// The network testcontainers-go attaches Ryuk to, made by the job
	// through dockgate (so the job's), on this engine's own subnet: both
	// engines' beds may run at once.
	subnet := harnessReaperSubnet[env.Engine]
	if r := job.run("network", "create", "--subnet", subnet[0], "--gateway", subnet[1], "--label", azLabel+"=ryuk", "reaper_default"); r.code != 0 {
		t.Fatalf("the job creates reaper_default: %v", r)
	}
	t.Cleanup(func() {
		if err := c.NetworkRemove(context.Background(), "reaper_default"); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("remove reaper_default: %v", err)
		}
	})

	// After the network's cleanup is registered, so that it runs first.
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(job.home, "flow")
	if err := copyExecutable(self, bin); err != nil {
		t.Fatal(err)
	}
	// Long enough to plant the others' containers of the session before
	// Ryuk acts.
	const reconnect = 8 * time.Second
	r := job.runProg(clientTimeout, clientflows.TestcontainersRyukRunEnv(env.Image, clientflows.RyukOptions{Leave: true, Reconnection: reconnect, HostOverride: "localhost"}), bin)
	exited := time.Now()
	if r.code != 0 {
		t.Fatalf("the flow through dockgate: %v", r)
	}
	id, session := harnessField(r.stdout, "container"), harnessField(r.stdout, "session")
	if id == "" || session == "" {
		t.Fatalf("the flow's transcript names no container or session:\n%s", r.stdout)
	}
	// The labels Ryuk's filters match: all of the flow's container's
	// testcontainers labels.
	flowC, err := c.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var sessionLabels []string
	matched := map[string]string{}
	for k, v := range flowC.Config.Labels {
		if strings.HasPrefix(k, "org.testcontainers") {
			sessionLabels = append(sessionLabels, "--label", k+"="+v)
			matched[k] = v
		}
	}
	if matched["org.testcontainers.sessionId"] != session {
		t.Fatalf("the flow's container has no session label: %v", flowC.Config.Labels)
	}

	// The same session's labels on another job's container and on an
	// administrator's.
	or := other.run(append(append([]string{"run", "-d", "--network", "none"}, sessionLabels...), env.Image, "sleep", "300")...)
	if or.code != 0 {
		t.Fatalf("the other job's container: %v", or)
	}
	othersID := strings.TrimSpace(or.stdout)
	adminID, err := testbed.StartContainer(ctx, env.DirectHost(), testbed.ContainerSpec{Image: env.Image, Cmd: []string{"sleep", "300"}, Labels: matched})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(exited) > reconnect-time.Second {
		t.Logf("planting the others' containers took %v of the %v reconnection timeout", time.Since(exited), reconnect)
	}

	reapers, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", "org.testcontainers.ryuk=true"), filters.Arg("label", "org.testcontainers.sessionId="+session))})
	if err != nil {
		t.Fatal(err)
	}
	if len(reapers) != 1 {
		t.Fatalf("%d Ryuk containers for session %s", len(reapers), session)
	}
	ryuk := reapers[0]
	in, err := c.ContainerInspect(ctx, ryuk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(in.HostConfig.Binds, func(b string) bool { return strings.HasPrefix(b, g.Socket+":") }) ||
		slices.ContainsFunc(in.HostConfig.Binds, func(b string) bool { return strings.Contains(b, env.Dockerd.Socket) }) {
		t.Errorf("Ryuk was given %v, want dockgate's socket %s and never dockerd's", in.HostConfig.Binds, g.Socket)
	}
	if in.Config.Labels["io.dockgate.owner"] != azCaller {
		t.Errorf("Ryuk is not the job's: labels %v", in.Config.Labels)
	}
	var reaperLog harnessLog
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		reaperLog.follow(ctx, c, ryuk.ID)
	}()

	gone := func(id string) bool {
		_, err := c.ContainerInspect(ctx, id)
		return client.IsErrNotFound(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for !(gone(id) && gone(ryuk.ID)) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	if !gone(id) {
		t.Fatalf("the job's container %.12s is still there %v after the job ended; Ryuk's log:\n%s", id, time.Since(exited).Round(time.Second), reaperLog.String())
	}
	if !gone(ryuk.ID) {
		t.Errorf("Ryuk did not exit and go; its log:\n%s", reaperLog.String())
	}
	for what, cid := range map[string]string{"the other job's": othersID, "the administrator's": adminID} {
		if gone(cid) {
			t.Errorf("%s container of the same session was removed by the job's Ryuk; its log:\n%s", what, reaperLog.String())
		}
	}
	azRemoveContainers(t, c, othersID, adminID)

	// Ryuk's requests are on record as the job's container's.
	rec := g.azRecord(t, "Ryuk's removal of the job's container", func(rec map[string]any) bool {
		caller, _ := rec["caller"].(map[string]any)
		return rec["method"] == "DELETE" && strings.Contains(rec["path"].(string), id[:12]) && caller != nil && caller["acts_for"] == azCaller
	})
	if rec != nil && rec["decision"] != "allow" {
		t.Errorf("Ryuk's removal: %v", azJSON(rec))
	}
	t.Logf("Ryuk removed the job's container %v after the job ended (reconnection timeout %v); its log:\n%s", time.Since(exited).Round(time.Millisecond), reconnect, reaperLog.String())
}
