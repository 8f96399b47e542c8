package clientflows

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// RyukImage is the image testcontainers-go runs as its Ryuk. v0.45 has no
// setting that changes it (TESTCONTAINERS_RYUK_CONTAINER_IMAGE is
// testcontainers-java's; v0.45's config reads no such variable), and it
// pulls it only when the daemon lacks it: a test tags the reaper image
// (testbed.ReaperImage) with this name on the daemon beforehand.
var RyukImage = testcontainers.ReaperDefaultImage

// The environment of the flow with Ryuk on, besides TestcontainersEnv.
const (
	// TestcontainersLeaveEnv=1 makes the flow start its container and exit
	// without terminating it: the reaper's to remove.
	TestcontainersLeaveEnv = "DOCKGATE_TESTCONTAINERS_LEAVE"
	// RyukLabel is set on the flow's container when Ryuk is on, so that a
	// test finds it without the transcript.
	RyukLabel = "e2e.ryuk"
)

// RyukOptions shape the flow with Ryuk on.
type RyukOptions struct {
	// SocketOverride is TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE: the host
	// path testcontainers-go binds at /var/run/docker.sock in the Ryuk
	// container. Empty: the path of DOCKER_HOST (unix://PATH), which is
	// what testcontainers-go binds then, dockgate's socket for a tenant.
	SocketOverride string
	// Reconnection is RYUK_RECONNECTION_TIMEOUT, which testcontainers-go
	// passes on to the Ryuk container: how long the reaper waits after the
	// flow's connection closed. Zero: testcontainers' 10s.
	Reconnection time.Duration
	// HostOverride is TESTCONTAINERS_HOST_OVERRIDE: the host on which
	// testcontainers-go dials mapped ports, the Ryuk's first. Empty: it
	// infers it, and on a machine that is itself a container (/.dockerenv)
	// it takes the gateway of its default network (reaper_default on a
	// bed), else the machine's default route. "localhost" is right for any
	// bed: dockerd and its docker-proxy run on this host.
	HostOverride string
	// Privileged is TESTCONTAINERS_RYUK_CONTAINER_PRIVILEGED.
	Privileged bool
	// Leave: the flow starts its container and exits without terminating
	// it (TestcontainersLeaveEnv), so a test can see the reaper remove it.
	Leave bool
}

// TestcontainersRyukRunEnv is the environment that makes a program (one
// that calls RunTestcontainersIfAsked first) run the flow on image with
// Ryuk on. The Ryuk image must be on the daemon as RyukImage.
func TestcontainersRyukRunEnv(image string, o RyukOptions) []string {
	env := []string{TestcontainersEnv + "=" + image, "TESTCONTAINERS_RYUK_DISABLED=false"}
	if o.SocketOverride != "" {
		env = append(env, "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE="+o.SocketOverride)
	}
	if o.Reconnection > 0 {
		env = append(env, "RYUK_RECONNECTION_TIMEOUT="+o.Reconnection.String())
	}
	if o.HostOverride != "" {
		env = append(env, "TESTCONTAINERS_HOST_OVERRIDE="+o.HostOverride)
	}
	if o.Privileged {
		env = append(env, "TESTCONTAINERS_RYUK_CONTAINER_PRIVILEGED=true")
	}
	if o.Leave {
		env = append(env, TestcontainersLeaveEnv+"=1")
	}
	return env
}

// TestcontainersLeave starts a container as the flow does and returns
// without terminating it, so that only the reaper can remove it once this
// process is gone. The transcript names the container and the session,
// for the test to look for (unlike Testcontainers', it is not compared
// between runs).
func TestcontainersLeave(image string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var b strings.Builder
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      image,
			Cmd:        []string{"sh", "-c", "echo started; exec sleep 300"},
			Labels:     map[string]string{"e2e.matrix": "testcontainers", RyukLabel: "leave"},
			WaitingFor: wait.ForLog("started"),
		},
		Started: true,
	})
	if err != nil {
		// A container that was created is still the reaper's to remove.
		return b.String(), fmt.Errorf("start: %w", err)
	}
	state, err := c.State(ctx)
	if err != nil {
		return b.String(), fmt.Errorf("state: %w", err)
	}
	fmt.Fprintf(&b, "running: %v\ncontainer: %s\nsession: %s\nleft for the reaper\n", state.Running, c.GetContainerID(), testcontainers.SessionID())
	return b.String(), nil
}
