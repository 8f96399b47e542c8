package e2e

// The real docker CLI, run as uid 65534 (nobody) under a CI policy
// (policies/ci with nobody in role:ci): everything that reaches the host is
// refused with the policy's message and nothing is created on dockerd;
// ordinary CI work still works; in audit mode the same requests are
// forwarded and recorded as would_deny.

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/test/testbed"
)

const (
	azEvilImage      = "evil.example.com/x:1" // tagged directly on dockerd, never approved
	azExecTarget     = "e2e-authz-exec-target"
	azBindVolume     = "e2e-authz-vbind"   // created through dockgate: refused
	azDirectVolume   = "e2e-authz-vdirect" // created directly on dockerd, mounted by name
	azBuiltImage     = "ci.local/e2e-authz:1"
	azRefusalMessage = "Error response from daemon: dockgate: " + azCaller + " may not "
)

// azRefusal is one thing a CI job must not do.
type azRefusal struct {
	name string
	// args of a container create, run as `run --rm ARGS` under enforce and
	// `create ARGS` under audit; for other commands cmd is the whole command.
	args   []string
	cmd    []string
	action string // the audit record's action
	kind   string // the refused fact
	value  string
}

func azRefusals() []azRefusal {
	img := testbed.DefaultImage
	return []azRefusal{
		{name: "privileged", args: []string{"--privileged", img, "true"}, kind: "privileged", value: "container"},
		{name: "bind root", args: []string{"-v", "/:/host", img, "true"}, kind: "bind", value: "/"},
		{name: "bind mount", args: []string{"--mount", "type=bind,src=/etc,dst=/x", img, "true"}, kind: "bind", value: "/etc"},
		{name: "local volume o=bind", cmd: []string{"volume", "create", "--driver", "local", "-o", "type=none", "-o", "o=bind", "-o", "device=/etc", azBindVolume},
			action: "volume.create", kind: "bind", value: "/etc"},
		{name: "bind volume created directly then mounted by name", args: []string{"-v", azDirectVolume + ":/x", img, "true"}, kind: "bind", value: "/etc"},
		{name: "cap-add SYS_ADMIN", args: []string{"--cap-add", "SYS_ADMIN", img, "true"}, kind: "capability", value: "SYS_ADMIN"},
		{name: "cap-add ALL", args: []string{"--cap-add", "ALL", img, "true"}, kind: "capability", value: "ALL"},
		{name: "device", args: []string{"--device", "/dev/null", img, "true"}, kind: "device", value: "/dev/null"},
		{name: "pid host", args: []string{"--pid", "host", img, "true"}, kind: "namespace", value: "pid=host"},
		{name: "network host", args: []string{"--network", "host", img, "true"}, kind: "namespace", value: "network=host"},
		{name: "seccomp unconfined", args: []string{"--security-opt", "seccomp=unconfined", img, "true"}, kind: "security-opt", value: "seccomp=unconfined"},
		{name: "exec privileged", cmd: []string{"exec", "--privileged", azExecTarget, "true"}, action: "container.exec", kind: "privileged", value: "exec"},
		// The evil name is a tag of the (imported) test image on dockerd:
		// no registry provenance, so a local-image fact.
		{name: "unapproved image", args: []string{azEvilImage, "true"}, kind: "local-image", value: azEvilImage},
	}
}

// azPrepareRefusals makes what the refusals need on dockerd: the evil tag,
// a bind volume created directly, and (through dockgate, as the user) a
// running container to exec into.
func azPrepareRefusals(t *testing.T, c *client.Client, u *azUser) {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	if err := c.ImageTag(ctx, testbed.DefaultImage, azEvilImage); err != nil {
		t.Fatalf("tag %s on dockerd: %v", azEvilImage, err)
	}
	t.Cleanup(func() {
		ctx, cancel := azCtx()
		defer cancel()
		if _, err := c.ImageRemove(ctx, azEvilImage, dimage.RemoveOptions{}); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("remove %s: %v", azEvilImage, err)
		}
	})
	if _, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: azDirectVolume, Driver: "local",
		DriverOpts: map[string]string{"type": "none", "o": "bind", "device": "/etc"}}); err != nil {
		t.Fatalf("create volume %s on dockerd: %v", azDirectVolume, err)
	}
	t.Cleanup(func() { azRemoveVolume(t, c, azDirectVolume) })
	t.Cleanup(func() { azRemoveContainers(t, c, azExecTarget) })
	u.must("run", "-d", "--name", azExecTarget, "--label", azLabel+"=cli", testbed.DefaultImage, "sleep", "600")
}

