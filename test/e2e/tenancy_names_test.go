package e2e

// Container names through dockgate's name cache: a tenant's requests by
// name are resolved from what dockerd resolved the name to before, so a
// CI script that renames, removes and creates containers under the same
// name must still reach, at once, the container the name means now; and
// a name another tenant's lookups cached never opens that container to a
// tenant it is not its.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// tnNamesRounds is how many times the remove-and-create-again cycle runs,
// so that a request racing dockerd's events shows.
const tnNamesRounds = 20

// tnNamesFollowing waits until g follows dockerd's events: until then its
// name cache is bypassed, and the test would not exercise it.
func tnNamesFollowing(t *testing.T, g *azGate) {
	t.Helper()
	// Generous: only detects a dockgate that never subscribes.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := os.ReadFile(g.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "following dockerd's events") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockgate never followed dockerd's events:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tnNamesRun creates and starts a container named name through c, and
// returns its ID.
func tnNamesRun(ctx context.Context, t *testing.T, c *client.Client, name string) string {
	t.Helper()
	created, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: []string{"sleep", "600"}, Labels: map[string]string{azLabel: "tenancy-names"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return created.ID
}

// tnNamesReaches checks that a request by name reaches the container id:
// an inspect, and an exec created on it (dockerd says which container the
// exec is in).
func tnNamesReaches(ctx context.Context, t *testing.T, c *client.Client, name, id, when string) {
	t.Helper()
	ci, err := c.ContainerInspect(ctx, name)
	if err != nil || ci.ID != id {
		t.Fatalf("%s: inspect %s: %.12s %v, want %.12s", when, name, ci.ID, err, id)
	}
	ex, err := c.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: []string{"true"}})
	if err != nil {
		t.Fatalf("%s: exec in %s: %v", when, name, err)
	}
	ei, err := c.ContainerExecInspect(ctx, ex.ID)
	if err != nil || ei.ContainerID != id {
		t.Fatalf("%s: the exec in %s went to %.12s (%v), want %.12s", when, name, ei.ContainerID, err, id)
	}
}

