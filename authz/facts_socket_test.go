package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/authz/policy"
)

// socketHost is fakeHost with more ways to reach a socket:
//
//	/srv/hard.sock      a hard link of /run/docker.sock
//	/srv/sock-link      -> /run/docker.sock
//	/srv/own-hard.sock  a hard link of dockgate's /run/dockgate/docker.sock
//	/srv/plain.sock     another file, no Docker socket
//	/srv/dockerd/api.sock  where a test's dockerd listens instead
func socketHost(t *testing.T) hostFS {
	t.Helper()
	h := fakeHost(t)
	on := func(p string) string { return filepath.Join(h.root, p) }
	if err := os.MkdirAll(on("srv/dockerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"srv/plain.sock", "srv/dockerd/api.sock", "run/containerd.sock"} {
		if err := os.WriteFile(on(f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"srv/hard.sock": "run/docker.sock", "srv/own-hard.sock": "run/dockgate/docker.sock"} {
		if err := os.Link(on(target), on(link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/run/docker.sock", on("srv/sock-link")); err != nil {
		t.Fatal(err)
	}
	return h
}

// socketInspector is the fake daemon with containers whose recorded binds
// are Docker sockets: builder's dockgate's, direct's dockerd's (created
// against dockerd itself), and one with no socket at all.
func socketInspector() *fakeInspector {
	in := newFakeInspector()
	in.containers["nosock"] = fakeContainer{binds: []string{"/srv/ci-cache"}}
	in.containers["hardlinked"] = fakeContainer{binds: []string{"/srv/hard.sock"}}
	return in
}

// TestDockerSocketFacts: a bind of a Docker socket, however it is named,
// is the docker-socket fact instead of bind; where dockgate cannot
// delegate a daemon's socket it stays bind; other files are binds.
func TestDockerSocketFacts(t *testing.T) {
	host := socketHost(t)
	in := socketInspector()
	moved := host
	moved.sockets = DockerSockets{Listen: []string{"/run/dockgate/docker.sock"}, Upstream: "/srv/dockerd/api.sock"}
	unlistened := host
	unlistened.sockets = DockerSockets{Upstream: "/var/run/docker.sock"}
	const svc = `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Mounts":[{"Type":"bind","Source":"/var/run/docker.sock","Target":"/s"}]}}}`
	for _, tc := range []struct {
		name   string
		host   hostFS
		target string
		body   string
		want   []string // facts of kind docker-socket or bind, in order
		status int
	}{
		{name: "exact path", body: create(`{"Binds":["/run/docker.sock:/s"]}`), want: []string{"docker-socket /run/docker.sock"}},
		{name: "through the /var/run symlink", body: create(`{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}`), want: []string{"docker-socket /run/docker.sock"}},
		{name: "through a symlink to it", body: create(`{"Binds":["/srv/sock-link:/s"]}`), want: []string{"docker-socket /run/docker.sock"}},
		{name: "a hard link of it", body: create(`{"Binds":["/srv/hard.sock:/s:ro"]}`), want: []string{"docker-socket /srv/hard.sock"}},
		{name: "a bind mount", body: create(`{"Mounts":[{"Type":"bind","Source":"/var/run/docker.sock","Target":"/s"}]}`), want: []string{"docker-socket /run/docker.sock"}},
		{name: "dockgate's own socket", body: create(`{"Binds":["/run/dockgate/docker.sock:/var/run/docker.sock"]}`), want: []string{"docker-socket /run/dockgate/docker.sock"}},
		{name: "a hard link of dockgate's own socket", body: create(`{"Binds":["/srv/own-hard.sock:/s"]}`), want: []string{"docker-socket /srv/own-hard.sock"}},
		{name: "VolumesFrom a container given dockgate's socket", body: create(`{"VolumesFrom":["builder:ro"]}`), want: []string{"bind /srv/ci-cache", "docker-socket /run/dockgate/docker.sock", "bind /etc"}},
		{name: "VolumesFrom a container given dockerd's socket is refused", body: create(`{"VolumesFrom":["direct"]}`), status: http.StatusForbidden},
		{name: "VolumesFrom a container given a hard link of dockerd's socket is refused", body: create(`{"VolumesFrom":["hardlinked"]}`), status: http.StatusForbidden},
		{name: "another socket", body: create(`{"Binds":["/run/containerd.sock:/s"]}`), want: []string{"bind /run/containerd.sock"}},
		{name: "another file", body: create(`{"Binds":["/srv/plain.sock:/s"]}`), want: []string{"bind /srv/plain.sock"}},
		{name: "a path that does not exist", body: create(`{"Binds":["/srv/none.sock:/s"]}`), want: []string{"bind /srv/none.sock"}},
		{name: "the directory holding it", body: create(`{"Binds":["/var/run:/r"]}`), want: []string{"bind /run"}},
		{name: "the upstream where dockgate is told it is", host: moved, body: create(`{"Binds":["/srv/dockerd/api.sock:/s"]}`), want: []string{"docker-socket /srv/dockerd/api.sock"}},
		{name: "the default path with the upstream elsewhere", host: moved, body: create(`{"Binds":["/var/run/docker.sock:/s"]}`), want: []string{"docker-socket /run/docker.sock"}},
		{name: "no socket of dockgate's to delegate to", host: unlistened, body: create(`{"Binds":["/var/run/docker.sock:/s"]}`), status: http.StatusForbidden},
		{name: "started again with dockgate's socket", target: "/v1.41/containers/builder/start", want: []string{"bind /srv/ci-cache", "docker-socket /run/dockgate/docker.sock", "bind /etc"}},
		{name: "started again with dockerd's socket stays bind", target: "/v1.41/containers/direct/restart", want: []string{"bind /run/docker.sock"}},
		{name: "a service's mount of dockerd's socket stays bind", target: "/v1.41/services/create", body: svc, want: []string{"bind /run/docker.sock"}},
		{name: "a local volume's device stays bind", body: create(`{"Binds":["rbindvol:/s"]}`), want: []string{"bind /run/docker.sock"}},
		// A process run in a container that holds a socket is that
		// container, socket and all: judged as binding it.
		{name: "exec in a container holding dockgate's socket", target: "/v1.41/containers/builder/exec", body: `{"Cmd":["sh"]}`, want: []string{"docker-socket /run/dockgate/docker.sock"}},
		{name: "exec in a container given dockerd's socket", target: "/v1.41/containers/direct/exec", body: `{"Cmd":["sh"]}`, want: []string{"bind /run/docker.sock"}},
		{name: "exec in a container holding no socket", target: "/v1.41/containers/nosock/exec", body: `{"Cmd":["sh"]}`},
		{name: "attach to a container holding dockgate's socket", target: "/v1.41/containers/builder/attach?stream=1&stdin=1", want: []string{"docker-socket /run/dockgate/docker.sock"}},
		{name: "rename a container holding dockgate's socket", target: "/v1.41/containers/builder/rename?name=traefik", want: []string{"docker-socket /run/dockgate/docker.sock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host
			if h.root == "" {
				h = host
			}
			target := tc.target
			if target == "" {
				target = createTarget
			}
			got, err := runFactCase(t, NewRouter(), newExtractor(h), in, factCase{target: target, body: tc.body})
			if tc.status != 0 {
				var re *RouteError
				if !errors.As(err, &re) || re.Status != tc.status {
					t.Fatalf("want refusal %d, got facts %v, err %v", tc.status, got, err)
				}
				if !strings.Contains(re.Message, "socket") {
					t.Errorf("refusal %q does not say it is about a Docker socket", re.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var have []string
			for _, f := range got {
				if f.Kind == "bind" || f.Kind == policy.DockerSocketKind {
					have = append(have, f.Kind+" "+f.Value)
				}
			}
			if !slices.Equal(have, tc.want) {
				t.Fatalf("facts %q, want %q", have, tc.want)
			}
		})
	}
}

// socketDecider decides with a policy that lets root do everything and
// makes user:jenkins a tenant that may bind Docker sockets; user:alice may
// create containers but bind no Docker socket.
func socketDecider(t *testing.T) *PolicyDecider {
	t.Helper()
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, docker-socket, **, allow\np, role:ci, namespace, **, allow\np, user:alice, endpoint, *, allow\np, user:alice, image, **, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(socketHost(t))
	d.Inspector = socketInspector()
	return d
}

func decideCreate(t *testing.T, d *PolicyDecider, body string, subjects ...string) Decision {
	t.Helper()
	return decideRequest(t, d, http.MethodPost, createTarget, body, subjects...)
}

// decideRequest routes and decides one request, with body (JSON) when it
// is not empty.
func decideRequest(t *testing.T, d *PolicyDecider, method, target, body string, subjects ...string) Decision {
	t.Helper()
	req := testRequest(method, target, subjects...)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Body = []byte(body)
	}
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	return d.Decide(context.Background(), m, req)
}

var rootSubjects = []string{"uid:0", "user:root", "*"}

// TestDockerSocketDelegated: an allowed create is forwarded as the body
// that was judged, re-encoded, with each bind of a daemon's socket given
// dockgate's socket (destination, mode and the rest of a mount kept) and
// the creator label; the decision lists each rewrite.
func TestDockerSocketDelegated(t *testing.T) {
	d := socketDecider(t)
	const dg = "/run/dockgate/docker.sock"
	for _, tc := range []struct {
		name     string
		body     string
		change   func(w *container.CreateRequest)
		rewrites []string
	}{
		{"Binds with modes", `{"Image":"busybox","Shell":[],"HostConfig":{"Binds":["/srv/ci-cache:/c","/var/run/docker.sock:/var/run/docker.sock:ro,z","/srv/hard.sock:/h"]}}`,
			func(w *container.CreateRequest) {
				w.HostConfig.Binds[1] = dg + ":/var/run/docker.sock:ro,z"
				w.HostConfig.Binds[2] = dg + ":/h"
			},
			[]string{"bind /var/run/docker.sock:/var/run/docker.sock:ro,z -> " + dg + ":/var/run/docker.sock:ro,z", "bind /srv/hard.sock:/h -> " + dg + ":/h"}},
		{"Mounts keep all but their source", `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/run/docker.sock","Target":"/s","ReadOnly":true,"Consistency":"cached","BindOptions":{"Propagation":"rslave"}}]}}`,
			func(w *container.CreateRequest) { w.HostConfig.Mounts[0].Source = dg },
			[]string{"mount /run/docker.sock:/s -> " + dg + ":/s"}},
		{"dockgate's own socket is kept", `{"Image":"busybox","HostConfig":{"Binds":["/run/dockgate/docker.sock:/var/run/docker.sock"]}}`,
			func(*container.CreateRequest) {}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := decideCreate(t, d, tc.body, rootSubjects...)
			if !dec.Allow || dec.Body == nil {
				t.Fatalf("allow %v body %q (%s)", dec.Allow, dec.Body, dec.Reason)
			}
			if !slices.Equal(dec.Rewrites, tc.rewrites) {
				t.Errorf("rewrites %q, want %q", dec.Rewrites, tc.rewrites)
			}
			var want, got container.CreateRequest
			if err := json.Unmarshal([]byte(tc.body), &want); err != nil {
				t.Fatal(err)
			}
			tc.change(&want)
			want.Labels = map[string]string{CreatorLabel: creatorLabelOf("", []string{"uid:0", "user:root", "*"})}
			if err := json.Unmarshal([]byte(sameCreatorID(dec.Body)), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("forwarded %s\nwant what was judged, %s, with the rewrite and the creator label", dec.Body, tc.body)
			}
			// The client's bytes where nothing changed: an empty list the
			// typed encoding would drop reaches dockerd.
			if strings.Contains(tc.body, `"Shell":[]`) && !strings.Contains(string(dec.Body), `"Shell":[]`) {
				t.Errorf("forwarded %s without the client's empty Shell", dec.Body)
			}
			for _, f := range dec.Facts {
				if f.Kind == "bind" && strings.HasSuffix(f.Value, ".sock") {
					t.Errorf("a Docker socket judged as bind: %+v", f)
				}
			}
		})
	}

	t.Run("refused: nothing forwarded, the refusal names the fact and says it is delegated", func(t *testing.T) {
		dec := decideCreate(t, d, `{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}}`, "user:alice", "uid:1002", "*")
		if dec.Allow || dec.Status != http.StatusForbidden || dec.Body != nil || dec.Rewrites != nil {
			t.Fatalf("%+v", dec)
		}
		for _, want := range []string{"user:alice may not docker-socket /run/docker.sock: no rule allows it", "only ever delegated", "dockgate's own socket /run/dockgate/docker.sock"} {
			if !strings.Contains(dec.Reason, want) {
				t.Errorf("refusal %q does not say %q", dec.Reason, want)
			}
		}
	})
}

// TestCreatorLabel: a container create records its creator when the
// caller is a tenant, or the container reaches a Docker socket (a bind of
// one, VolumesFrom, pid=container:), and only then; without a creator to
// record such a create is refused.
func TestCreatorLabel(t *testing.T) {
	d := socketDecider(t)
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	for _, tc := range []struct {
		name     string
		body     string
		subjects []string
		labelled bool
	}{
		{"plain", `{"Image":"busybox"}`, rootSubjects, false},
		{"a plain bind", `{"Image":"busybox","HostConfig":{"Binds":["/srv/ci-cache:/c"]}}`, rootSubjects, false},
		{"network of another container", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:nosock"}}`, rootSubjects, false},
		{"ipc of another container", `{"Image":"busybox","HostConfig":{"IpcMode":"container:nosock"}}`, rootSubjects, false},
		{"a daemon's socket", `{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/s"]}}`, rootSubjects, true},
		{"dockgate's socket", `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/run/dockgate/docker.sock","Target":"/s"}]}}`, rootSubjects, true},
		{"VolumesFrom without a socket", `{"Image":"busybox","HostConfig":{"VolumesFrom":["nosock"]}}`, rootSubjects, true},
		{"pid of another container", `{"Image":"busybox","HostConfig":{"PidMode":"container:nosock"}}`, rootSubjects, true},
		{"a tenant", `{"Image":"busybox"}`, jenkins, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := decideCreate(t, d, tc.body, tc.subjects...)
			if !dec.Allow {
				t.Fatalf("refused: %s", dec.Reason)
			}
			var got container.CreateRequest
			if dec.Body != nil {
				if err := json.Unmarshal(dec.Body, &got); err != nil {
					t.Fatal(err)
				}
			}
			var label string
			labelled := false
			if got.Config != nil {
				label, labelled = got.Labels[CreatorLabel]
			}
			if labelled != tc.labelled {
				t.Fatalf("creator label %v (%q), want %v; forwarded %s", labelled, label, tc.labelled, dec.Body)
			}
			if !tc.labelled {
				if dec.Body != nil {
					t.Errorf("body forwarded changed: %s", dec.Body)
				}
				return
			}
			var creator CreatorRecord
			if err := json.Unmarshal([]byte(label), &creator); err != nil || !reflect.DeepEqual(creator.Creators, [][]string{tc.subjects}) || len(creator.ID) != 16 {
				t.Errorf("creator %q (%v), want the subjects judged, %q", label, err, tc.subjects)
			}
		})
	}

	t.Run("the recorded creators follow the caller's own", func(t *testing.T) {
		m, _ := NewRouter().Route(http.MethodPost, parseTarget(t, createTarget))
		req := testRequest(http.MethodPost, createTarget, rootSubjects...)
		req.Header.Set("Content-Type", "application/json")
		req.Body = []byte(`{"Image":"busybox","HostConfig":{"Binds":["/run/dockgate/docker.sock:/s"]}}`)
		// What the decider sets for a caller in a container
		// (judgeCaller): its subjects, then its own recorded creators.
		req.Creator = [][]string{{"container:ci", "*"}, {"user:jenkins", "*"}}
		if _, err := newExtractor(socketHost(t))(context.Background(), m, req, socketInspector()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sameCreatorID(req.OwnedBody), `"io.dockgate.creator":"{\"id\":\"ID\",\"creators\":[[\"container:ci\",\"*\"],[\"user:jenkins\",\"*\"]]}"`) {
			t.Fatalf("forwarded %s", req.OwnedBody)
		}
	})

	t.Run("no creator to record: refused, 500", func(t *testing.T) {
		for _, body := range []string{`{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/s"]}}`, `{"Image":"busybox","HostConfig":{"PidMode":"container:nosock"}}`} {
			m, _ := NewRouter().Route(http.MethodPost, parseTarget(t, createTarget))
			req := testRequest(http.MethodPost, createTarget, rootSubjects...)
			req.Header.Set("Content-Type", "application/json")
			req.Body = []byte(body)
			req.Subjects = nil
			_, err := newExtractor(socketHost(t))(context.Background(), m, req, socketInspector())
			var re *RouteError
			if !errors.As(err, &re) || re.Status != http.StatusInternalServerError || !strings.Contains(re.Message, "cannot record the creator") {
				t.Errorf("%s: %v, want 500 cannot record the creator", body, err)
			}
		}
	})
}
