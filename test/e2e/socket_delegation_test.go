package e2e

// A bind of dockerd's socket through dockgate is delegated
// (docs/containers.md): root, whom the policy allows everything, creates a
// container with -v /var/run/docker.sock:/var/run/docker.sock, and dockerd
// records dockgate's socket as its source, with the creator label; a CI job
// that may not bind a Docker socket is refused with the docker-socket fact.

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/test/testbed"
)

func TestDockerSocketDelegated(t *testing.T) {
	env := testbed.Shared(t)
	// The CI policy lets jobs delegate sockets; this job may not.
	g := azStartGate(t, env, azPolicy(t, false, "p, uid:"+strconv.Itoa(azUID)+", docker-socket, **, deny"))
	c := azDirect(t, env)
	name := "e2e-socket-delegated"
	t.Cleanup(func() { azRemoveContainers(t, c, name) })

	// As root through dockgate: the policy's "p, uid:0, *, **, allow".
	home := t.TempDir()
	ctx, cancel := azCtx()
	defer cancel()
	cli := azCLIPath
	if _, err := os.Stat(cli); err != nil {
		cli = testbed.RequireBinary(t, "docker")
	}
	cmd := exec.CommandContext(ctx, cli, "create", "--name", name, "--label", azLabel+"=socket",
		"-v", "/var/run/docker.sock:/var/run/docker.sock:ro", testbed.DefaultImage, "true")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_HOST=" + g.Host, "DOCKER_CLI_HINTS=false"}
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker create as root through dockgate: %v: %s", err, stderr.String())
	}

	// What dockerd recorded, asked directly.
	ictx, icancel := azCtx()
	defer icancel()
	info, err := c.ContainerInspect(ictx, name)
	if err != nil {
		t.Fatalf("inspect %s on dockerd: %v", name, err)
	}
	want := g.Socket + ":/var/run/docker.sock:ro"
	if !slices.Equal(info.HostConfig.Binds, []string{want}) {
		t.Errorf("dockerd recorded the binds %q, want dockgate's socket: %q", info.HostConfig.Binds, want)
	}
	for _, m := range info.Mounts {
		if m.Destination == "/var/run/docker.sock" && m.Source != g.Socket {
			t.Errorf("the container mounts %s at /var/run/docker.sock, want dockgate's socket %s", m.Source, g.Socket)
		}
	}
	if creator := info.Config.Labels[authz.CreatorLabel]; !strings.Contains(creator, `"uid:0"`) {
		t.Errorf("creator label %q, want root's subjects", creator)
	}
	rec := g.azRecord(t, "the delegated create", func(rec map[string]any) bool {
		return rec["action"] == "container.create" && rec["decision"] == "allow"
	})
	if rec != nil {
		rewrites, _ := rec["rewrites"].([]any)
		got := ""
		if len(rewrites) == 1 {
			got, _ = rewrites[0].(string)
		}
		if !strings.HasSuffix(got, " -> "+want) {
			t.Errorf("audit rewrites %v, want the bind given %s", rec["rewrites"], want)
		}
		found := false
		for _, f := range azFacts(rec) {
			found = found || f["kind"] == "docker-socket"
		}
		if !found {
			t.Errorf("audit facts %v, want a docker-socket fact", rec["facts"])
		}
	}

	// A CI job that may not delegate a Docker socket: refused by its own
	// fact.
	u := azNewUser(t, g.Host)
	since := time.Now()
	r := u.run("", nil, "create", "-v", "/var/run/docker.sock:/var/run/docker.sock", testbed.DefaultImage, "true")
	if r.code == 0 || !strings.Contains(r.stderr, azRefusalMessage+"docker-socket ") || !strings.Contains(r.stderr, "only ever delegated") {
		t.Errorf("want a refusal naming the docker-socket fact:\n%v", r)
	}
	if ev := azCreations(t, c, since); len(ev) > 0 {
		t.Errorf("dockerd created %v after the refusal", ev)
	}
}
