package e2e

// Helpers of the authorization tests (authz_cli_test.go, authz_wire_test.go):
// a dockgate of their own in the shared bed, with a policy adapted from
// policies/ci, the real docker CLI run as an unprivileged uid, and looks at
// dockerd itself (never through dockgate) to see what was really created.
// Every name here starts with az so that it cannot collide with the rest of
// the package.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

const (
	// azUID is the CI job's uid: nobody, which dockgate names user:nobody.
	azUID    = 65534
	azCaller = "user:nobody"
	// azImageFact is what the extractor makes of testbed.DefaultImage
	// (`dockgate explain` shows docker.io/test/busybox:1).
	azImageFact = "docker.io/test/busybox:1"
	azTimeout   = 30 * time.Second
	// azAuditWait is how long a record may take to reach the audit log
	// after the client has its answer.
	azAuditWait = 5 * time.Second
	azCLIPath   = "/usr/local/bin/docker"
	// azLabel marks what these tests create, for their cleanup.
	azLabel = "e2e.authz"
)

// azGate is a dockgate of its own in front of the shared bed's dockerd.
type azGate struct {
	*testbed.Dockgate
	policy string // the policy directory
}

// azPolicy is policies/ci/ci.csv with the test's callers put in role:ci:
// uid 65534 (nobody) always, and with rootInCI uid 0 too, instead of
// root's "everything" row, so that an in-process raw sender running as root
// is held to the CI role. The test image is added to the approved images,
// and the extra rows at the end.
func azPolicy(t *testing.T, rootInCI bool, extra ...string) string {
	t.Helper()
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "policies", "ci", "ci.csv"))
	if err != nil {
		t.Fatal(err)
	}
	csv := string(b)
	if rootInCI {
		const rootRow = "p, uid:0, *, **, allow\n"
		if strings.Count(csv, rootRow) != 1 {
			t.Fatalf("policies/ci/ci.csv no longer has exactly one %q", rootRow)
		}
		csv = strings.Replace(csv, rootRow, "g, uid:0, role:ci\n", 1)
	}
	csv += "\n# e2e: the test's unprivileged caller is a CI job, and the test image is approved.\n" +
		"g, uid:" + strconv.Itoa(azUID) + ", role:ci\n" +
		"p, role:ci, image, " + azImageFact + ", allow\n" +
		"p, role:ci, local-image, " + azImageFact + ", allow\n"
	for _, row := range extra {
		csv += row + "\n"
	}
	return csv
}

// azStartGate starts `dockgate serve --policy DIR --socket-mode 0666 args...`
// with policy as DIR/ci.csv, stopped when t ends.
func azStartGate(t *testing.T, env *testbed.Env, policy string, args ...string) *azGate {
	t.Helper()
	return azStartGateOn(t, env, env.DirectHost(), policy, args...)
}

// azStartGateOn is azStartGate in front of the dockerd at upstream (a
// test's own).
func azStartGateOn(t *testing.T, env *testbed.Env, upstream, policy string, args ...string) *azGate {
	t.Helper()
	return azStartGateFiles(t, env, upstream, map[string][]byte{"ci.csv": []byte(policy)}, func(string) []string { return args })
}

// azStartGateFiles starts a dockgate in front of the dockerd at upstream
// whose policy directory holds files (name → content; "keys/x.pub" makes
// keys/), with the serve arguments args gives for the gate's own directory,
// stopped when t ends.
func azStartGateFiles(t *testing.T, env *testbed.Env, upstream string, files map[string][]byte, args func(dir string) []string) *azGate {
	t.Helper()
	if env.Bin == "" {
		t.Skip("no dockgate binary in this bed (DOCKGATE_E2E_DIRECT)")
	}
	dir, err := os.MkdirTemp("/tmp", "dgaz")
	if err != nil {
		t.Fatal(err)
	}
	// nobody must reach the socket; dockgate, not the file mode, decides.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, "policy")
	for name, content := range files {
		p := filepath.Join(pdir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), azTimeout)
	defer cancel()
	argv := append([]string{"--policy", pdir, "--socket-mode", "0666"}, args(dir)...)
	g, err := testbed.StartDockgate(ctx, env.Bin, filepath.Join(dir, "g"), upstream, argv...)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start dockgate %s: %v", strings.Join(argv, " "), err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("stop the test's dockgate: %v", err)
		}
		for _, p := range g.Problems() {
			t.Errorf("the test's dockgate reports:\n%s", p)
		}
		if os.Getenv("DOCKGATE_E2E_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			t.Logf("DOCKGATE_E2E_KEEP: the test's dockgate (audit log, log) is in %s", dir)
		}
	})
	return &azGate{Dockgate: g, policy: pdir}
}

