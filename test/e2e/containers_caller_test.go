package e2e

// Containers as callers (docs/containers.md), with real containers calling
// dockgate through its socket bound at /var/run/docker.sock: root in a
// container is not host root; the container's name, its creator's labels
// and its image are its subjects; a rename changes them; a container of
// another daemon is judged as * alone; a container removed while its
// request streams ends that request.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

// ccInfra is the name of the container the policy gives infrastructure
// rights (a reverse proxy's: it lists containers and reads events).
const ccInfra = "dg-e2e-infra"

// ccPolicy is the CI policy plus rows for container callers.
func ccPolicy(t *testing.T, extra ...string) string {
	return azPolicy(t, false, append([]string{
		"p, container:" + ccInfra + ", endpoint, system.ping, allow",
		"p, container:" + ccInfra + ", endpoint, container.list, allow",
		"p, container:" + ccInfra + ", endpoint, system.events, allow",
		"p, label:dg.e2e.role=monitor, endpoint, system.version, allow",
	}, extra...)...)
}

// ccSetup is a dockgate with ccPolicy, the client image and a direct
// client.
func ccSetup(t *testing.T, extra ...string) (*testbed.Env, *azGate, *client.Client, string, context.Context) {
	t.Helper()
	env := testbed.Shared(t)
	c := azDirect(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	img := harnessImage(t, ctx, c, env)
	g := azStartGate(t, env, ccPolicy(t, extra...))
	return env, g, c, img, ctx
}

// ccCall runs dgcall in a container of spec (made on dockerd directly, as
// an administrator would), with dockgate's socket bound.
func ccCall(t *testing.T, ctx context.Context, env *testbed.Env, g *azGate, spec testbed.ContainerSpec, args ...string) testbed.DgcallAnswer {
	t.Helper()
	a, r, err := testbed.Dgcall(ctx, env.DirectHost(), g.Host, spec, args...)
	if err != nil {
		t.Fatalf("dgcall %s in %s: %v\n%v", strings.Join(args, " "), spec.Name, err, r)
	}
	return a
}

// ccRecord is the audit record of a request a container made.
func ccRecord(t *testing.T, g *azGate, method, path, name string) map[string]any {
	t.Helper()
	return g.azRecord(t, method+" "+path+" from container "+name, func(rec map[string]any) bool {
		c, _ := rec["caller"].(map[string]any)
		return rec["method"] == method && rec["path"] == path && c != nil && c["container_name"] == name
	})
}

func ccSubjects(rec map[string]any) []string {
	c, _ := rec["caller"].(map[string]any)
	var out []string
	for _, s := range c["subjects"].([]any) {
		out = append(out, s.(string))
	}
	return out
}

// TestRootInAContainerIsNotHostRoot: the policy gives uid:0 everything. A
// host process as root may create a privileged container; root in a
// container may do only what its container's rows allow, and its audit
// records name the container and the subjects it was judged by, none of
// them its uid's.
func TestRootInAContainerIsNotHostRoot(t *testing.T) {
	env, g, c, img, ctx := ccSetup(t)
	spec := testbed.ContainerSpec{Image: img, Name: ccInfra, Labels: map[string]string{azLabel: "cc"}}
	privileged := `{"Image":"` + img + `","Labels":{"` + azLabel + `":"cc"},"HostConfig":{"Privileged":true}}`

	if a := ccCall(t, ctx, env, g, spec, "GET", "/v1.41/containers/json"); a.Status != 200 {
		t.Errorf("the infrastructure's container lists containers: %d %s", a.Status, a.Body)
	}
	a := ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/create", privileged)
	if a.Status != 403 || !strings.Contains(a.Body, "dockgate: container:"+ccInfra+" may not endpoint container.create") {
		t.Errorf("root in a container creates a privileged container: %d %s", a.Status, a.Body)
	}
	if a := ccCall(t, ctx, env, g, spec, "GET", "/v1.41/info"); a.Status != 403 {
		t.Errorf("root in a container reads system.info, which only uid:0 may: %d %s", a.Status, a.Body)
	}

	rec := ccRecord(t, g, "POST", "/v1.41/containers/create", ccInfra)
	if rec != nil {
		caller := rec["caller"].(map[string]any)
		subjects := ccSubjects(rec)
		if caller["uid"] != float64(0) || len(caller["container"].(string)) != 64 {
			t.Errorf("the record's caller is not root in a container: %v", azJSON(caller))
		}
		if !slices.Contains(subjects, "container:"+ccInfra) || !slices.Contains(subjects, "image:docker.io/"+harnessClientImage[:strings.LastIndex(harnessClientImage, ":")]) {
			t.Errorf("subjects on record %q, want the container's name and image", subjects)
		}
		for _, s := range subjects {
			if strings.HasPrefix(s, "uid:") || strings.HasPrefix(s, "user:") || strings.HasPrefix(s, "gid:") || strings.HasPrefix(s, "group:") {
				t.Errorf("root in a container has the host subject %s", s)
			}
		}
	}

	// The same uid on the host: root, which the policy lets do anything.
	host, err := client.NewClientWithOpts(client.WithHost(g.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	created, err := host.ContainerCreate(ctx, &container.Config{Image: img, Labels: map[string]string{azLabel: "cc"}},
		&container.HostConfig{Privileged: true, NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatalf("host root through dockgate may not create a privileged container: %v", err)
	}
	azRemoveContainers(t, c, created.ID)
}

// TestContainerSubjectsFollowTheContainer: a label its creator set is a
// subject; the same label on another container's request gives nothing
// to a container without it; a rename takes the name's rows away at once;
// a restarted container is the same container.
func TestContainerSubjectsFollowTheContainer(t *testing.T) {
	env, g, c, img, ctx := ccSetup(t)

	monitor := testbed.ContainerSpec{Image: img, Name: "dg-e2e-monitor", Labels: map[string]string{azLabel: "cc", "dg.e2e.role": "monitor"}}
	if a := ccCall(t, ctx, env, g, monitor, "GET", "/v1.41/version"); a.Status != 200 {
		t.Errorf("a container labelled dg.e2e.role=monitor reads the version: %d %s", a.Status, a.Body)
	}
	plain := testbed.ContainerSpec{Image: img, Name: "dg-e2e-plain", Labels: map[string]string{azLabel: "cc", "dg.e2e.role": "other"}}
	if a := ccCall(t, ctx, env, g, plain, "GET", "/v1.41/version"); a.Status != 403 {
		t.Errorf("a container without the label reads the version: %d %s", a.Status, a.Body)
	}

	// One container, two requests with a rename between them, then a
	// restart and the same two requests again.
	bind, err := testbed.SocketBind(g.Host)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	flag := filepath.Join(dir, "go")
	script := `dgcall GET /v1.41/containers/json; echo; until [ -e /flag/go ]; do sleep 0.1; done; rm /flag/go; dgcall GET /v1.41/containers/json`
	id, err := testbed.StartContainer(ctx, env.DirectHost(), testbed.ContainerSpec{
		Image: img, Name: ccInfra, Labels: map[string]string{azLabel: "cc"},
		Cmd: []string{"sh", "-c", script}, Binds: []string{bind, dir + ":/flag"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer azRemoveContainers(t, c, id)
	ccRecord(t, g, "GET", "/v1.41/containers/json", ccInfra)
	if err := c.ContainerRename(ctx, id, "dg-e2e-renamed"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := testbed.WaitContainer(ctx, env.DirectHost(), id)
	if err != nil {
		t.Fatal(err)
	}
	first, second, _ := strings.Cut(r.Stdout, "\n\n")
	if !strings.HasPrefix(first, "200\n") || !strings.HasPrefix(second, "403\n") || !strings.Contains(second, "container:dg-e2e-renamed may not") {
		t.Errorf("before and after a rename, want 200 then 403 for the new name:\n%v", r)
	}

	// Restarted under its first name: the same container, the same rows.
	if err := c.ContainerRename(ctx, id, ccInfra); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err = testbed.WaitContainer(ctx, env.DirectHost(), id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(r.Stdout, "200\n") < 2 {
		t.Errorf("a restarted container is not judged as itself:\n%v", r)
	}
}

// TestContainerOfAnotherDaemonIsNobody: a container of another dockerd on
// this host, given dockgate's socket, is no container dockgate's dockerd
// knows: it has * alone, whatever its name, and the refusal says why.
func TestContainerOfAnotherDaemonIsNobody(t *testing.T) {
	env, g, _, _, ctx := ccSetup(t)
	dir, err := os.MkdirTemp("/tmp", "dgcc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	other, err := testbed.StartDockerd(ctx, filepath.Join(dir, "d"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := other.Stop(); err != nil {
			t.Errorf("stop the other dockerd: %v", err)
		}
	}()
	const img = "test/dgcall-other:1"
	if err := testbed.ClientImage(ctx, other.Host, img); err != nil {
		t.Fatal(err)
	}
	spec := testbed.ContainerSpec{Image: img, Name: ccInfra}
	a, r, err := testbed.Dgcall(ctx, other.Host, g.Host, spec, "GET", "/v1.41/containers/json")
	if err != nil {
		t.Fatalf("%v\n%v", err, r)
	}
	if a.Status != 403 || !strings.Contains(a.Body, "not a container of this dockerd") {
		t.Errorf("another daemon's container named like the infrastructure's lists containers: %d %s", a.Status, a.Body)
	}
	_ = env
}

// TestContainerRemovedMidRequest: a container whose events stream is open
// through dockgate is removed; the stream ends, its record is written, and
// nothing of it is left in dockgate (the bed's leak check).
func TestContainerRemovedMidRequest(t *testing.T) {
	env, g, c, img, ctx := ccSetup(t)
	bind, err := testbed.SocketBind(g.Host)
	if err != nil {
		t.Fatal(err)
	}
	id, err := testbed.StartContainer(ctx, env.DirectHost(), testbed.ContainerSpec{
		Image: img, Name: ccInfra, Labels: map[string]string{azLabel: "cc"},
		Cmd: []string{"dgcall", "GET", "/v1.41/events"}, Binds: []string{bind},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer azRemoveContainers(t, c, id)
	g.azRecord(t, "the events stream's start", func(rec map[string]any) bool { return true })
	deadline := time.Now().Add(azTimeout)
	for {
		recs, err := g.AuditRecords()
		if err != nil {
			t.Fatal(err)
		}
		started := slices.ContainsFunc(recs, func(rec map[string]any) bool {
			return rec["path"] == "/v1.41/events" && rec["phase"] == "start"
		})
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's events stream never started; records: %v", azJSON(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	rec := g.azRecord(t, "the end of the removed container's events stream", func(rec map[string]any) bool {
		c, _ := rec["caller"].(map[string]any)
		return rec["path"] == "/v1.41/events" && c != nil && c["container_name"] == ccInfra
	})
	if rec != nil && rec["decision"] != "allow" {
		t.Errorf("the stream's record: %v", azJSON(rec))
	}
}

// ccImageRows approve the client image for the CI role.
var ccImageRows = []string{
	"p, role:ci, image, docker.io/" + harnessClientImage + ", allow",
	"p, role:ci, local-image, docker.io/" + harnessClientImage + ", allow",
}

// ccSplit splits what a container printed between `echo ===` lines.
func ccSplit(out string) []string {
	var parts []string
	for _, p := range strings.Split(out, "\n===\n") {
		parts = append(parts, strings.TrimSuffix(p, "\n==="))
	}
	return parts
}

// TestTenantContainerActsForItsTenant: a CI job (a tenant) creates a
// container named and labelled like the infrastructure's, with dockgate's
// socket. From inside it can do only what the job can: it sees and reaches
// the job's containers only, may not create a privileged one, and what it
// creates is the job's. Its name and labels give it nothing.
func TestTenantContainerActsForItsTenant(t *testing.T) {
	env, g, c, img, ctx := ccSetup(t, ccImageRows...)
	u := azNewUser(t, g.Host)

	// The infrastructure's own container, which the job may not reach.
	adminID, err := testbed.StartContainer(ctx, env.DirectHost(), testbed.ContainerSpec{
		Image: img, Name: "dg-e2e-admin", Labels: map[string]string{azLabel: "cc"}, Cmd: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	defer azRemoveContainers(t, c, adminID)

	privileged := `{"Image":"` + img + `","HostConfig":{"Privileged":true}}`
	plain := `{"Image":"` + img + `","Cmd":["true"]}`
	script := `dgcall GET /v1.41/containers/json?all=1; echo; echo ===; ` +
		`dgcall GET /v1.41/containers/dg-e2e-admin/json; echo; echo ===; ` +
		`dgcall POST /v1.41/containers/create '` + privileged + `'; echo; echo ===; ` +
		`dgcall POST /v1.41/containers/create '` + plain + `'`
	r := u.run("", nil, "run", "--name", ccInfra, "--label", "dg.e2e.role=monitor", "--label", azLabel+"=cc",
		"--network", "none", "-v", "/var/run/docker.sock:/var/run/docker.sock", img, "sh", "-c", script)
	defer azRemoveNew(t, c, map[string]string{adminID: ""})
	if r.code != 0 {
		t.Fatalf("the job runs its container: %v", r)
	}
	parts := ccSplit(r.stdout)
	if len(parts) != 4 {
		t.Fatalf("want 4 answers, got:\n%s", r.stdout)
	}
	list, admin, priv, created := parts[0], parts[1], parts[2], parts[3]
	if !strings.HasPrefix(list, "200\n") || strings.Contains(list, adminID) || !strings.Contains(list, "/"+ccInfra) {
		t.Errorf("the job's container lists other than the job's containers, or not its own:\n%s", list)
	}
	if !strings.HasPrefix(admin, "403\n") || !strings.Contains(admin, "(for user:nobody) may not owner none") {
		t.Errorf("the job's container reaches the infrastructure's container:\n%s", admin)
	}
	if !strings.HasPrefix(priv, "403\n") || !strings.Contains(priv, "container:"+ccInfra+" (for user:nobody) may not privileged container") {
		t.Errorf("the job's container creates a privileged container:\n%s", priv)
	}
	if !strings.HasPrefix(created, "201\n") {
		t.Fatalf("the job's container may not create what the job may:\n%s", created)
	}
	id := created[strings.Index(created, `"Id":"`)+6:]
	id = id[:64]
	in, err := c.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if in.Config.Labels["io.dockgate.owner"] != "user:nobody" {
		t.Errorf("what the job's container creates is not the job's: labels %v", in.Config.Labels)
	}

	// The container itself: the job's, with dockgate's socket in it, and
	// its creator on record.
	self, err := c.ContainerInspect(ctx, ccInfra)
	if err != nil {
		t.Fatal(err)
	}
	if self.Config.Labels["io.dockgate.owner"] != "user:nobody" || !strings.Contains(self.Config.Labels["io.dockgate.creator"], `"user:nobody"`) {
		t.Errorf("the job's container's labels: %v", self.Config.Labels)
	}
	if len(self.HostConfig.Binds) != 1 || !strings.HasPrefix(self.HostConfig.Binds[0], g.Socket+":") {
		t.Errorf("the job's container was given %v, want dockgate's socket %s", self.HostConfig.Binds, g.Socket)
	}
	rec := ccRecord(t, g, "POST", "/v1.41/containers/create", ccInfra)
	if rec != nil {
		caller := rec["caller"].(map[string]any)
		if caller["acts_for"] != "user:nobody" || !slices.Contains(ccSubjects(rec), "user:nobody") || slices.Contains(ccSubjects(rec), "label:dg.e2e.role=monitor") {
			t.Errorf("the record of the job's container's create: %v", azJSON(caller))
		}
	}
}

// TestContainerOfARemappedDaemon: before a dockerd that maps containers'
// uids into a range of its own (--userns-remap), root in a container is
// uid 100000 or so on the host. That uid is no subject either: the
// container is found by its cgroup and judged by its name.
func TestContainerOfARemappedDaemon(t *testing.T) {
	env := testbed.Shared(t)
	testbed.RequireBinary(t, "useradd") // dockerd adds its dockremap user
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("/tmp", "dgcc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The remapped root must reach its data root below it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	remapped, err := testbed.StartEngineOnBridge(ctx, filepath.Join(dir, "d"), testbed.EngineDebian, "none", "--userns-remap=default")
	if err != nil {
		t.Fatal(err)
	}
	// Stopped after the test's dockgate (cleanups run last first).
	t.Cleanup(func() {
		if err := remapped.Stop(); err != nil {
			t.Errorf("stop the remapped dockerd: %v", err)
		}
	})
	const img = "test/dgcall-remapped:1"
	if err := testbed.ClientImage(ctx, remapped.Host, img); err != nil {
		t.Fatal(err)
	}
	g := azStartGateOn(t, env, remapped.Host, ccPolicy(t))
	spec := testbed.ContainerSpec{Image: img, Name: ccInfra}
	list, r, err := testbed.Dgcall(ctx, remapped.Host, g.Host, spec, "GET", "/v1.41/containers/json")
	if err != nil || list.Status != 200 {
		t.Fatalf("the infrastructure's container of a remapped dockerd lists containers: %+v %v\n%v", list, err, r)
	}
	a, r, err := testbed.Dgcall(ctx, remapped.Host, g.Host, spec, "POST", "/v1.41/containers/create", `{"Image":"`+img+`"}`)
	if err != nil || a.Status != 403 || !strings.Contains(a.Body, "dockgate: container:"+ccInfra+" may not") {
		t.Errorf("root of a remapped container creates a container: %+v %v\n%v", a, err, r)
	}
	if rec := ccRecord(t, g, "POST", "/v1.41/containers/create", ccInfra); rec != nil {
		caller := rec["caller"].(map[string]any)
		if uid, _ := caller["uid"].(float64); uid < 1000 {
			t.Errorf("root in a remapped container is uid %v on the host, want its remapped uid", caller["uid"])
		}
		for _, s := range ccSubjects(rec) {
			if strings.HasPrefix(s, "uid:") || strings.HasPrefix(s, "user:") {
				t.Errorf("root of a remapped container has the host subject %s", s)
			}
		}
	}
}

// TestAnImageCannotForgeDockgatesRecords: an image whose author put
// dockgate's own labels in it (an owner and a creator of uid:0), run with
// dockgate's socket, is no tenant's container acting for root: its labels
// are its image's, and it is judged by its name alone.
func TestAnImageCannotForgeDockgatesRecords(t *testing.T) {
	env, g, c, img, ctx := ccSetup(t)
	base, err := c.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"true"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	const forged = "test/forged-records:1"
	_, err = c.ContainerCommit(ctx, base.ID, container.CommitOptions{Reference: forged, Changes: []string{
		`LABEL io.dockgate.owner="uid:0" io.dockgate.creator="[[\"uid:0\",\"*\"]]"`}})
	azRemoveContainers(t, c, base.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := c.ImageRemove(context.Background(), forged, dockerimage.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", forged, err)
		}
	})
	spec := testbed.ContainerSpec{Image: forged, Name: "dg-e2e-forged"}
	a := ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/create", `{"Image":"`+img+`","HostConfig":{"Privileged":true}}`)
	if a.Status != 403 || !strings.Contains(a.Body, "dockgate: container:dg-e2e-forged may not") {
		t.Errorf("a container of an image labelled as root's acts as root: %d %s", a.Status, a.Body)
	}

	// Nor is an administrator's container of an image labelled as a CI
	// job's that job's to touch.
	base, err = c.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"true"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	const forgedJob = "test/forged-job:1"
	_, err = c.ContainerCommit(ctx, base.ID, container.CommitOptions{Reference: forgedJob, Changes: []string{`LABEL io.dockgate.owner="` + azCaller + `"`}})
	azRemoveContainers(t, c, base.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := c.ImageRemove(context.Background(), forgedJob, dockerimage.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", forgedJob, err)
		}
	})
	adminID, err := testbed.StartContainer(ctx, env.DirectHost(), testbed.ContainerSpec{Image: forgedJob, Name: "dg-e2e-forged-job", Cmd: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	defer azRemoveContainers(t, c, adminID)
	if r := azNewUser(t, g.Host).run("", nil, "exec", "dg-e2e-forged-job", "true"); r.code == 0 || !strings.Contains(r.stderr, "may not owner none") {
		t.Errorf("a CI job execs in an administrator's container whose image carries the job's owner label: %v", r)
	}
}
