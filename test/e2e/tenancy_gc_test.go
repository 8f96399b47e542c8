package e2e

// Cleanup: `dockgate gc --owner` removes one tenant's
// leftovers and nothing of another tenant's or of the agent's; `gc
// --expired` and serve's --gc-interval remove what a tenant-ttl policy row
// let expire. Every check of what is left looks at dockerd directly.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

const tngcExpiresKey = "io.dockgate.expires"

// tngcObject is a container, network or volume on dockerd.
type tngcObject struct {
	kind, id, name string // a volume's id is its name
	expires        string // its expiry label, if the policy gave one
}

// line is how gc names the object in its output, up to the reason of a
// failure.
func (o tngcObject) line(verb, owner string) string {
	l := verb + " " + o.kind + " " + o.id[:12] + " " + o.name + " owner=" + owner
	if o.kind == "volume" {
		l = verb + " volume " + o.name + " owner=" + owner
	}
	if o.expires != "" {
		l += " expires=" + o.expires
	}
	return l
}

// exists asks dockerd whether the object is still there.
func (o tngcObject) exists(t *testing.T, c *client.Client) bool {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	var err error
	switch o.kind {
	case "container":
		_, err = c.ContainerInspect(ctx, o.id)
	case "network":
		_, err = c.NetworkInspect(ctx, o.id, network.InspectOptions{})
	case "volume":
		_, err = c.VolumeInspect(ctx, o.id)
	}
	if err != nil && !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect %s %s on dockerd: %v", o.kind, o.name, err)
	}
	return err == nil
}

