package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/drift"
	"github.com/dockgate/dockgate/test/testbed"
)

// TestAuditDriftReportsWorkAroundDockgate runs a small CI job through
// dockgate with the real CLI (a run with a bind of its cache, a container
// kept running and an exec into it, its removal) while somebody creates a
// privileged container directly on dockerd's socket with the Go SDK.
// dockgate audit drift over dockgate's trail reports exactly that
// container, with what dockerd says of it; among the runtime events, the
// exec and the bind as allowed by dockgate for the job's user, and the
// privileged container as not through dockgate. The dockerd is the test's
// own, so that no other test's objects are in its view.
func TestAuditDriftReportsWorkAroundDockgate(t *testing.T) {
	env := testbed.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("/tmp", "dgdr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	own, err := testbed.StartEngine(ctx, filepath.Join(dir, "d"), env.Dockerd.Engine)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the gate's: it stops after dockgate does.
	t.Cleanup(func() {
		if err := own.Stop(); err != nil {
			t.Errorf("stop the test's dockerd: %v", err)
		}
	})
	if err := own.ImportImage(ctx, testbed.DefaultImage); err != nil {
		t.Fatal(err)
	}
	cache, _ := hpCache(t)
	g := azStartGateOn(t, env, own.Host, azPolicy(t, false, "p, role:ci, bind, "+cache+"/**, allow"))
	u := azNewUser(t, g.Host)
	// The period begins after the image was put on dockerd directly
	// (dockerd lists create times in whole seconds).
	time.Sleep(1100 * time.Millisecond)
	since := time.Now()

	u.must("run", "--rm", "--name", "drift-cache", "-v", cache+"/job-1:/cache", testbed.DefaultImage, "true")
	u.must("run", "-d", "--name", "drift-job", testbed.DefaultImage, "sleep", "300")
	u.must("exec", "drift-job", "true")
	c, err := own.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Privileged containers cannot start on these machines; created, they
	// are what an auditor asks about.
	direct, err := c.ContainerCreate(ctx, &container.Config{Image: testbed.DefaultImage, Cmd: []string{"true"}},
		&container.HostConfig{Privileged: true}, nil, nil, "drift-direct")
	if err != nil {
		t.Fatal(err)
	}
	u.must("rm", "-f", "drift-job")
	g.azRecord(t, "the job's removal", func(rec map[string]any) bool { return rec["action"] == "container.delete" })

	driftRun := func(format string) (int, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, env.Bin, "audit", "drift", "--config", "", "--upstream", own.Host,
			"--since", since.Format(time.RFC3339Nano), "--format", format, g.AuditLog)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("dockgate audit drift: %v\n%s", err, stderr.String())
		}
		if code == 2 {
			t.Fatalf("dockgate audit drift: exit 2\n%s", stderr.String())
		}
		return code, stdout.String()
	}
	code, out := driftRun("json")
	var rep drift.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if code != 1 || len(rep.Drift) != 1 || rep.Drift[0].Object != "container" || rep.Drift[0].ID != direct.ID {
		t.Errorf("drift: exit %d, want 1 and exactly the container %.12s created on dockerd's socket:\n%s", code, direct.ID, out)
	} else if f := rep.Drift[0]; f.Attributes["image"] != testbed.DefaultImage || f.Name != "drift-direct" {
		t.Errorf("the drift does not say what dockerd says of the container: %+v", f)
	}
	var runtime []string
	for _, f := range rep.Runtime {
		who := "not through dockgate"
		if f.Allowed {
			who = "allowed for " + f.Caller
			if f.RequestID == "" {
				t.Errorf("allowed without a request: %+v", f)
			}
		}
		runtime = append(runtime, f.What+" "+f.Name+" "+strings.Join(f.Binds, ",")+" "+who)
	}
	want := []string{
		drift.WhatHostBind + " drift-cache " + cache + "/job-1 allowed for nobody",
		drift.WhatExec + " drift-job  allowed for nobody",
		drift.WhatPrivileged + " drift-direct  not through dockgate",
	}
	if strings.Join(runtime, "\n") != strings.Join(want, "\n") {
		t.Errorf("runtime events:\n%s\nwant:\n%s", strings.Join(runtime, "\n"), strings.Join(want, "\n"))
	}
	// The text report, for the rollout guide.
	_, text := driftRun("text")
	if !strings.Contains(text, "DRIFT: 1 object appeared") {
		t.Errorf("text report:\n%s", text)
	}
	t.Logf("dockgate audit drift:\n%s", text)
}