// azRecord waits for an audit record that ok accepts.
func (g *azGate) azRecord(t *testing.T, what string, ok func(rec map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(azAuditWait)
	for {
		recs, err := g.AuditRecords()
		if err != nil {
			t.Fatalf("audit log: %v", err)
		}
		for _, rec := range recs {
			if rec["phase"] != "start" && ok(rec) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, rec := range recs {
				got = append(got, fmt.Sprintf("%v %v %v pid=%d %v", rec["method"], rec["path"], rec["decision"], azPid(rec), rec["reason"]))
			}
			t.Errorf("audit: no record of %s; records:\n  %s", what, strings.Join(got, "\n  "))
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// azFacts returns a record's facts.
func azFacts(rec map[string]any) []map[string]any {
	list, _ := rec["facts"].([]any)
	var out []map[string]any
	for _, f := range list {
		if m, ok := f.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// azCheckFacts checks that every fact of rec carries its decision and rule,
// and that the fact kind/value is among them with decision want.
func azCheckFacts(t *testing.T, rec map[string]any, kind, value, want string) {
	t.Helper()
	facts := azFacts(rec)
	if len(facts) == 0 {
		t.Errorf("audit record without facts: %v", rec)
		return
	}
	found := false
	for _, f := range facts {
		k, _ := f["kind"].(string)
		v, _ := f["value"].(string)
		d, _ := f["decision"].(string)
		r, _ := f["rule"].(string)
		if k == "" || v == "" || (d != "allow" && d != "deny") || r == "" {
			t.Errorf("audit fact without kind, value, decision or rule: %v (record %v)", f, rec["facts"])
		}
		if k == "endpoint" && d != "allow" {
			t.Errorf("audit: endpoint fact %v, want it allowed: %v", f, rec["facts"])
		}
		if k == kind && v == value {
			found = true
			if d != want {
				t.Errorf("audit: fact %s %s decided %q, want %q: %v", kind, value, d, want, f)
			}
			if want == "deny" && r != "no rule allows it" {
				t.Errorf("audit: fact %s %s refused by %q, want \"no rule allows it\"", kind, value, r)
			}
		}
	}
	if !found {
		t.Errorf("audit: no fact %s %s among %v", kind, value, rec["facts"])
	}
}

// azDirect is a Go SDK client of dockerd itself, closed when t ends.
func azDirect(t *testing.T, env *testbed.Env) *client.Client {
	t.Helper()
	c, err := env.Dockerd.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func azCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), azTimeout)
}

// azContainers lists every container on dockerd, directly: ID → name.
func azContainers(t *testing.T, c *client.Client) map[string]string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	cs, err := c.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		t.Fatalf("list containers on dockerd: %v", err)
	}
	out := map[string]string{}
	for _, ct := range cs {
		name := ""
		if len(ct.Names) > 0 {
			name = ct.Names[0]
		}
		out[ct.ID] = name
	}
	return out
}

// azNewContainers returns the containers on dockerd that are not in before,
// each described by what dockerd actually gave it.
func azNewContainers(t *testing.T, c *client.Client, before map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, name := range azContainers(t, c) {
		if _, ok := before[id]; !ok {
			out[id] = name + " " + azDescribe(t, c, id)
		}
	}
	return out
}

// azDescribe summarizes the dangerous settings dockerd gave a container.
func azDescribe(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	ci, err := c.ContainerInspect(ctx, id)
	if err != nil {
		return "(inspect: " + err.Error() + ")"
	}
	hc := ci.HostConfig
	var mounts []string
	for _, m := range ci.Mounts {
		mounts = append(mounts, string(m.Type)+":"+m.Source+"->"+m.Destination)
	}
	var devices []string
	for _, d := range hc.Devices {
		devices = append(devices, d.PathOnHost)
	}
	return fmt.Sprintf("{image %s, privileged %v, capadd %v, binds %v, mounts %v, devices %v, pid %q, network %q, securityopt %v}",
		ci.Config.Image, hc.Privileged, hc.CapAdd, hc.Binds, mounts, devices, hc.PidMode, hc.NetworkMode, hc.SecurityOpt)
}

// azRemoveContainers force-removes containers directly on dockerd.
func azRemoveContainers(t *testing.T, c *client.Client, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ctx, cancel := azCtx()
		if err := c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("remove container %.12s on dockerd: %v", id, err)
		}
		cancel()
	}
}

// azRemoveNew removes the containers created since before.
func azRemoveNew(t *testing.T, c *client.Client, before map[string]string) {
	t.Helper()
	var ids []string
	for id := range azContainers(t, c) {
		if _, ok := before[id]; !ok {
			ids = append(ids, id)
		}
	}
	azRemoveContainers(t, c, ids...)
}

// azVolumes lists the volumes on dockerd, directly.
func azVolumes(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	vs, err := c.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs()})
	if err != nil {
		t.Fatalf("list volumes on dockerd: %v", err)
	}
	var names []string
	for _, v := range vs.Volumes {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	return names
}

func azRemoveVolume(t *testing.T, c *client.Client, name string) {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	if err := c.VolumeRemove(ctx, name, true); err != nil && !client.IsErrNotFound(err) {
		t.Errorf("remove volume %s on dockerd: %v", name, err)
	}
}