// tngcRun runs `dockgate gc --upstream <dockerd> args...` as root, the way
// an operator or a cron job would, straight at dockerd.
func tngcRun(t *testing.T, env *testbed.Env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if env.Bin == "" {
		t.Skip("no dockgate binary in this bed (DOCKGATE_E2E_DIRECT)")
	}
	ctx, cancel := azCtx()
	defer cancel()
	argv := append([]string{"gc", "--config", "", "--upstream", env.DirectHost()}, args...)
	cmd := exec.CommandContext(ctx, env.Bin, argv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("dockgate %s: %v", strings.Join(argv, " "), err)
	}
	t.Logf("dockgate %s: exit %d\n%s%s", strings.Join(argv, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// tngcLeftovers has a tenant create, through the gate, what a CI job
// leaves behind: a network, a volume, and a running container on both
// with an anonymous volume too. It returns them container first, and the
// anonymous volume.
func tngcLeftovers(t *testing.T, c *client.Client, u *tnUser, suffix string) ([]tngcObject, string) {
	t.Helper()
	net, vol, ctr := "e2e-tngc-net-"+suffix, "e2e-tngc-vol-"+suffix, "e2e-tngc-ctr-"+suffix
	u.must("network", "create", "--internal", "--label", tnTestLabel, net)
	u.must("volume", "create", "--label", tnTestLabel, vol)
	id := strings.TrimSpace(u.must("run", "-d", "--name", ctr, "--label", tnTestLabel, "--network", net,
		"-v", vol+":/data", "-v", "/scratch", testbed.DefaultImage, "sleep", "300"))
	ctx, cancel := azCtx()
	defer cancel()
	ni, err := c.NetworkInspect(ctx, net, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	vi, err := c.VolumeInspect(ctx, vol)
	if err != nil {
		t.Fatal(err)
	}
	anon := ""
	for _, m := range ci.Mounts {
		if m.Destination == "/scratch" {
			anon = m.Name
		}
	}
	if anon == "" {
		t.Fatalf("container %s has no anonymous volume: %+v", ctr, ci.Mounts)
	}
	// The CI policy may give tenants a time to live: gc names the expiry.
	return []tngcObject{
		{"container", id, ctr, ci.Config.Labels[tngcExpiresKey]},
		{"network", ni.ID, net, ni.Labels[tngcExpiresKey]},
		{"volume", vol, vol, vi.Labels[tngcExpiresKey]},
	}, anon
}

// tngcSetup is a gate with the tenancy policy and no periodic gc of its
// own, the two tenants' leftovers and the agent's running container.
func tngcSetup(t *testing.T) (env *testbed.Env, c *client.Client, a, b []tngcObject, anonA string, agent tngcObject) {
	env = testbed.Shared(t)
	g := azStartGate(t, env, tnPolicy(t), "--gc-interval", "0")
	c = azDirect(t, env)
	var vols, nets []string
	for _, s := range []string{"a", "b"} {
		vols = append(vols, "e2e-tngc-vol-"+s)
		nets = append(nets, "e2e-tngc-net-"+s)
	}
	// Cleanups run last registered first: the containers go before the
	// networks and volumes they use.
	t.Cleanup(func() { tnCleanup(t, c, vols, nets) })
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })

	ctx, cancel := azCtx()
	defer cancel()
	ag, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: []string{"sleep", "300"}, Labels: map[string]string{azLabel: "tenancy"}}, nil, nil, nil, "e2e-tngc-agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { azRemoveContainers(t, c, ag.ID) })
	if err := c.ContainerStart(ctx, ag.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	agent = tngcObject{"container", ag.ID, "e2e-tngc-agent", ""}
	a, anonA = tngcLeftovers(t, c, tnNewUser(t, g.Host, azUID), "a")
	b, _ = tngcLeftovers(t, c, tnNewUser(t, g.Host, tnUID2), "b")
	return env, c, a, b, anonA, agent
}

func TestTenancyGCOwnerRemovesOnlyThatOwnersLeftovers(t *testing.T) {
	env, c, a, b, anonA, agent := tngcSetup(t)
	all := append(append(slices.Clone(a), b...), agent)

	// --dry-run lists A's three and removes nothing.
	code, stdout, _ := tngcRun(t, env, "--owner", tnOwnerA, "--dry-run")
	want := []string{a[0].line("would remove", tnOwnerA), a[1].line("would remove", tnOwnerA), a[2].line("would remove", tnOwnerA),
		"gc: would remove 1 containers, 1 networks, 1 volumes; 0 failed, 0 skipped"}
	if got := strings.Split(strings.TrimSpace(stdout), "\n"); code != 0 || !slices.Equal(got, want) {
		t.Errorf("dry run: exit %d, output\n%s\nwant exit 0 and\n%s", code, stdout, strings.Join(want, "\n"))
	}
	for _, o := range all {
		if !o.exists(t, c) {
			t.Errorf("the dry run removed %s %s", o.kind, o.name)
		}
	}

	// --older-than: nothing of A's is that old yet.
	code, stdout, _ = tngcRun(t, env, "--owner", tnOwnerA, "--older-than", "1h")
	if code != 0 || strings.TrimSpace(stdout) != "gc: removed 0 containers, 0 networks, 0 volumes; 0 failed, 0 skipped" {
		t.Errorf("--older-than 1h: exit %d, output\n%s\nwant nothing removed", code, stdout)
	}

	code, stdout, _ = tngcRun(t, env, "--owner", tnOwnerA)
	want = []string{a[0].line("removed", tnOwnerA), a[1].line("removed", tnOwnerA), a[2].line("removed", tnOwnerA),
		"gc: removed 1 containers, 1 networks, 1 volumes; 0 failed, 0 skipped"}
	if got := strings.Split(strings.TrimSpace(stdout), "\n"); code != 0 || !slices.Equal(got, want) {
		t.Errorf("gc: exit %d, output\n%s\nwant exit 0 and\n%s", code, stdout, strings.Join(want, "\n"))
	}
	for _, o := range a {
		if o.exists(t, c) {
			t.Errorf("A's %s %s is still there", o.kind, o.name)
		}
	}
	if (tngcObject{"volume", anonA, anonA, ""}).exists(t, c) {
		t.Errorf("A's container's anonymous volume %.12s is still there", anonA)
	}
	for _, o := range append(slices.Clone(b), agent) {
		if !o.exists(t, c) {
			t.Errorf("BYPASS: gc --owner %s removed %s %s", tnOwnerA, o.kind, o.name)
		}
	}
	for _, o := range []tngcObject{b[0], agent} {
		ctx, cancel := azCtx()
		ci, err := c.ContainerInspect(ctx, o.id)
		cancel()
		if err != nil || !ci.State.Running {
			t.Errorf("%s no longer runs: %v", o.name, err)
		}
	}

	// Again: nothing left of A's.
	code, stdout, _ = tngcRun(t, env, "--owner", tnOwnerA)
	if code != 0 || strings.TrimSpace(stdout) != "gc: removed 0 containers, 0 networks, 0 volumes; 0 failed, 0 skipped" {
		t.Errorf("second gc: exit %d, output\n%s", code, stdout)
	}
	code, _, stderr := tngcRun(t, env, "--owner", "nobody")
	if code != 2 || !strings.Contains(stderr, `--owner "nobody"`) {
		t.Errorf("--owner nobody: exit %d, want 2 naming it: %s", code, stderr)
	}
}

// TestTenancyGCNetworkInUseExits1: a network of A's that another
// container still uses is left (dockerd refuses), reported, and gc exits
// 1; the rest of A's goes all the same.
func TestTenancyGCNetworkInUseExits1(t *testing.T) {
	env, c, a, b, _, agent := tngcSetup(t)
	ctx, cancel := azCtx()
	defer cancel()
	// The agent joins A's network directly on dockerd (a tenant cannot).
	if err := c.NetworkConnect(ctx, a[1].id, agent.id, nil); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := tngcRun(t, env, "--owner", tnOwnerA)
	if code != 1 || !strings.Contains(stdout, a[1].line("failed to remove", tnOwnerA)+": ") ||
		!strings.Contains(stdout, a[0].line("removed", tnOwnerA)+"\n") || !strings.Contains(stdout, a[2].line("removed", tnOwnerA)+"\n") ||
		!strings.Contains(stdout, "; 1 failed, 0 skipped") {
		t.Errorf("exit %d, output\n%s\nwant exit 1, the network failed and the rest removed", code, stdout)
	}
	if !a[1].exists(t, c) {
		t.Errorf("the network in use is gone")
	}
	for _, o := range append(slices.Clone(b), agent) {
		if !o.exists(t, c) {
			t.Errorf("BYPASS: gc --owner %s removed %s %s", tnOwnerA, o.kind, o.name)
		}
	}
	if err := c.NetworkDisconnect(ctx, a[1].id, agent.id, true); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = tngcRun(t, env, "--owner", tnOwnerA)
	if code != 0 || !strings.Contains(stdout, a[1].line("removed", tnOwnerA)+"\n") {
		t.Errorf("once free: exit %d, output\n%s", code, stdout)
	}
}

// tngcRemovedByAServe says whether a dockgate serving in front of this
// dockerd (the shared bed's, or one a test started) logged removing id
// with its periodic gc.
func tngcRemovedByAServe(logs []string, id string) bool {
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, `"gc: removed an expired tenant object"`) && strings.Contains(line, `"id":"`+id+`"`) {
				return true
			}
		}
	}
	return false
}