func TestAuthzCLIRefusesWhatReachesTheHost(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, azPolicy(t, false))
	c := azDirect(t, env)
	u := azNewUser(t, g.Host)
	azPrepareRefusals(t, c, u)

	for _, rc := range azRefusals() {
		t.Run(rc.name, func(t *testing.T) {
			cmd, action := rc.cmd, rc.action
			if cmd == nil {
				cmd, action = append([]string{"run", "--rm"}, rc.args...), "container.create"
			}
			containers, volumes, execs := azContainers(t, c), azVolumes(t, c), azExecIDs(t, c, azExecTarget)
			since := time.Now()
			r := u.run("", nil, cmd...)

			want := azRefusalMessage + rc.kind + " " + rc.value + ": no rule allows it"
			if r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Errorf("want a refusal with %q:\n%v", want, r)
			}
			// Nothing was created on dockerd: no container, no volume, no
			// exec, not even for a moment (run --rm would remove it again).
			if ev := azCreations(t, c, since); len(ev) > 0 {
				t.Errorf("BYPASS: dockerd created %v after the refusal", ev)
			}
			if created := azNewContainers(t, c, containers); len(created) > 0 {
				t.Errorf("BYPASS: dockerd has new containers after the refusal: %v", created)
				azRemoveNew(t, c, containers)
			}
			if now := azVolumes(t, c); strings.Join(now, ",") != strings.Join(volumes, ",") {
				t.Errorf("BYPASS: dockerd's volumes changed from %v to %v", volumes, now)
				azRemoveVolume(t, c, azBindVolume)
			}
			if now := azExecIDs(t, c, azExecTarget); len(now) != len(execs) {
				t.Errorf("BYPASS: dockerd has new exec instances in %s: %v, before %v", azExecTarget, now, execs)
			}

			rec := g.azRecord(t, "the refused "+action+" of pid "+strconv.Itoa(r.pid), func(rec map[string]any) bool {
				return azPid(rec) == r.pid && rec["action"] == action
			})
			if rec == nil {
				return
			}
			if rec["decision"] != "deny" || azStatus(rec) != 403 || rec["would_deny"] != nil {
				t.Errorf("audit: want decision deny, status 403: %s", azJSON(rec))
			}
			if reason, _ := rec["reason"].(string); !strings.Contains(reason, azCaller+" may not "+rc.kind+" "+rc.value) {
				t.Errorf("audit: reason %q does not name the refused fact", reason)
			}
			azCheckFacts(t, rec, rc.kind, rc.value, "deny")
			if action == "container.create" && rc.kind != "local-image" {
				// The test image is imported: it runs as a local image.
				azCheckFacts(t, rec, "local-image", azImageFact, "allow")
			}
		})
	}
}

func TestAuthzCLIAuditModeForwardsAndRecordsWouldDeny(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, azPolicy(t, false), "--mode", "audit")
	c := azDirect(t, env)
	u := azNewUser(t, g.Host)
	azPrepareRefusals(t, c, u)

	for _, rc := range azRefusals() {
		t.Run(rc.name, func(t *testing.T) {
			cmd, action := rc.cmd, rc.action
			if cmd == nil {
				// The same create request as `run`, without starting what
				// audit mode lets through (privileged would not start on
				// this kernel anyway).
				cmd, action = append([]string{"create", "--label", azLabel + "=audit"}, rc.args...), "container.create"
			}
			containers, volumes := azContainers(t, c), azVolumes(t, c)
			since := time.Now()
			r := u.run("", nil, cmd...)
			t.Cleanup(func() { azRemoveNew(t, c, containers) })
			// dockerd did what was asked: one container, volume or exec
			// (mounting a named volume also logs a volume create).
			ev := azCreations(t, c, since)
			wantEvent := map[string]string{"container.create": "container create ", "volume.create": "volume create ", "container.exec": "container exec_create"}[action]
			if n := len(slices.DeleteFunc(slices.Clone(ev), func(e string) bool { return !strings.HasPrefix(e, wantEvent) })); n != 1 {
				t.Errorf("audit mode: want dockerd to log one %q, its events say %v", wantEvent, ev)
			}

			switch action {
			case "container.create":
				if r.code != 0 {
					t.Errorf("audit mode: want the create forwarded: %v", r)
				}
				created := azNewContainers(t, c, containers)
				if len(created) != 1 {
					t.Errorf("audit mode: want exactly one new container on dockerd, got %v", created)
				}
			case "volume.create":
				if r.code != 0 {
					t.Errorf("audit mode: want the volume created: %v", r)
				}
				now := azVolumes(t, c)
				if len(now) != len(volumes)+1 {
					t.Errorf("audit mode: want the volume on dockerd: before %v, now %v", volumes, now)
				}
				azRemoveVolume(t, c, azBindVolume)
			case "container.exec":
				// Forwarded: dockerd creates the exec; a privileged exec may
				// then fail to start on this kernel, which is dockerd's answer.
				if strings.Contains(r.stderr, "dockgate:") {
					t.Errorf("audit mode: dockgate refused the exec: %v", r)
				}
			}

			rec := g.azRecord(t, "the forwarded "+action+" of pid "+strconv.Itoa(r.pid), func(rec map[string]any) bool {
				return azPid(rec) == r.pid && rec["action"] == action
			})
			if rec == nil {
				return
			}
			if rec["decision"] != "allow" || rec["would_deny"] != true || azStatus(rec) != 201 {
				t.Errorf("audit: want decision allow, would_deny true, status 201: %s", azJSON(rec))
			}
			if reason, _ := rec["reason"].(string); !strings.Contains(reason, azCaller+" may not "+rc.kind+" "+rc.value) {
				t.Errorf("audit: reason %q does not name the fact that would be refused", reason)
			}
			azCheckFacts(t, rec, rc.kind, rc.value, "deny")
		})
	}
}

