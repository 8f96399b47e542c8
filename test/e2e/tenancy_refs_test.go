package e2e

// Tenancy (beyond the container routes): containers named
// inside bodies and queries (VolumesFrom, container: namespaces, commit),
// execs, volumes, networks and built images say whose they are; a
// tenant's requests are forwarded with the full IDs that were judged; what
// a tenant builds or commits carries its owner label. Every check of what
// happened looks at dockerd directly.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/dockgate/dockgate/test/testbed"
)

// tnCurl sends one request as uid through the dockgate socket and returns
// the status line's code and the body.
func tnCurl(t *testing.T, socket string, uid int, method, path string) (int, string) {
	t.Helper()
	ctx, cancel := azCtx()
	defer cancel()
	id := strconv.Itoa(uid)
	cmd := exec.CommandContext(ctx, testbed.RequireBinary(t, "setpriv"), "--reuid="+id, "--regid="+id, "--clear-groups",
		testbed.RequireBinary(t, "curl"), "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--unix-socket", socket, "http://docker"+path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s %s as %d: %v", method, path, uid, err)
	}
	body, code, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if i := strings.LastIndexByte(strings.TrimSpace(string(out)), '\n'); i >= 0 {
		body, code = string(out[:i]), strings.TrimSpace(string(out[i+1:]))
	}
	n, _ := strconv.Atoi(code)
	return n, body
}

