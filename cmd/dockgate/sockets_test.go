package main

import (
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/proxy"
)

// TestDockerSocketsOfListeners: the extractor is told dockgate's Unix
// sockets in order (TLS listeners have no path) and dockerd's when it is
// reached over a Unix socket.
func TestDockerSocketsOfListeners(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	var ls []net.Listener
	for _, p := range []string{first, second} {
		l, err := proxy.ListenUnix(p, 0o600, "")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, l)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	ls = append([]net.Listener{tcp}, ls...)
	for _, tc := range []struct {
		upstream string
		want     authz.DockerSockets
	}{
		{"unix:///var/run/docker.sock", authz.DockerSockets{Listen: []string{first, second}, Upstream: "/var/run/docker.sock"}},
		{"tcp://127.0.0.1:2375", authz.DockerSockets{Listen: []string{first, second}}},
	} {
		up, err := proxy.ParseUpstream(tc.upstream)
		if err != nil {
			t.Fatal(err)
		}
		if got := dockerSockets(up, ls); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.upstream, got, tc.want)
		}
	}
}