func TestTenancyGCExpired(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })
	var logs []string
	if env.Dockgate != nil {
		logs = append(logs, env.Dockgate.Stderr)
	}
	const owner = "uid:65533"
	// The soon-expired objects expire a little after they are made, not
	// before: the shared bed's dockgate removes expired objects every
	// minute too, and should as rarely as can be get there first.
	now := time.Now().UTC()
	soon := now.Add(3 * time.Second).Format(time.RFC3339)
	future := now.Add(time.Hour).Format(time.RFC3339)
	make3 := func(suffix string, labels map[string]string) []tngcObject {
		t.Helper()
		ctx, cancel := azCtx()
		defer cancel()
		name := "e2e-tngc-exp-" + suffix
		labels[azLabel] = "tenancy"
		n, err := c.NetworkCreate(ctx, name, network.CreateOptions{Internal: true, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tnCleanup(t, c, []string{name}, []string{name}) })
		if _, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
		ct, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: []string{"sleep", "300"}, Labels: labels}, nil, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ContainerStart(ctx, ct.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		e := labels[tngcExpiresKey]
		return []tngcObject{{"container", ct.ID, name, e}, {"network", n.ID, name, e}, {"volume", name, name, e}}
	}
	expiring := make3("past", map[string]string{tnOwnerKey: owner, tngcExpiresKey: soon})
	later := make3("future", map[string]string{tnOwnerKey: owner, tngcExpiresKey: future})
	garbled := make3("garbled", map[string]string{tnOwnerKey: owner, tngcExpiresKey: "tomorrow"})
	unowned := make3("unowned", map[string]string{tngcExpiresKey: soon})

	exp, _ := time.Parse(time.RFC3339, soon)
	time.Sleep(time.Until(exp.Add(200 * time.Millisecond)))

	// Lines of other objects (left by other tests, say) are not judged here.
	ours := func(stdout string) string {
		var keep []string
		for line := range strings.SplitSeq(stdout, "\n") {
			if strings.Contains(line, " e2e-tngc-exp-") || strings.HasPrefix(line, "gc: ") {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n") + "\n"
	}
	code, stdout, _ := tngcRun(t, env, "--expired", "--dry-run")
	out := ours(stdout)
	for _, o := range expiring {
		switch {
		case strings.Contains(out, o.line("would remove", owner)+"\n"):
		case !o.exists(t, c) && tngcRemovedByAServe(logs, o.id):
			t.Logf("a serving dockgate's periodic gc removed %s %s first", o.kind, o.name)
		default:
			t.Errorf("dry run does not list %s %s:\n%s", o.kind, o.name, out)
		}
		if !o.exists(t, c) && !tngcRemovedByAServe(logs, o.id) {
			t.Errorf("the dry run removed %s %s", o.kind, o.name)
		}
	}
	for _, o := range garbled {
		if !strings.Contains(out, o.line("skipped", owner)+`: the io.dockgate.expires label "tomorrow" is not an RFC 3339 time`+"\n") {
			t.Errorf("dry run does not report the garbled expiry of %s %s:\n%s", o.kind, o.name, out)
		}
	}
	if code != 0 {
		t.Errorf("dry run: exit %d, want 0", code)
	}

	code, stdout, _ = tngcRun(t, env, "--expired")
	out = ours(stdout)
	if code != 0 {
		t.Errorf("exit %d, want 0 (a garbled expiry is reported, not a failure)", code)
	}
	for _, o := range expiring {
		if o.exists(t, c) {
			t.Errorf("expired %s %s is still there", o.kind, o.name)
		}
		if !strings.Contains(out, o.line("removed", owner)+"\n") && !tngcRemovedByAServe(logs, o.id) {
			t.Errorf("nothing says %s %s was removed:\n%s", o.kind, o.name, out)
		}
	}
	for _, o := range slices.Concat(later, garbled, unowned) {
		if !o.exists(t, c) {
			t.Errorf("BYPASS: gc --expired removed %s %s", o.kind, o.name)
		}
		for line := range strings.SplitSeq(out, "\n") {
			if strings.HasPrefix(line, "removed "+o.kind+" ") && strings.Contains(line, " "+o.name+" ") {
				t.Errorf("gc says it removed %s %s: %s", o.kind, o.name, line)
			}
		}
	}
}

// TestTenancyGCServeExpiresATenantsLeftovers: with `p, role:ci,
// tenant-ttl, …` what a tenant creates carries an expiry, and serve's
// --gc-interval removes it once past, logging each removal; the agent's
// container and root's (no tenant) stay.
func TestTenancyGCServeExpiresATenantsLeftovers(t *testing.T) {
	env := testbed.Shared(t)
	// A TTL of a few seconds: the expiry is written to the second, so a
	// TTL of 1s could expire a container between its create and start.
	const ttl = 3 * time.Second
	g := azStartGate(t, env, tnPolicy(t)+"p, role:ci, tenant-ttl, 3s, allow\n", "--gc-interval", "1s")
	c := azDirect(t, env)
	vols := []string{"e2e-tngc-vol-ttl", "e2e-tngc-vol-root"}
	nets := []string{"e2e-tngc-net-ttl"}
	t.Cleanup(func() { tnCleanup(t, c, vols, nets) })
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })
	logs := []string{g.Stderr}
	if env.Dockgate != nil {
		logs = append(logs, env.Dockgate.Stderr)
	}

	a := tnNewUser(t, g.Host, azUID)
	start := time.Now()
	a.must("network", "create", "--internal", nets[0])
	a.must("volume", "create", vols[0])
	id := strings.TrimSpace(a.must("run", "-d", "--name", "e2e-tngc-ctr-ttl", "--network", nets[0], "-v", vols[0]+":/data", testbed.DefaultImage, "sleep", "300"))
	created := time.Now()

	ctx, cancel := azCtx()
	defer cancel()
	ni, err := c.NetworkInspect(ctx, nets[0], network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatalf("the container went before it could be looked at: %v", err)
	}
	exp, err := time.Parse(time.RFC3339, ci.Config.Labels[tngcExpiresKey])
	if err != nil || exp.Before(start.Add(ttl).Truncate(time.Second)) || exp.After(created.Add(ttl+time.Second)) {
		t.Errorf("container labels %v: want %s about %v after creation", ci.Config.Labels, tngcExpiresKey, ttl)
	}
	if ci.Config.Labels[tnOwnerKey] != tnOwnerA {
		t.Errorf("container labels %v: want the owner %s", ci.Config.Labels, tnOwnerA)
	}
	objs := []tngcObject{{"container", id, "e2e-tngc-ctr-ttl", ""}, {"network", ni.ID, nets[0], ""}, {"volume", vols[0], vols[0], ""}}

	// Root is no tenant: its objects get no expiry and stay.
	root := tnNewUser(t, g.Host, 0)
	root.must("volume", "create", vols[1])
	rootID := strings.TrimSpace(root.must("run", "-d", "--name", "e2e-tngc-ctr-root", testbed.DefaultImage, "sleep", "300"))
	ag, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: []string{"sleep", "300"}, Labels: map[string]string{azLabel: "tenancy"}}, nil, nil, nil, "e2e-tngc-ttl-agent")
	if err != nil {
		t.Fatal(err)
	}
	keep := []tngcObject{{"container", rootID, "e2e-tngc-ctr-root", ""}, {"volume", vols[1], vols[1], ""}, {"container", ag.ID, "e2e-tngc-ttl-agent", ""}}

	deadline := time.Now().Add(ttl + 15*time.Second)
	for _, o := range objs {
		for o.exists(t, c) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if o.exists(t, c) {
			t.Errorf("%s %s not removed %v after it expired", o.kind, o.name, time.Since(exp).Round(time.Second))
			continue
		}
		// A run logs what it did once it is done with every object.
		logged := time.Now().Add(azAuditWait)
		for !tngcRemovedByAServe(logs, o.id) && time.Now().Before(logged) {
			time.Sleep(100 * time.Millisecond)
		}
		if !tngcRemovedByAServe(logs, o.id) {
			b, _ := os.ReadFile(g.Stderr)
			t.Errorf("%s %s is gone, but no dockgate logged removing it; the gate's log:\n%s", o.kind, o.name, b)
		}
	}
	for _, o := range keep {
		if !o.exists(t, c) {
			t.Errorf("BYPASS: the periodic gc removed %s %s", o.kind, o.name)
		}
	}
	// Operational lines, not audit records.
	b, err := os.ReadFile(g.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\{"level":"info","type":"log",.*"kind":"container","id":"` + id + `","name":"e2e-tngc-ctr-ttl","owner":"` + tnOwnerA + `","expires":"[^"]+".*"message":"gc: removed an expired tenant object"\}$`)
	if !re.Match(b) && !tngcRemovedByAServe(logs[1:], id) {
		t.Errorf("the gate's log has no operational line for the container's removal:\n%s", b)
	}
	recs, err := g.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if strings.Contains(azJSON(rec), "gc: ") {
			t.Errorf("gc wrote to the audit trail: %v", rec)
		}
	}
}
