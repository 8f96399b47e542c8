package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/authz/policy"
)

// fakeDockerd answers the inspect calls DockerInspector makes, on a Unix
// socket, and records the paths it was asked for.
type fakeDockerd struct {
	mu    sync.Mutex
	paths []string
	delay time.Duration
}

var versionPrefixRE = regexp.MustCompile(`^/v[0-9.]+`)

func (f *fakeDockerd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Content-Type", "application/json")
	reply := func(status int, v any) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	p := versionPrefixRE.ReplaceAllString(r.URL.Path, "")
	switch p {
	case "/_ping":
		_, _ = w.Write([]byte("OK"))
	case "/volumes/bindvol":
		reply(200, map[string]any{"Name": "bindvol", "Driver": "local", "Options": map[string]string{"type": "none", "o": "bind", "device": "/etc"}})
	case "/containers/builder/json":
		reply(200, map[string]any{"Id": "abc", "Name": "/builder", "Mounts": []map[string]any{
			{"Type": "bind", "Source": "/srv/ci-cache", "Destination": "/cache"},
			{"Type": "volume", "Name": "bindvol", "Source": "/var/lib/docker/volumes/bindvol/_data", "Destination": "/v"},
			{"Type": "tmpfs", "Destination": "/tmp"},
		}, "HostConfig": map[string]any{"Devices": []map[string]any{{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}}}})
	case "/services/web":
		reply(200, map[string]any{"ID": "s1", "Spec": map[string]any{"Name": "web"}, "PreviousSpec": map[string]any{"Name": "web", "TaskTemplate": map[string]any{"ContainerSpec": map[string]any{"Image": "busybox", "CapabilityAdd": []string{"SYS_ADMIN"}}}}})
	case "/services/fresh":
		reply(200, map[string]any{"ID": "s2", "Spec": map[string]any{"Name": "fresh"}})
	case "/images/reg.example.com/approved/app:1/json":
		reply(200, map[string]any{"Id": "sha256:1111", "RepoTags": []string{"reg.example.com/approved/app:1", "mine:1"}, "RepoDigests": []string{"reg.example.com/approved/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}})
	case "/images/mine:1/json":
		reply(200, map[string]any{"Id": "sha256:1111", "RepoTags": []string{"reg.example.com/approved/app:1", "mine:1"}, "RepoDigests": []string{}})
	case "/networks/reaper_default":
		// Two tenants' testcontainers each made one.
		reply(400, map[string]string{"message": "network reaper_default is ambiguous (2 matches found based on name)"})
	case "/volumes/busy":
		reply(409, map[string]string{"message": "volume is in use"})
	case "/containers/broken/json", "/images/broken/json":
		reply(500, map[string]string{"message": "daemon on fire"})
	default:
		reply(404, map[string]string{"message": "No such object: " + p})
	}
}

// startFakeDockerd serves h as dockerd on a Unix socket until t ends.
func startFakeDockerd(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

func TestDockerInspector(t *testing.T) {
	fake := &fakeDockerd{}
	in, err := NewDockerInspector(startFakeDockerd(t, fake))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := context.Background()

	t.Run("volume options", func(t *testing.T) {
		driver, opts, found, err := in.VolumeOptions(ctx, "bindvol")
		if err != nil || !found || driver != "local" || opts["device"] != "/etc" || opts["o"] != "bind" {
			t.Fatalf("got %q %v %v %v", driver, opts, found, err)
		}
	})
	t.Run("volume not found", func(t *testing.T) {
		_, _, found, err := in.VolumeOptions(ctx, "nope")
		if err != nil || found {
			t.Fatalf("got found=%v err=%v", found, err)
		}
	})
	t.Run("container mounts", func(t *testing.T) {
		m, found, err := in.ContainerMounts(ctx, "builder")
		if err != nil || !found || m.ID != "abc" || strings.Join(m.Binds, ",") != "/srv/ci-cache" || strings.Join(m.Volumes, ",") != "bindvol" || strings.Join(m.Devices, ",") != "/dev/fuse" {
			t.Fatalf("got %+v %v %v", m, found, err)
		}
	})
	t.Run("container not found", func(t *testing.T) {
		_, found, err := in.ContainerMounts(ctx, "nope")
		if err != nil || found {
			t.Fatalf("got found=%v err=%v", found, err)
		}
	})
	for _, tc := range []struct {
		name, kind, object string
		status             int
		message            string
	}{
		{"network name two networks share", ObjectNetwork, "reaper_default", http.StatusBadRequest, "network reaper_default is ambiguous (2 matches found based on name)"},
		{"conflict", ObjectVolume, "busy", http.StatusConflict, "volume is in use"},
	} {
		t.Run("dockerd's answer to an owner lookup: "+tc.name, func(t *testing.T) {
			_, _, found, err := in.ObjectOwner(ctx, tc.kind, tc.object)
			var da *DockerdAnswer
			if found || !errors.As(err, &da) || da.Status != tc.status || da.Message != tc.message {
				t.Fatalf("got found=%v err=%v (%#v), want dockerd's %d %q", found, err, da, tc.status, tc.message)
			}
			re, ok := upstreamError(tc.kind+" "+tc.object, err).(*RouteError)
			if !ok || re.Status != tc.status || re.Message != tc.message {
				t.Fatalf("answered %#v, want %d %q", re, tc.status, tc.message)
			}
		})
	}
	t.Run("a 500 is no answer to pass on", func(t *testing.T) {
		_, _, _, err := in.ObjectOwner(ctx, ObjectContainer, "broken")
		var da *DockerdAnswer
		if err == nil || errors.As(err, &da) {
			t.Fatalf("got %v", err)
		}
		if re, ok := upstreamError("container broken", err).(*RouteError); !ok || re.Status != http.StatusBadGateway {
			t.Fatalf("answered %#v, want 502", re)
		}
	})
	t.Run("daemon error is an error", func(t *testing.T) {
		_, found, err := in.ContainerMounts(ctx, "broken")
		if err == nil || found {
			t.Fatalf("got found=%v err=%v", found, err)
		}
	})
	t.Run("service previous spec", func(t *testing.T) {
		spec, found, err := in.ServicePreviousSpec(ctx, "web")
		if err != nil || !found || spec == nil || spec.TaskTemplate.ContainerSpec == nil || spec.TaskTemplate.ContainerSpec.CapabilityAdd[0] != "SYS_ADMIN" {
			t.Fatalf("got %+v %v %v", spec, found, err)
		}
		spec, found, err = in.ServicePreviousSpec(ctx, "fresh")
		if err != nil || !found || spec != nil {
			t.Fatalf("fresh: got %+v %v %v", spec, found, err)
		}
	})
	t.Run("names that leave the path segment are never sent", func(t *testing.T) {
		for _, name := range []string{"../containers/json", "a/b", "x?all=1", "x#y", "", "%2e%2e"} {
			if _, _, _, err := in.VolumeOptions(ctx, name); err == nil {
				t.Errorf("volume %q: no error", name)
			}
			if _, _, err := in.ContainerMounts(ctx, name); err == nil {
				t.Errorf("container %q: no error", name)
			}
			// No container or exec can have such a name: not found, as
			// dockerd answers (a client falls back on its 404).
			for _, kind := range []string{ObjectContainer, ObjectExec} {
				if _, _, found, err := in.ObjectOwner(ctx, kind, name); err != nil || found {
					t.Errorf("%s %q: found %v, err %v; want not found", kind, name, found, err)
				}
			}
			if _, _, _, err := in.ObjectOwner(ctx, ObjectNetwork, name); err == nil {
				t.Errorf("network %q: no error", name)
			}
		}
		fake.mu.Lock()
		defer fake.mu.Unlock()
		for _, p := range fake.paths {
			if strings.Contains(p, "..") || strings.Contains(p, "/a/b") || strings.Contains(p, "%") {
				t.Errorf("sent %q", p)
			}
		}
	})
	t.Run("image provenance", func(t *testing.T) {
		id, digests, tags, found, err := in.ImageProvenance(ctx, "reg.example.com/approved/app:1")
		if err != nil || !found || id != "sha256:1111" || len(digests) != 1 || len(tags) != 2 {
			t.Fatalf("got %q %v %v %v %v", id, digests, tags, found, err)
		}
		if _, _, _, found, err := in.ImageProvenance(ctx, "nope"); err != nil || found {
			t.Fatalf("not found: got found=%v err=%v", found, err)
		}
		if _, _, _, _, err := in.ImageProvenance(ctx, "broken"); err == nil {
			t.Fatal("daemon error: no error")
		}
		for _, ref := range []string{"../containers/json", "x?all=1", "x#y", "", "%2e%2e", "Upper"} {
			if _, _, _, _, err := in.ImageProvenance(ctx, ref); err == nil {
				t.Errorf("image %q: no error", ref)
			}
		}
	})
	t.Run("run facts through the real inspector", func(t *testing.T) {
		extract := newExtractor(fakeHost(t))
		for ref, want := range map[string]string{
			"reg.example.com/approved/app:1": "image reg.example.com/approved/app:1",
			"mine:1":                         "local-image docker.io/library/mine:1",
		} {
			got, err := runFactCase(t, NewRouter(), extract, in, factCase{target: createTarget, body: `{"Image":"` + ref + `"}`})
			if err != nil || len(got) == 0 || got[0].Kind+" "+got[0].Value != want {
				t.Errorf("%s: got %v %v, want %s first", ref, got, err, want)
			}
		}
	})
	t.Run("facts through the real inspector", func(t *testing.T) {
		extract := newExtractor(fakeHost(t))
		got, err := runFactCase(t, NewRouter(), extract, in, factCase{target: createTarget, body: create(`{"VolumesFrom":["builder"],"Binds":["bindvol:/d"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		want := []policy.Fact{{Kind: "image", Value: "docker.io/library/busybox:latest"}, {Kind: "bind", Value: "/etc"}, {Kind: "bind", Value: "/srv/ci-cache"}}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	})
}

func TestDockerInspectorTimesOut(t *testing.T) {
	fake := &fakeDockerd{delay: 2 * time.Second}
	in, err := NewDockerInspector(startFakeDockerd(t, fake))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, _, _, err = in.VolumeOptions(context.Background(), "bindvol")
	if err == nil {
		t.Fatal("no error from a daemon that does not answer")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") && !strings.Contains(err.Error(), "timeout") {
		t.Logf("error: %v", err)
	}
}

func TestDockerInspectorUnreachable(t *testing.T) {
	in, err := NewDockerInspector("unix://" + filepath.Join(t.TempDir(), "missing.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	extract := newExtractor(fakeHost(t))
	_, err = runFactCase(t, NewRouter(), extract, in, factCase{target: createTarget, body: create(`{"Binds":["v:/d"]}`)})
	var re *RouteError
	if !errors.As(err, &re) || re.Status != http.StatusBadGateway {
		t.Fatalf("want a 502 refusal, got %v", err)
	}
}

// The retry-once rule, against a dockerd that misbehaves on the first
// requests for a path: a question dockerd never answered is asked again
// once; an answer, even an error, is final.
func TestDockerInspectorRetriesOnce(t *testing.T) {
	path := "/containers/" + idA + "/json"
	reset := func(w http.ResponseWriter) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	for _, c := range []struct {
		name      string
		misbehave func(n int, w http.ResponseWriter, r *http.Request) bool
		wantFound bool
		wantErr   bool
		wantAsked int
	}{
		{"connection closed unanswered once, then answered", func(n int, w http.ResponseWriter, _ *http.Request) bool {
			if n == 1 {
				reset(w)
			}
			return n == 1
		}, true, false, 2},
		{"connection closed unanswered twice is an error", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			reset(w)
			return true
		}, false, true, 2},
		{"an attempt that gets no answer in its half of the time, then answered", func(n int, _ http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				<-r.Context().Done()
			}
			return n == 1
		}, true, false, 2},
		{"a 500 is an answer: not asked again", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"message":"daemon on fire"}`))
			return true
		}, false, true, 1},
		{"a 404 is an answer: not found, not asked again", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"message":"No such container"}`))
			return true
		}, false, false, 1},
		{"a 409 is an answer: not asked again", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(409)
			_, _ = w.Write([]byte(`{"message":"conflict"}`))
			return true
		}, false, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newOwnerFake()
			f.misbehave = func(p string, n int, w http.ResponseWriter, r *http.Request) bool {
				return p == path && c.misbehave(n, w, r)
			}
			in, err := NewDockerInspector(startFakeDockerd(t, f))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			// The deadline whose first half the first attempt gets: long
			// enough for a loaded machine, short enough to wait out.
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			id, labels, found, err := in.ObjectOwner(ctx, ObjectContainer, idA)
			if (err != nil) != c.wantErr || found != c.wantFound {
				t.Fatalf("got %q %v found=%v err=%v", id, labels, found, err)
			}
			if found && labels[OwnerLabel] != "user:alice" {
				t.Fatalf("labels %v", labels)
			}
			if n := f.count(path); n != c.wantAsked {
				t.Fatalf("dockerd asked %d times, want %d", n, c.wantAsked)
			}
		})
	}
}

// The lookup is bounded by the request's own context, however long the
// inspector's upper bound.
func TestDockerInspectorDeadlineFromRequest(t *testing.T) {
	f := newOwnerFake()
	ended := make(chan struct{}, 2)
	f.misbehave = func(_ string, _ int, _ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		ended <- struct{}{}
		return true
	}
	in, err := NewDockerInspector(startFakeDockerd(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Timeout = time.Hour
	for _, c := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"the request's deadline passes", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
		{"the request is cancelled (client gone, dockgate stopping)", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := c.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, _, _, err := in.ObjectOwner(ctx, ObjectContainer, "job-a")
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
			case <-time.After(time.Minute):
				t.Fatal("the lookup outlived the request's context (hang)")
			}
			select {
			case <-ended:
			case <-time.After(time.Minute):
				t.Fatal("dockerd's side of the lookup never ended")
			}
		})
	}
}