func TestAuthzCLIOrdinaryCIWorkStillWorks(t *testing.T) {
	env := testbed.Shared(t)
	g := azStartGate(t, env, azPolicy(t, false))
	c := azDirect(t, env)
	u := azNewUser(t, g.Host)
	img := testbed.DefaultImage
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })
	var pids []int
	ok := func(r azResult, want string) {
		t.Helper()
		pids = append(pids, r.pid)
		if r.code != 0 || r.stdout != want {
			t.Errorf("want exit 0 and %q: %v", want, r)
		}
	}

	ok(u.run("", nil, "run", "--rm", img, "echo", "hi"), "hi\n")
	ok(u.run("line one\nline two\n", nil, "run", "-i", "--rm", img, "cat"), "line one\nline two\n")

	name := "e2e-authz-ordinary"
	r := u.run("", nil, "run", "-d", "--name", name, "--label", azLabel+"=ordinary", img, "sh", "-c", "echo started; exec sleep 600")
	pids = append(pids, r.pid)
	if r.code != 0 || len(strings.TrimSpace(r.stdout)) != 64 {
		t.Fatalf("run -d: want the container's ID: %v", r)
	}
	ok(u.run("", nil, "exec", name, "echo", "from exec"), "from exec\n")
	ok(u.run("piped in\n", nil, "exec", "-i", name, "sh", "-c", "cat > /tmp/piped"), "")
	ok(u.run("", nil, "exec", name, "cat", "/tmp/piped"), "piped in\n")

	in := u.writeFile("cp-in.txt", "copied in\n")
	ok(u.run("", nil, "cp", in, name+":/tmp/cp.txt"), "")
	ok(u.run("", nil, "exec", name, "cat", "/tmp/cp.txt"), "copied in\n")
	out := filepath.Join(u.home, "cp-out.txt")
	ok(u.run("", nil, "cp", name+":/tmp/cp.txt", out), "")
	if b, err := os.ReadFile(out); err != nil || string(b) != "copied in\n" {
		t.Errorf("cp out: %q, %v", b, err)
	}

	logs := u.run("", nil, "logs", name)
	for deadline := time.Now().Add(5 * time.Second); logs.stdout != "started\n" && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		logs = u.run("", nil, "logs", name)
	}
	ok(logs, "started\n")

	ps := u.run("", nil, "ps", "--filter", "name="+name, "--format", "{{.Names}} {{.Status}}")
	pids = append(pids, ps.pid)
	if ps.code != 0 || !strings.HasPrefix(ps.stdout, name+" Up ") {
		t.Errorf("ps: want %s up: %v", name, ps)
	}

	// A classic build (BuildKit builds have tests of their own,
	// buildkit_judged_test.go), tagged under ci.local/ as the policy
	// allows, then run.
	u.writeFile("ctx/Dockerfile", "FROM "+img+"\nRUN echo built > /built\n")
	t.Cleanup(func() {
		ctx, cancel := azCtx()
		defer cancel()
		if _, err := c.ImageRemove(ctx, azBuiltImage, dimage.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("remove %s: %v", azBuiltImage, err)
		}
	})
	b := u.run("", []string{"DOCKER_BUILDKIT=0"}, "build", "-q", "-t", azBuiltImage, filepath.Join(u.home, "ctx"))
	pids = append(pids, b.pid)
	if b.code != 0 {
		t.Errorf("classic build: %v", b)
	} else {
		ok(u.run("", nil, "run", "--rm", azBuiltImage, "cat", "/built"), "built\n")
	}

	// Every request of these commands was allowed, and said so.
	time.Sleep(200 * time.Millisecond)
	recs, err := g.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	mine := map[int]bool{}
	for _, p := range pids {
		mine[p] = true
	}
	n := 0
	for _, rec := range recs {
		if !mine[azPid(rec)] || rec["phase"] == "start" {
			continue
		}
		n++
		if rec["decision"] != "allow" || rec["would_deny"] != nil {
			t.Errorf("audit: an ordinary request was not simply allowed: %s", azJSON(rec))
		}
		for _, f := range azFacts(rec) {
			if f["decision"] != "allow" || f["rule"] == "" || f["rule"] == nil {
				t.Errorf("audit: fact %v of %v %v", f, rec["method"], rec["path"])
			}
		}
	}
	if n < len(pids) {
		t.Errorf("audit: %d records from %d commands", n, len(pids))
	}
}
