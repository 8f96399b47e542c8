package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dimage "github.com/docker/docker/api/types/image"

	"github.com/dockgate/dockgate/test/testbed"
)

// TestPolicySuggestFromAnAuditModeTrail is the rollout of dockgate on a
// CI host: a CI job's work (runs with binds of its cache, a service kept
// running, exec, logs, ps, removal) goes through dockgate in audit mode
// under a policy that allows only root, so that every request is recorded
// as would_deny and forwarded; dockgate policy suggest learns a policy
// from that trail, which check accepts, whose tests pass and under which
// replay refuses nothing that succeeded. Enforced, it lets the same job
// (with a new cache directory) run, and refuses what the job never did:
// a privileged container, a bind of /etc, an image it never ran.
func TestPolicySuggestFromAnAuditModeTrail(t *testing.T) {
	env := testbed.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache, _ := hpCache(t)
	audited := azStartGate(t, env, "p, uid:0, *, **, allow\n", "--mode", "audit")
	job := func(u *azUser, dirs ...string) {
		t.Helper()
		for _, d := range dirs {
			u.must("run", "--rm", "--label", azLabel+"=suggest", "-v", cache+"/"+d+":/cache", testbed.DefaultImage, "touch", "/cache/done")
		}
		u.must("run", "-d", "--name", "suggest-svc", "--label", azLabel+"=suggest", testbed.DefaultImage, "sleep", "300")
		u.must("exec", "suggest-svc", "true")
		u.must("logs", "suggest-svc")
		u.must("ps", "-a")
		u.must("rm", "-f", "suggest-svc")
	}
	job(azNewUser(t, audited.Host), "job-1", "job-2")
	audited.azRecord(t, "the service's removal", func(rec map[string]any) bool { return rec["action"] == "container.delete" })

	dockgate := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, env.Bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("dockgate %s: %v", strings.Join(args, " "), err)
		}
		if code != want {
			t.Fatalf("dockgate %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
		}
		t.Logf("$ dockgate %s\n%s", strings.Join(args, " "), stdout.String())
		return stdout.String()
	}
	dir := filepath.Join(t.TempDir(), "suggested")
	dockgate(0, "policy", "suggest", "--config", "", "--out", dir, audited.AuditLog)
	rows, err := os.ReadFile(filepath.Join(dir, "suggested.csv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("suggested.csv:\n%s", rows)
	for _, want := range []string{
		"p, user:nobody, bind, " + cache + "/**, allow",
		"p, user:nobody, local-image, docker.io/test/busybox:*, allow",
	} {
		if !strings.Contains(string(rows), "\n"+want+"\n") {
			t.Errorf("the suggested policy lacks %q", want)
		}
	}
	dockgate(0, "check", "--config", "", "--policy", dir)
	dockgate(0, "policy", "test", "-v", dir)
	dockgate(0, "policy", "replay", "--config", "", "--policy", dir, audited.AuditLog)

	enforced := azStartGate(t, env, string(rows))
	u := azNewUser(t, enforced.Host)
	job(u, "job-3")
	other := "suggest/other:1"
	c, err := env.Dockerd.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.ImageTag(ctx, testbed.DefaultImage, other); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := c.ImageRemove(ctx, other, dimage.RemoveOptions{}); err != nil {
			t.Errorf("remove %s: %v", other, err)
		}
	}()
	for _, escalation := range [][]string{
		{"run", "--rm", "--privileged", testbed.DefaultImage, "true"},
		{"run", "--rm", "-v", "/etc:/host-etc", testbed.DefaultImage, "true"},
		{"run", "--rm", other, "true"},
	} {
		r := u.run("", nil, escalation...)
		if r.code == 0 || !strings.Contains(r.stderr, "dockgate: ") {
			t.Errorf("the suggested policy does not refuse what the job never did: %v", r)
		}
		t.Logf("$ docker %s\n%s", strings.Join(escalation, " "), r.stderr)
	}
}