// TestTenancyNamesFollowRenamesAndRemoves: a tenant (root held to the CI
// role, through the SDK, as fast as a script can follow one request with
// the next) names its container foo, renames it and creates another foo,
// removes foo and creates it again, over and over: each request by name
// right after reaches the container foo is now, never the one it was.
func TestTenancyNamesFollowRenamesAndRemoves(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, azPolicy(t, true))
	direct := azDirect(t, env)
	before := azContainers(t, direct)
	t.Cleanup(func() { azRemoveNew(t, direct, before) })
	tnNamesFollowing(t, g)
	c, err := client.NewClientWithOpts(client.WithHost(g.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Generous: only detects a hang on a loaded 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const foo, bar = "e2e-tnnames-foo", "e2e-tnnames-bar"

	first := tnNamesRun(ctx, t, c, foo)
	tnNamesReaches(ctx, t, c, foo, first, "foo created")
	tnNamesReaches(ctx, t, c, foo, first, "foo again (from the cache)")

	if err := c.ContainerRename(ctx, foo, bar); err != nil {
		t.Fatal(err)
	}
	second := tnNamesRun(ctx, t, c, foo)
	tnNamesReaches(ctx, t, c, foo, second, "a new foo right after the rename")
	tnNamesReaches(ctx, t, c, bar, first, "the renamed container by its new name")

	// The tightest race: the request by the old name right after the
	// rename's answer, with nothing in between for dockerd's event to
	// arrive in.
	for i := range tnNamesRounds {
		if err := c.ContainerRename(ctx, foo, "e2e-tnnames-baz"); err != nil {
			t.Fatal(err)
		}
		if ci, err := c.ContainerInspect(ctx, foo); !cerrdefs.IsNotFound(err) {
			t.Fatalf("round %d: inspect foo right after renaming it away: %.12s %v, want dockerd's 404", i, ci.ID, err)
		}
		if err := c.ContainerRename(ctx, "e2e-tnnames-baz", foo); err != nil {
			t.Fatal(err)
		}
		if ci, err := c.ContainerInspect(ctx, "e2e-tnnames-baz"); !cerrdefs.IsNotFound(err) {
			t.Fatalf("round %d: inspect baz right after renaming it back: %.12s %v, want dockerd's 404", i, ci.ID, err)
		}
		tnNamesReaches(ctx, t, c, foo, second, fmt.Sprintf("round %d: foo renamed back", i))
	}

	id := second
	for i := range tnNamesRounds {
		if err := c.ContainerRemove(ctx, foo, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		next := tnNamesRun(ctx, t, c, foo)
		if next == id {
			t.Fatalf("round %d: dockerd gave the new foo the removed one's ID", i)
		}
		id = next
		tnNamesReaches(ctx, t, c, foo, id, fmt.Sprintf("round %d: foo right after rm -f and create", i))
	}
}

// TestTenancyNamesCLI: the same as a CI job writes it, with the docker CLI
// as an unprivileged tenant: `docker rename foo bar && docker run --name
// foo ... && docker exec foo`, and `docker rm -f foo && docker run --name
// foo ... && docker inspect foo`, each reaching the new foo.
func TestTenancyNamesCLI(t *testing.T) {
	g, _, a, _, _ := tnBed(t, tnPolicy(t))
	tnNamesFollowing(t, g)
	const foo, bar = "e2e-tnnames-cli-foo", "e2e-tnnames-cli-bar"
	run := func() string {
		return strings.TrimSpace(a.must("run", "-d", "--network", "none", "--name", foo, "--label", tnTestLabel, testbed.DefaultImage, "sleep", "600"))
	}
	inspect := func() string { return strings.TrimSpace(a.must("inspect", "-f", "{{.Id}}", foo)) }
	// The container's hostname is its short ID: exec shows where it ran.
	execHost := func() string { return strings.TrimSpace(a.must("exec", foo, "hostname")) }

	first := run()
	for range 2 {
		if got := inspect(); got != first {
			t.Fatalf("inspect foo: %.12s, want %.12s", got, first)
		}
		if got := execHost(); got != first[:12] {
			t.Fatalf("exec in foo ran in %s, want %.12s", got, first)
		}
	}
	a.must("rename", foo, bar)
	second := run()
	if got := execHost(); got != second[:12] {
		t.Fatalf("exec in the new foo after the rename ran in %s, want %.12s (the renamed one is %.12s)", got, second, first)
	}
	if got := inspect(); got != second {
		t.Fatalf("inspect the new foo: %.12s, want %.12s", got, second)
	}
	for i := range 5 {
		a.must("rm", "-f", foo)
		id := run()
		if got := inspect(); got != id {
			t.Fatalf("round %d: inspect foo right after rm -f and run: %.12s, want %.12s", i, got, id)
		}
	}
}

// TestTenancyNamesOtherTenantRefused: a name cached by its owner's
// requests (or by another tenant's refused ones) opens the container to
// nobody else: the other tenant is refused as before, by name, by the ID
// the cache holds and after the owner's own lookups warmed it.
func TestTenancyNamesOtherTenantRefused(t *testing.T) {
	g, _, a, b, _ := tnBed(t, tnPolicy(t))
	tnNamesFollowing(t, g)
	const foo = "e2e-tnnames-theirs"
	id := strings.TrimSpace(a.must("run", "-d", "--network", "none", "--name", foo, "--label", tnTestLabel, testbed.DefaultImage, "sleep", "600"))
	for range 2 {
		a.must("inspect", foo)
	}
	for range 2 {
		b.ownerRefused("other", "inspect", foo)
		b.ownerRefused("other", "exec", foo, "true")
		b.ownerRefused("other", "rm", "-f", foo)
		b.ownerRefused("other", "inspect", id)
	}
	// The owner still reaches it, and it is still there.
	if got := strings.TrimSpace(a.must("inspect", "-f", "{{.Id}}", foo)); got != id {
		t.Fatalf("owner's inspect after the refusals: %.12s, want %.12s", got, id)
	}
}
