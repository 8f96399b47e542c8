// Package dockerdtest is a fake dockerd for the tests of what asks dockerd
// through internal/dockerd: the client's own tests and the facts' tests
// that go through the real client.
package dockerdtest

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

// VersionPrefix matches the API version a request path starts with.
var VersionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

// Serve serves h as dockerd on a Unix socket until t ends, and returns
// the socket's upstream URL.
func Serve(t testing.TB, h http.Handler) string {
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

// Objects answers the inspect calls the facts make about a fixed set of
// objects, and records the paths it was asked for.
type Objects struct {
	// Delay holds every answer back this long.
	Delay time.Duration
	mu    sync.Mutex
	paths []string
}

// Paths are the request paths asked so far.
func (f *Objects) Paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.paths)
}

func (f *Objects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
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
	p := VersionPrefix.ReplaceAllString(r.URL.Path, "")
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