// azExecIDs are the exec instances dockerd has for a container.
func azExecIDs(t *testing.T, c *client.Client, id string) []string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	ci, err := c.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatalf("inspect %s on dockerd: %v", id, err)
	}
	return ci.ExecIDs
}

// azUser runs the real docker CLI as uid 65534 through a dockgate.
type azUser struct {
	t       *testing.T
	host    string
	home    string // owned by 65534
	cli     string
	setpriv string
}

func azNewUser(t *testing.T, host string) *azUser {
	t.Helper()
	setpriv := testbed.RequireBinary(t, "setpriv")
	home, err := os.MkdirTemp("/tmp", "dgazhome")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, azUID, azUID); err != nil {
		t.Fatal(err)
	}
	cli := azCLIPath
	if _, err := os.Stat(cli); err != nil {
		cli = testbed.RequireBinary(t, "docker")
	}
	return &azUser{t: t, host: host, home: home, cli: cli, setpriv: setpriv}
}

// azResult is one finished CLI command.
type azResult struct {
	args           []string
	stdout, stderr string
	code           int
	pid            int
}

func (r azResult) String() string {
	return fmt.Sprintf("docker %s: exit %d\nstdout: %q\nstderr: %q", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// writeFile writes a file into the user's home, owned by the user.
func (u *azUser) writeFile(name, content string) string {
	u.t.Helper()
	p := filepath.Join(u.home, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		u.t.Fatal(err)
	}
	for d := p; d != u.home; d = filepath.Dir(d) {
		if err := os.Chown(d, azUID, azUID); err != nil {
			u.t.Fatal(err)
		}
	}
	return p
}

// run runs `docker args...` as uid 65534 with stdin (none when empty) and
// the extra environment.
func (u *azUser) run(stdin string, extraEnv []string, args ...string) azResult {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), azTimeout)
	defer cancel()
	uid := strconv.Itoa(azUID)
	cmd := exec.CommandContext(ctx, u.setpriv, append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", u.cli}, args...)...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + u.home,
		"DOCKER_HOST=" + u.host,
		"DOCKER_CLI_HINTS=false",
		"LANG=C.UTF-8",
	}, extraEnv...)
	cmd.Dir = u.home
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := azResult{args: args, code: -1}
	err := cmd.Start()
	if err == nil {
		r.pid = cmd.Process.Pid // setpriv execs docker: the same pid
		err = cmd.Wait()
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err == nil {
		r.code = 0
	}
	if ctx.Err() != nil {
		u.t.Errorf("`docker %s` timed out after %v: %v", strings.Join(args, " "), azTimeout, r)
	} else if r.code < 0 {
		u.t.Errorf("`docker %s`: %v", strings.Join(args, " "), err)
	}
	return r
}

// must runs a command that has to succeed.
func (u *azUser) must(args ...string) azResult {
	u.t.Helper()
	r := u.run("", nil, args...)
	if r.code != 0 {
		u.t.Fatalf("as uid %d through dockgate: %v", azUID, r)
	}
	return r
}

// azJSON is a compact rendering of v for failure messages.
func azJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// azPid is the caller's pid in an audit record.
func azPid(rec map[string]any) int {
	c, _ := rec["caller"].(map[string]any)
	if n, ok := c["pid"].(float64); ok {
		return int(n)
	}
	return -1
}

// azStatus is a record's HTTP status.
func azStatus(rec map[string]any) int {
	if n, ok := rec["status"].(float64); ok {
		return int(n)
	}
	return -1
}

// azCreations asks dockerd for the objects created since since, from its
// event history: container create, exec_create, volume create, image pull
// and tag. A container that was created and removed again (run --rm) is
// still there.
func azCreations(t *testing.T, c *client.Client, since time.Time) []string {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	until := time.Now().Add(10 * time.Millisecond)
	stamp := func(ts time.Time) string { return fmt.Sprintf("%d.%09d", ts.Unix(), ts.Nanosecond()) }
	msgs, errs := c.Events(ctx, events.ListOptions{Since: stamp(since), Until: stamp(until)})
	var out []string
	for {
		select {
		case m := <-msgs:
			action := string(m.Action)
			switch {
			case m.Type == events.ContainerEventType && (action == "create" || strings.HasPrefix(action, "exec_create")),
				m.Type == events.VolumeEventType && action == "create",
				m.Type == events.ImageEventType && (action == "pull" || action == "tag" || action == "import" || action == "load"):
				id := m.Actor.ID
				if m.Type == events.ContainerEventType {
					id = id[:min(12, len(id))]
				}
				out = append(out, fmt.Sprintf("%s %s %s name=%s", m.Type, action, id, m.Actor.Attributes["name"]))
			}
		case err := <-errs:
			if err != nil && err != io.EOF {
				t.Errorf("dockerd's events: %v", err)
			}
			return out
		}
	}
}