func TestTenancyReferences(t *testing.T) {
	g, c, a, b, _ := tnBed(t, azPolicy(t, false,
		"g, uid:"+strconv.Itoa(tnUID2)+", role:ci",
		"p, role:ci, tenant, uid, allow",
		// The namespaces of one's own containers are a CI job's to share;
		// whose container it is, is the owner fact's business.
		"p, role:ci, namespace, pid=container, allow",
		"p, role:ci, namespace, network=container, allow",
		"p, role:ci, namespace, ipc=container, allow",
	))
	img := testbed.DefaultImage
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	agentID := tnAgent(t, c, "e2e-tn-ref-agent", "sleep", "600")
	idA := strings.TrimSpace(a.must("run", "-d", "--name", "e2e-tn-ref-a", "--label", tnTestLabel, img, "sleep", "600"))
	idB := strings.TrimSpace(b.must("run", "-d", "--name", "e2e-tn-ref-b", "--label", tnTestLabel, img, "sleep", "600"))

	t.Run("containers named in bodies and queries", func(t *testing.T) {
		defer tnReport(t, a)()
		created := azContainers(t, c)
		for _, tc := range []struct {
			refs []string
			want string
		}{
			{[]string{"e2e-tn-ref-b", idB[:12]}, "other"},
			{[]string{"e2e-tn-ref-agent", agentID[:12]}, "none"},
		} {
			for _, ref := range tc.refs {
				a.ownerRefused(tc.want, "run", "--rm", "--volumes-from", ref, img, "true")
				a.ownerRefused(tc.want, "run", "--rm", "--pid", "container:"+ref, img, "true")
				a.ownerRefused(tc.want, "run", "--rm", "--network", "container:"+ref, img, "true")
				a.ownerRefused(tc.want, "run", "--rm", "--ipc", "container:"+ref, img, "true")
				a.ownerRefused(tc.want, "commit", ref, "ci.local/e2e-tn-stolen")
				a.ownerRefused(tc.want, "export", "-o", "stolen.tar", ref)
				a.ownerRefused(tc.want, "cp", ref+":/etc/hostname", "stolen")
				a.ownerRefused(tc.want, "top", ref)
				a.ownerRefused(tc.want, "attach", ref)
			}
		}
		if n := azNewContainers(t, c, created); len(n) > 0 {
			t.Errorf("BYPASS: containers were created: %v", n)
		}
		if _, err := c.ImageInspect(ctx, "ci.local/e2e-tn-stolen"); err == nil {
			t.Errorf("BYPASS: a commit of another's container was made")
		}
		if _, err := os.Stat(filepath.Join(a.home, "stolen.tar")); err == nil {
			if fi, _ := os.Stat(filepath.Join(a.home, "stolen.tar")); fi.Size() > 0 {
				t.Errorf("BYPASS: an export of another's container was written")
			}
		}
	})

	t.Run("own references are pinned to full IDs", func(t *testing.T) {
		defer tnReport(t, a)()
		id := strings.TrimSpace(a.must("create", "--name", "e2e-tn-ref-a2", "--label", tnTestLabel,
			"--volumes-from", "e2e-tn-ref-a:ro", "--pid", "container:"+idA[:12], "--network", "container:e2e-tn-ref-a", img, "true"))
		ci, err := c.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		hc := ci.HostConfig
		if len(hc.VolumesFrom) != 1 || hc.VolumesFrom[0] != idA+":ro" || string(hc.PidMode) != "container:"+idA || string(hc.NetworkMode) != "container:"+idA {
			t.Errorf("dockerd got VolumesFrom %v PidMode %q NetworkMode %q; want %s pinned", hc.VolumesFrom, hc.PidMode, hc.NetworkMode, idA)
		}
		a.must("top", "e2e-tn-ref-a")
		rec := g.azRecord(t, "top by name", func(rec map[string]any) bool {
			return rec["action"] == "container.top" && strings.Contains(rec["path"].(string), "/containers/e2e-tn-ref-a/top")
		})
		if fwd, _ := rec["forwarded"].(string); !strings.Contains(fwd, "/containers/"+idA+"/top") {
			t.Errorf("top by name forwarded as %q, want the full ID", fwd)
		}
		a.must("commit", "e2e-tn-ref-a", "ci.local/e2e-tn-commit-a")
		t.Cleanup(func() { c.ImageRemove(context.Background(), "ci.local/e2e-tn-commit-a", imageRemoveOptions()) })
		im, err := c.ImageInspect(ctx, "ci.local/e2e-tn-commit-a")
		if err != nil {
			t.Fatal(err)
		}
		if got := im.Config.Labels[tnOwnerKey]; got != tnOwnerA {
			t.Errorf("committed image's owner label %q, want %q", got, tnOwnerA)
		}
	})

	t.Run("execs", func(t *testing.T) {
		ex, err := c.ContainerExecCreate(ctx, idB, container.ExecOptions{Cmd: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		if code, body := tnCurl(t, g.Socket, azUID, "GET", "/v1.41/exec/"+ex.ID+"/json"); code != 403 || !strings.Contains(body, "may not owner other") {
			t.Errorf("a inspecting b's exec: %d %s", code, body)
		}
		if code, body := tnCurl(t, g.Socket, azUID, "POST", "/v1.41/exec/"+ex.ID+"/start"); code != 403 || !strings.Contains(body, "may not owner other") {
			t.Errorf("a starting b's exec: %d %s", code, body)
		}
		if ei, err := c.ContainerExecInspect(ctx, ex.ID); err != nil || ei.Running || ei.Pid != 0 {
			t.Errorf("BYPASS: b's exec was started: %+v %v", ei, err)
		}
		if code, body := tnCurl(t, g.Socket, tnUID2, "GET", "/v1.41/exec/"+ex.ID+"/json"); code != 200 || !strings.Contains(body, idB) {
			t.Errorf("b inspecting its own exec: %d %s", code, body)
		}
	})

	t.Run("volumes and networks", func(t *testing.T) {
		defer tnReport(t, a, b)()
		a.must("volume", "create", "--label", tnTestLabel, "e2e-tn-ref-vol-a")
		b.must("volume", "create", "--label", tnTestLabel, "e2e-tn-ref-vol-b")
		if _, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: "e2e-tn-ref-vol-agent"}); err != nil {
			t.Fatal(err)
		}
		a.must("network", "create", "--label", tnTestLabel, "e2e-tn-ref-net-a")
		b.must("network", "create", "--label", tnTestLabel, "e2e-tn-ref-net-b")
		if _, err := c.NetworkCreate(ctx, "e2e-tn-ref-net-agent", network.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			tnCleanup(t, c, []string{"e2e-tn-ref-vol-a", "e2e-tn-ref-vol-b", "e2e-tn-ref-vol-agent"}, []string{"e2e-tn-ref-net-a", "e2e-tn-ref-net-b", "e2e-tn-ref-net-agent"})
		})
		a.ownerRefused("other", "volume", "inspect", "e2e-tn-ref-vol-b")
		a.ownerRefused("other", "volume", "rm", "e2e-tn-ref-vol-b")
		a.ownerRefused("none", "volume", "rm", "-f", "e2e-tn-ref-vol-agent")
		a.ownerRefused("other", "run", "--rm", "-v", "e2e-tn-ref-vol-b:/x", img, "true")
		a.ownerRefused("none", "run", "--rm", "--mount", "type=volume,source=e2e-tn-ref-vol-agent,target=/x", img, "true")
		a.ownerRefused("other", "run", "--rm", "--network", "e2e-tn-ref-net-b", img, "true")
		a.ownerRefused("other", "network", "inspect", "e2e-tn-ref-net-b")
		a.ownerRefused("other", "network", "rm", "e2e-tn-ref-net-b")
		a.ownerRefused("none", "network", "rm", "e2e-tn-ref-net-agent")
		a.ownerRefused("other", "network", "connect", "e2e-tn-ref-net-b", "e2e-tn-ref-a")
		a.ownerRefused("other", "network", "connect", "e2e-tn-ref-net-a", "e2e-tn-ref-b")
		a.ownerRefused("none", "network", "connect", "e2e-tn-ref-net-a", "e2e-tn-ref-agent")
		for _, v := range []string{"e2e-tn-ref-vol-b", "e2e-tn-ref-vol-agent"} {
			if _, err := c.VolumeInspect(ctx, v); err != nil {
				t.Errorf("BYPASS: volume %s: %v", v, err)
			}
		}
		for _, n := range []string{"e2e-tn-ref-net-b", "e2e-tn-ref-net-agent"} {
			ni, err := c.NetworkInspect(ctx, n, network.InspectOptions{})
			if err != nil {
				t.Errorf("BYPASS: network %s: %v", n, err)
			} else if len(ni.Containers) > 0 {
				t.Errorf("BYPASS: network %s has containers %v", n, ni.Containers)
			}
		}
		a.must("volume", "inspect", "e2e-tn-ref-vol-a")
		a.must("network", "connect", "e2e-tn-ref-net-a", "e2e-tn-ref-a")
		a.must("network", "disconnect", "e2e-tn-ref-net-a", idA[:12])
		a.must("network", "rm", "e2e-tn-ref-net-a")
		a.must("volume", "rm", "e2e-tn-ref-vol-a")
	})

	t.Run("volumes a job's containers create", func(t *testing.T) {
		defer tnReport(t, a, b)()
		vols := []string{"e2e-tn-ref-auto", "e2e-tn-ref-automnt", "e2e-tn-ref-forged"}
		t.Cleanup(func() { tnCleanup(t, c, vols, nil) })
		a.must("run", "--rm", "-v", vols[0]+":/x", img, "sh", "-c", "echo kept > /x/f")
		a.must("run", "--rm", "--mount", "type=volume,source="+vols[1]+",target=/x", img, "true")
		for _, v := range vols[:2] {
			vi, err := c.VolumeInspect(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			if vi.Labels[tnOwnerKey] != tnOwnerA {
				t.Errorf("volume %s made by a's container: labels %v, want the owner %s", v, vi.Labels, tnOwnerA)
			}
		}
		if out := a.must("run", "--rm", "-v", vols[0]+":/x", img, "cat", "/x/f"); out != "kept\n" {
			t.Errorf("a's second job on its volume: %q", out)
		}
		b.ownerRefused("other", "run", "--rm", "-v", vols[0]+":/x", img, "true")
		a.refused("run", "--rm", "--mount", "type=volume,source="+vols[2]+",target=/x,volume-label="+tnOwnerKey+"="+tnOwnerB, img, "true")
		if _, err := c.VolumeInspect(ctx, vols[2]); err == nil {
			t.Errorf("BYPASS: a volume labelled for another owner was created")
		}
	})

	t.Run("built images", func(t *testing.T) {
		defer tnReport(t, a, b)()
		dir := filepath.Join(a.home, "ctx")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+img+"\nRUN echo built > /built\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		a.must("build", "-q", "-t", "ci.local/e2e-tn-img-a", dir)
		t.Cleanup(func() { c.ImageRemove(context.Background(), "ci.local/e2e-tn-img-a", imageRemoveOptions()) })
		im, err := c.ImageInspect(ctx, "ci.local/e2e-tn-img-a")
		if err != nil {
			t.Fatal(err)
		}
		if got := im.Config.Labels[tnOwnerKey]; got != tnOwnerA {
			t.Fatalf("built image's owner label %q, want %q", got, tnOwnerA)
		}
		b.ownerRefused("other", "tag", "ci.local/e2e-tn-img-a", "ci.local/e2e-tn-img-stolen")
		b.ownerRefused("other", "rmi", "ci.local/e2e-tn-img-a")
		b.ownerRefused("other", "save", "-o", "stolen.tar", "ci.local/e2e-tn-img-a")
		b.ownerRefused("other", "push", "ci.local/e2e-tn-img-a")
		if _, err := c.ImageInspect(ctx, "ci.local/e2e-tn-img-a"); err != nil {
			t.Errorf("BYPASS: a's image: %v", err)
		}
		if _, err := c.ImageInspect(ctx, "ci.local/e2e-tn-img-stolen"); err == nil {
			t.Errorf("BYPASS: b tagged a's image")
		}
		a.must("tag", "ci.local/e2e-tn-img-a", "ci.local/e2e-tn-img-a:2")
		a.must("rmi", "ci.local/e2e-tn-img-a:2")
		// Base images belong to nobody: everyone may use and tag them,
		// and nobody may remove or untag them, since that breaks every
		// job that uses them (an untag of a name of one is refused too).
		b.must("tag", img, "ci.local/e2e-tn-base")
		t.Cleanup(func() { c.ImageRemove(context.Background(), "ci.local/e2e-tn-base", imageRemoveOptions()) })
		b.ownerRefused("none", "rmi", "ci.local/e2e-tn-base")
		if _, err := c.ImageInspect(ctx, "ci.local/e2e-tn-base"); err != nil {
			t.Errorf("BYPASS: b untagged a base image: %v", err)
		}
	})
}

// tnReport makes users report to the subtest t until the returned
// function puts their test back.
func tnReport(t *testing.T, users ...*tnUser) func() {
	outer := make([]*testing.T, len(users))
	for i, u := range users {
		outer[i], u.t = u.t, t
	}
	return func() {
		for i, u := range users {
			u.t = outer[i]
		}
	}
}

func imageRemoveOptions() dimage.RemoveOptions {
	return dimage.RemoveOptions{Force: true, PruneChildren: true}
}
