package clientflows

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TestcontainersEnv names the image when a program runs as the
// testcontainers-go flow (RunTestcontainersIfAsked). testcontainers-go
// reads DOCKER_HOST once per process, and dockgate knows a caller by its
// process's uid: the flow runs in a process of its own, started as the
// user with DOCKER_HOST set.
const TestcontainersEnv = "DOCKGATE_TESTCONTAINERS_FLOW"

// TestcontainersRunEnv is the environment that makes a program (one that
// calls RunTestcontainersIfAsked first) run the flow on image, with Ryuk
// off as CI runners that cannot mount the socket run it.
func TestcontainersRunEnv(image string) []string {
	return []string{TestcontainersEnv + "=" + image, "TESTCONTAINERS_RYUK_DISABLED=true"}
}

// RunTestcontainersIfAsked runs the flow (TestcontainersLeave when
// TestcontainersLeaveEnv asks) and exits when the environment asks for it
// (TestcontainersEnv), printing the transcript.
func RunTestcontainersIfAsked() {
	image := os.Getenv(TestcontainersEnv)
	if image == "" {
		return
	}
	flow := Testcontainers
	if os.Getenv(TestcontainersLeaveEnv) == "1" {
		flow = TestcontainersLeave
	}
	out, err := flow(image)
	fmt.Print(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Testcontainers is what a Go test suite does with testcontainers-go:
// start a container and wait for its log line and an exec, copy a file in
// and out, exec, read the logs, terminate.
func Testcontainers(image string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var b strings.Builder
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      image,
			Cmd:        []string{"sh", "-c", "echo started; exec sleep 300"},
			Labels:     map[string]string{"e2e.matrix": "testcontainers"},
			WaitingFor: wait.ForAll(wait.ForLog("started"), wait.ForExec([]string{"true"})),
		},
		Started: true,
	})
	if err != nil {
		return b.String(), fmt.Errorf("start: %w", err)
	}
	defer c.Terminate(context.Background())
	state, err := c.State(ctx)
	if err != nil {
		return b.String(), fmt.Errorf("state: %w", err)
	}
	fmt.Fprintf(&b, "running: %v\n", state.Running)
	if err := c.CopyToContainer(ctx, []byte("hello from testcontainers\n"), "/tmp/hello.txt", 0o644); err != nil {
		return b.String(), fmt.Errorf("copy to: %w", err)
	}
	rc, err := c.CopyFileFromContainer(ctx, "/tmp/hello.txt")
	if err != nil {
		return b.String(), fmt.Errorf("copy from: %w", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return b.String(), fmt.Errorf("copy from: %w", err)
	}
	fmt.Fprintf(&b, "copied back: %q\n", got)
	code, r, err := c.Exec(ctx, []string{"sh", "-c", "cat /tmp/hello.txt; echo to-err >&2; exit 2"}, tcexec.Multiplexed())
	if err != nil {
		return b.String(), fmt.Errorf("exec: %w", err)
	}
	out, _ := io.ReadAll(r)
	fmt.Fprintf(&b, "exec: exit %d: %q\n", code, out)
	logs, err := c.Logs(ctx)
	if err != nil {
		return b.String(), fmt.Errorf("logs: %w", err)
	}
	l, _ := io.ReadAll(logs)
	logs.Close()
	fmt.Fprintf(&b, "logs: %q\n", l)
	if err := c.Terminate(ctx); err != nil {
		return b.String(), fmt.Errorf("terminate: %w", err)
	}
	fmt.Fprintln(&b, "terminated")
	return b.String(), nil
}
