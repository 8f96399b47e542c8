package authz

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// fakeInspector stands for dockerd's state in fact tests.
type fakeInspector struct {
	volumes    map[string]fakeVolume
	containers map[string]fakeContainer
	previous   map[string]*swarm.ServiceSpec
	// images maps a reference as requested to the image dockerd resolves
	// it to.
	images map[string]fakeImage
	// objects are the execs, volumes, networks and images ObjectOwner
	// finds, keyed "kind:name".
	objects map[string]fakeContainer
	// created are the volumes CreateVolume made; existing volumes it
	// answers with their own labels.
	created map[string]map[string]string
	// daemon is what dockerd says of itself; zero: a current dockerd on
	// a cgroup v2 host.
	daemon dockerd.Daemon
	err    error
}

func (f *fakeInspector) CreateVolume(_ context.Context, name, driver string, labels map[string]string) (map[string]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	if o, ok := f.objects["volume:"+name]; ok {
		return o.labels, nil
	}
	if f.created == nil {
		f.created = map[string]map[string]string{}
	}
	f.created[name] = labels
	return labels, nil
}

type fakeImage struct {
	id                    string
	repoDigests, repoTags []string
}

// Daemon: a cgroup v2 host (cgroupns=host is a change there) unless the
// test says otherwise.
func (f *fakeInspector) Daemon(context.Context) (dockerd.Daemon, error) {
	if f.daemon.Version == "" {
		return dockerd.Daemon{CgroupVersion: "2", Version: "29.8.0"}, nil
	}
	return f.daemon, nil
}

func (f *fakeInspector) ImageProvenance(_ context.Context, ref string) (string, []string, []string, bool, error) {
	if f.err != nil {
		return "", nil, nil, false, f.err
	}
	im, ok := f.images[ref]
	return im.id, im.repoDigests, im.repoTags, ok, nil
}

type fakeVolume struct {
	driver string
	opts   map[string]string
}

type fakeContainer struct {
	binds, volumes, devices []string
	id                      string
	labels                  map[string]string
}

func (f *fakeInspector) VolumeOptions(_ context.Context, name string) (string, map[string]string, bool, error) {
	if f.err != nil {
		return "", nil, false, f.err
	}
	v, ok := f.volumes[name]
	return v.driver, v.opts, ok, nil
}

func (f *fakeInspector) ContainerMounts(_ context.Context, name string) (dockerd.ContainerMounts, bool, error) {
	if f.err != nil {
		return dockerd.ContainerMounts{}, false, f.err
	}
	c, ok := f.containers[name]
	return dockerd.ContainerMounts{ID: c.id, Binds: c.binds, Volumes: c.volumes, Devices: c.devices}, ok, nil
}

func (f *fakeInspector) ObjectOwner(_ context.Context, kind, name string) (string, map[string]string, bool, error) {
	if f.err != nil {
		return "", nil, false, f.err
	}
	if kind == ObjectContainer {
		c, ok := f.containers[name]
		if !ok {
			// dockerd finds a container by its ID as well as its name.
			for _, cc := range f.containers {
				if cc.id != "" && cc.id == name {
					c, ok = cc, true
					break
				}
			}
		}
		return c.id, c.labels, ok, nil
	}
	o, ok := f.objects[kind+":"+name]
	return o.id, o.labels, ok, nil
}

func (f *fakeInspector) ServicePreviousSpec(_ context.Context, id string) (*swarm.ServiceSpec, bool, error) {
	if f.err != nil {
		return nil, false, f.err
	}
	s, ok := f.previous[id]
	return s, ok, nil
}

func newFakeInspector() *fakeInspector {
	return &fakeInspector{
		volumes: map[string]fakeVolume{
			"bindvol":  {driver: "local", opts: map[string]string{"type": "none", "o": "bind", "device": "/etc"}},
			"rbindvol": {driver: "local", opts: map[string]string{"type": "none", "o": "ro,rbind", "device": "/var/run/docker.sock"}},
			"devvol":   {driver: "local", opts: map[string]string{"type": "ext4", "device": "/dev/sda"}},
			"nfsvol":   {driver: "local", opts: map[string]string{"type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export"}},
			"tmpvol":   {driver: "local", opts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}},
			"plugvol":  {driver: "rexray"},
			"plain":    {driver: "local"},
		},
		containers: map[string]fakeContainer{
			// builder was created through dockgate: its Docker socket is
			// dockgate's. direct was created against dockerd itself.
			"builder": {binds: []string{"/srv/ci-cache", "/run/dockgate/docker.sock"}, volumes: []string{"bindvol"}},
			"direct":  {binds: []string{"/var/run/docker.sock"}},
		},
		images: fakeImages(),
		previous: map[string]*swarm.ServiceSpec{
			"web": {TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
				Image:  "busybox",
				Mounts: nil,
				Privileges: &swarm.Privileges{
					Seccomp: &swarm.SeccompOpts{Mode: swarm.SeccompModeUnconfined},
				},
			}}},
		},
	}
}

// fakeHost builds a directory standing for the host's root:
//
//	/run/docker.sock   the socket (a file here)
//	/run/dockgate/docker.sock  dockgate's socket, where binds of dockerd's are delegated
//	/var/run -> ../run as on Debian
//	/srv/ci-cache/     an allowed cache
//	/srv/link -> /etc  a symlink out of it
//	/srv/ci-cache/escape -> /etc/newdir  a dangling symlink
//	/dev/sda, /dev/dri/card0
func fakeHost(t testing.TB) hostFS {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"run/dockgate", "var", "srv/ci-cache", "etc", "dev/dri"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"run/docker.sock", "run/dockgate/docker.sock", "dev/sda", "dev/dri/card0"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"var/run":              "../run",
		"srv/link":             "/etc",
		"srv/ci-cache/escape":  "/etc/newdir",
		"srv/ci-cache/loop":    "loop",
		"dev/disk-by-label-ci": "sda",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return hostFS{root: root, sockets: DockerSockets{Listen: []string{"/run/dockgate/docker.sock"}, Upstream: "/var/run/docker.sock"}}
}

// factCase is one request and what must (or must not) come out of it.
type factCase struct {
	name   string
	method string // POST when empty
	target string
	ctype  string // application/json when empty and there is a body; "-" for none
	header http.Header
	body   string
	// want: facts that must be present, as "kind value".
	want []string
	// exact: want is the whole list, in order.
	exact bool
	// not: facts that must be absent.
	not []string
	// status: the refusal expected (0: the facts are read).
	status int
	// cred: the caller's host credentials (nil: no account on this host).
	cred *Cred
}

func runFactCases(t *testing.T, cases []factCase) {
	t.Helper()
	host := fakeHost(t)
	router := NewRouter()
	in := newFakeInspector()
	extract := newExtractor(host)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runFactCase(t, router, extract, in, tc)
			if tc.status != 0 {
				var re *RouteError
				if !errors.As(err, &re) || re.Status != tc.status {
					t.Fatalf("want refusal %d, got facts %v, err %v", tc.status, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			have := make([]string, len(got))
			for i, f := range got {
				have[i] = f.Kind + " " + f.Value
				if !slices.Contains(policy.FactKinds(), f.Kind) {
					t.Errorf("fact %q has a kind policies cannot name", have[i])
				}
			}
			if tc.exact && !slices.Equal(have, tc.want) {
				t.Fatalf("facts:\n got %q\nwant %q", have, tc.want)
			}
			for _, w := range tc.want {
				if !slices.Contains(have, w) {
					t.Errorf("missing fact %q in %q", w, have)
				}
			}
			for _, n := range tc.not {
				if slices.Contains(have, n) {
					t.Errorf("unexpected fact %q in %q", n, have)
				}
			}
		})
	}
}

func runFactCase(t *testing.T, router *Router, extract Extractor, in Inspector, tc factCase) ([]policy.Fact, error) {
	t.Helper()
	method := tc.method
	if method == "" {
		method = http.MethodPost
	}
	u := parseTarget(t, tc.target)
	m, err := router.Route(method, u)
	if err != nil {
		t.Fatalf("route %s %s: %v", method, tc.target, err)
	}
	if m.Action == ActionUnknown {
		t.Fatalf("route %s %s: unknown", method, tc.target)
	}
	h := http.Header{}
	for k, vs := range tc.header {
		h[k] = vs
	}
	switch {
	case tc.ctype == "-":
	case tc.ctype != "":
		h.Set("Content-Type", tc.ctype)
	case tc.body != "":
		h.Set("Content-Type", "application/json")
	}
	// The decider sets Creator; the extractor alone is given one.
	req := &Request{Method: method, URL: u, Header: h, Caller: "user:test", Cred: tc.cred, Creator: [][]string{{"user:test", "*"}}}
	if m.NeedsBody || isFormBody(req) && tc.body != "" {
		// As the proxy does: judged bodies and form bodies are read whole.
		req.Body = []byte(tc.body)
	} else if m.Spool && tc.body != "" {
		// As the proxy does: tarballs are spooled to a file.
		f, err := os.Create(filepath.Join(t.TempDir(), "body"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.WriteString(f, tc.body); err != nil {
			t.Fatal(err)
		}
		req.BodyFile, req.BodySize = f, int64(len(tc.body))
	}
	return extract(context.Background(), m, req, in)
}

// create wraps a HostConfig JSON object in a create body for busybox.
func create(hostConfig string) string {
	return `{"Image":"busybox","HostConfig":` + hostConfig + `}`
}

const createTarget = "/v1.41/containers/create"

func TestJSONReadLikeDockerd(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "plain create has only its image", target: createTarget, body: create(`{}`), want: []string{"image docker.io/library/busybox:latest"}, exact: true},
		{name: "privileged", target: createTarget, body: create(`{"Privileged":true}`), want: []string{"privileged container"}},
		{name: "privileged via lower-case key", target: createTarget, body: `{"image":"busybox","hostconfig":{"privileged":true}}`, want: []string{"privileged container"}},
		{name: "privileged via upper-case key", target: createTarget, body: `{"IMAGE":"busybox","HOSTCONFIG":{"PRIVILEGED":true}}`, want: []string{"privileged container"}},
		{name: "privileged via escaped key", target: createTarget, body: create(`{"Privile\u0067ed":true}`), want: []string{"privileged container"}},
		{name: "privileged via escaped HostConfig key", target: createTarget, body: `{"Image":"busybox","Host\u0043onfig":{"Privileged":true}}`, want: []string{"privileged container"}},
		{name: "privileged via long-s HostConfig key", target: createTarget, body: `{"Image":"busybox","Ho\u017ftConfig":{"Privileged":true}}`, want: []string{"privileged container"}},
		{name: "host network via Kelvin-sign NetworkingConfig key", target: createTarget, body: `{"Image":"busybox","Networ\u212aingConfig":{"EndpointsConfig":{"host":{}}}}`, want: []string{"namespace network=host"}},
		{name: "binds via long-s key", target: createTarget, body: create(`{"Bind\u017f":["/etc:/host"]}`), want: []string{"bind /etc"}},
		{name: "binds via raw long-s key", target: createTarget, body: create(`{"Bindſ":["/etc:/host"]}`), want: []string{"bind /etc"}},
		{name: "oom-kill-disable via Kelvin-sign key", target: createTarget, body: create(`{"Oom\u212aillDisable":true}`), want: []string{"resource oom-kill-disable"}},
		{name: "masked paths via Kelvin-sign key", target: createTarget, body: create(`{"Mas\u212AedPaths":[]}`), want: []string{"security-opt systempaths=unconfined"}},
		{name: "duplicate Privileged keys refused", target: createTarget, body: create(`{"Privileged":false,"Privileged":true}`), status: 400},
		{name: "case-folded duplicate keys refused", target: createTarget, body: create(`{"privileged":true,"Privileged":false}`), status: 400},
		{name: "Kelvin-sign duplicate refused", target: createTarget, body: create(`{"OomKillDisable":false,"Oom\u212aillDisable":true}`), status: 400},
		{name: "escaped duplicate refused", target: createTarget, body: create(`{"CapAdd":[],"Cap\u0041dd":["SYS_ADMIN"]}`), status: 400},
		{name: "duplicate HostConfig objects refused", target: createTarget, body: `{"Image":"busybox","HostConfig":{"Privileged":true},"hostConfig":{"Memory":1}}`, status: 400},
		{name: "duplicate Image keys refused", target: createTarget, body: `{"Image":"registry.example.com/ok","image":"evil"}`, status: 400},
		{name: "trailing data refused", target: createTarget, body: create(`{}`) + `{"HostConfig":{"Privileged":true}}`, status: 400},
		{name: "trailing closing brace refused", target: createTarget, body: create(`{}`) + `}`, status: 400},
		{name: "trailing garbage refused", target: createTarget, body: create(`{}`) + ` x`, status: 400},
		{name: "trailing whitespace accepted", target: createTarget, body: create(`{}`) + " \r\n\t", want: []string{"image docker.io/library/busybox:latest"}},
		{name: "top-level Binds refused", target: createTarget, body: `{"Image":"busybox","Binds":["/:/host"]}`, status: 400},
		{name: "top-level privileged in lower case refused", target: createTarget, body: `{"Image":"busybox","privileged":true}`, status: 400},
		{name: "top-level HostConfig field refused even when false", target: createTarget, body: `{"Image":"busybox","Privileged":false}`, status: 400},
		{name: "top-level promoted resource field refused", target: createTarget, body: `{"Image":"busybox","Devices":[{"PathOnHost":"/dev/sda"}]}`, status: 400},
		{name: "top-level Cpuset refused", target: createTarget, body: `{"Image":"busybox","Cpuset":"0"}`, status: 400},
		{name: "unknown HostConfig field with a value refused", target: createTarget, body: create(`{"Capabilities":["CAP_SYS_ADMIN"]}`), status: 400},
		{name: "unknown field left empty accepted", target: createTarget, body: create(`{"DeviceCgroupPermissions":null,"Capabilities":[]}`), want: []string{"image docker.io/library/busybox:latest"}},
		{name: "labels differing in case accepted", target: createTarget, body: `{"Image":"busybox","Labels":{"a":"1","A":"2"}}`, want: []string{"image docker.io/library/busybox:latest"}},
		{name: "duplicate label keys refused", target: createTarget, body: `{"Image":"busybox","Labels":{"a":"1","a":"2"}}`, status: 400},
		{name: "invalid UTF-8 refused", target: createTarget, body: "{\"Image\":\"busybox\",\"Labels\":{\"a\":\"\xff\"}}", status: 400},
		{name: "byte order mark refused", target: createTarget, body: "\ufeff" + create(`{}`), status: 400},
		{name: "deep nesting refused", target: createTarget, body: `{"Image":"busybox","Labels":` + strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70) + `}`, status: 400},
		{name: "empty body refused", target: createTarget, body: "", status: 400},
		{name: "null body refused", target: createTarget, body: "null", status: 400},
		{name: "type mismatch refused", target: createTarget, body: create(`{"Privileged":"true"}`), status: 400},
		{name: "missing image refused", target: createTarget, body: `{"Cmd":["sh"]}`, status: 400},
		{name: "privileged false is no fact", target: createTarget, body: create(`{"Privileged":false}`), not: []string{"privileged container"}},
	})
}

func TestBodiesAlwaysInspected(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "json with charset", target: createTarget, ctype: "application/json; charset=utf-8", body: create(`{"Privileged":true}`), want: []string{"privileged container"}},
		{name: "json in upper case", target: createTarget, ctype: "APPLICATION/JSON", body: create(`{"Privileged":true}`), want: []string{"privileged container"}},
		{name: "no content type still inspected", target: "/v1.41/containers/x/update", ctype: "-", body: `{"PidsLimit":-1}`, want: []string{"resource pids-limit=unlimited"}},
		{name: "text/plain body refused", target: createTarget, ctype: "text/plain", body: create(`{"Privileged":true}`), status: 400},
		{name: "malformed json content type refused", target: createTarget, ctype: "application/json; =x", body: create(`{}`), status: 400},
		{name: "duplicate content type refused", target: createTarget, ctype: "-", header: http.Header{"Content-Type": {"application/json", "text/plain"}}, body: create(`{}`), status: 400},
		{name: "form body values come before the query on image pull", target: "/v1.41/images/create?fromImage=registry.example.com/ok&tag=1", ctype: "application/x-www-form-urlencoded",
			body: "fromImage=evil.example.com/x&tag=2", want: []string{"image evil.example.com/x:2"}, not: []string{"image registry.example.com/ok:1"}},
		{name: "form body that turns an import into a pull refused", target: "/v1.41/images/create?fromSrc=-&repo=ok", ctype: "Application/X-WWW-Form-Urlencoded; charset=utf-8",
			body: "fromImage=evil.example.com/y", status: 400},
		{name: "form body that turns a pull into an import refused", target: "/v1.41/images/create?fromImage=registry.example.com/ok", ctype: "application/x-www-form-urlencoded",
			body: "fromImage=&fromSrc=-", status: 400},
		{name: "form body with bad Content-Type parameters is still a form", target: "/v1.41/images/evil/tag?repo=ok", ctype: "Application/X-WWW-Form-Urlencoded; =",
			body: "repo=evil.example.com/z&tag=1", want: []string{"image-target evil.example.com/z:1"}},
		{name: "malformed form body refused", target: "/v1.41/images/create?fromImage=registry.example.com/ok", ctype: "application/x-www-form-urlencoded", body: "fromImage=%zz", status: 400},
		{name: "form body that was not read refused", target: "/v1.41/images/busybox/tag?repo=ok", ctype: "-", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Length": {"9"}}, status: 400},
		{name: "multipart body refused on build", target: "/v1.41/build", ctype: "multipart/form-data; boundary=x", status: 400},
		{name: "form body on tag names the new image", target: "/v1.41/images/evil/tag?repo=ok", ctype: "application/x-www-form-urlencoded",
			body: "repo=evil.example.com/x&tag=3", want: []string{"image-target evil.example.com/x:3"}, not: []string{"image-target docker.io/library/ok:latest"}},
		{name: "tarball body accepted on build", target: "/v1.41/build?t=app", ctype: "application/x-tar", want: []string{"image-target docker.io/library/app:latest"}},
		{name: "semicolon query refused", target: "/v1.41/build?t=ok;networkmode=host", status: 400},
	})
}

func TestHostPathsByOtherRoads(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "bind via Binds", target: createTarget, body: create(`{"Binds":["/etc:/host:ro"]}`), want: []string{"bind /etc"}},
		{name: "root bind", target: createTarget, body: create(`{"Binds":["/:/host"]}`), want: []string{"bind /"}},
		{name: "named volume in Binds is not a bind", target: createTarget, body: create(`{"Binds":["plain:/data"]}`), not: []string{"bind plain"}},
		{name: "anonymous volume in Binds", target: createTarget, body: create(`{"Binds":["/data"]}`), want: []string{"image docker.io/library/busybox:latest"}, exact: true},
		{name: "bind with mode only refused", target: createTarget, body: create(`{"Binds":["/data:ro"]}`), status: 400},
		{name: "bind with bad mode refused", target: createTarget, body: create(`{"Binds":["/etc:/h:rw,ro"]}`), status: 400},
		{name: "bind via Mounts", target: createTarget, body: create(`{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/host"}]}`), want: []string{"bind /etc"}},
		{name: "relative Mounts bind source refused", target: createTarget, body: create(`{"Mounts":[{"Type":"bind","Source":"etc","Target":"/host"}]}`), status: 400},
		{name: "unknown mount type refused", target: createTarget, body: create(`{"Mounts":[{"Type":"BIND","Source":"/etc","Target":"/host"}]}`), status: 400},
		{name: "bind via local volume o=bind", target: createTarget, body: create(`{"Binds":["bindvol:/data"]}`), want: []string{"bind /etc"}},
		{name: "bind via local volume rbind mounted by Mounts", target: createTarget, body: create(`{"Mounts":[{"Type":"volume","Source":"rbindvol","Target":"/s"}]}`), want: []string{"bind /run/docker.sock"}},
		{name: "bind via inline Mounts driver options", target: createTarget, body: create(`{"Mounts":[{"Type":"volume","Source":"fresh","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]}`), want: []string{"bind /"}},
		{name: "bind via anonymous inline volume", target: createTarget, body: create(`{"Mounts":[{"Type":"volume","Target":"/h","VolumeOptions":{"DriverConfig":{"Options":{"type":"none","o":"bind","device":"/root"}}}}]}`), want: []string{"bind /root"}},
		{name: "device via local volume", target: createTarget, body: create(`{"Binds":["devvol:/d"]}`), want: []string{"device /dev/sda", "volume-option type=ext4"}},
		{name: "nfs volume option", target: createTarget, body: create(`{"Binds":["nfsvol:/d"]}`), want: []string{"volume-option type=nfs"}},
		{name: "tmpfs volume option", target: createTarget, body: create(`{"Binds":["tmpvol:/d"]}`), want: []string{"volume-option type=tmpfs"}},
		{name: "non-local volume driver", target: createTarget, body: create(`{"Binds":["plugvol:/d"]}`), want: []string{"volume-driver rexray"}},
		{name: "HostConfig VolumeDriver", target: createTarget, body: create(`{"VolumeDriver":"rexray","Binds":["new:/d"]}`), want: []string{"volume-driver rexray"}},
		{name: "volume not found yet is no fact", target: createTarget, body: create(`{"Binds":["newvol:/d"]}`), want: []string{"image docker.io/library/busybox:latest"}, exact: true},
		{name: "invalid volume name refused", target: createTarget, body: create(`{"Mounts":[{"Type":"volume","Source":"../x","Target":"/d"}]}`), status: 400},
		{name: "socket under /var/run", target: createTarget, body: create(`{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}`), want: []string{"docker-socket /run/docker.sock"}, not: []string{"bind /run/docker.sock"}},
		{name: "socket under /run", target: createTarget, body: create(`{"Binds":["/run/docker.sock:/var/run/docker.sock"]}`), want: []string{"docker-socket /run/docker.sock"}},
		{name: "socket via /var/run directory", target: createTarget, body: create(`{"Mounts":[{"Type":"bind","Source":"/var/run","Target":"/r"}]}`), want: []string{"bind /run"}},
		{name: "socket via dot segments", target: createTarget, body: create(`{"Binds":["/var/./run//docker.sock:/s"]}`), want: []string{"docker-socket /run/docker.sock"}},
		{name: "symlinked host path resolved", target: createTarget, body: create(`{"Binds":["/srv/link/shadow:/s"]}`), want: []string{"bind /etc/shadow"}},
		{name: "dot-dot in bind source cleaned", target: createTarget, body: create(`{"Binds":["/srv/ci-cache/../../etc:/e"]}`), want: []string{"bind /etc"}},
		{name: "dot-dot above root cleaned", target: createTarget, body: create(`{"Binds":["/../../etc:/e"]}`), want: []string{"bind /etc"}},
		{name: "path that does not exist yet", target: createTarget, body: create(`{"Binds":["/srv/ci-cache/new/dir:/c"]}`), want: []string{"bind /srv/ci-cache/new/dir"}},
		{name: "dangling symlink followed", target: createTarget, body: create(`{"Binds":["/srv/ci-cache/escape/x:/c"]}`), want: []string{"bind /etc/newdir/x"}, not: []string{"bind /srv/ci-cache/escape/x"}},
		{name: "symlink loop refused", target: createTarget, body: create(`{"Binds":["/srv/ci-cache/loop/x:/c"]}`), status: 400},
		{name: "VolumesFrom carries the source's binds", target: createTarget, body: create(`{"VolumesFrom":["builder:ro"]}`), want: []string{"bind /srv/ci-cache", "docker-socket /run/dockgate/docker.sock", "bind /etc"}},
		{name: "VolumesFrom unknown container refused", target: createTarget, body: create(`{"VolumesFrom":["nobody"]}`), status: 400},
		{name: "VolumesFrom bad name refused", target: createTarget, body: create(`{"VolumesFrom":["../x"]}`), status: 400},
		{name: "checkpoint-dir is a host path", target: "/v1.41/containers/x/start?checkpoint=c&checkpoint-dir=/var/run", want: []string{"bind /run"}},
		{name: "checkpoint create dir", target: "/v1.41/containers/x/checkpoints", body: `{"CheckpointID":"c","CheckpointDir":"/etc"}`, want: []string{"bind /etc"}},
		{name: "volume create o=bind", target: "/v1.41/volumes/create", body: `{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/srv/link"}}`, want: []string{"bind /etc"}},
		{name: "volume create block device", target: "/v1.41/volumes/create", body: `{"Name":"v","DriverOpts":{"type":"ext4","device":"/dev/disk-by-label-ci"}}`, want: []string{"device /dev/sda", "volume-option type=ext4"}},
		{name: "volume create overlay dirs", target: "/v1.41/volumes/create", body: `{"Name":"v","DriverOpts":{"type":"overlay","device":"overlay","o":"lowerdir=/etc:/root,upperdir=/srv/u,workdir=/srv/w"}}`, want: []string{"volume-option type=overlay", "bind /etc", "bind /root", "bind /srv/u", "bind /srv/w"}},
		{name: "volume create proc", target: "/v1.41/volumes/create", body: `{"Name":"v","DriverOpts":{"type":"proc","device":"proc"}}`, want: []string{"volume-option type=proc"}},
		{name: "volume create plugin driver", target: "/v1.41/volumes/create", body: `{"Name":"v","Driver":"local-persist","DriverOpts":{"mountpoint":"/"}}`, want: []string{"volume-driver local-persist"}},
		{name: "plain volume create", target: "/v1.41/volumes/create", body: `{"Name":"v"}`, exact: true},
	})
}

func TestPrivilegedByParts(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "CapAdd ALL beats CapDrop ALL", target: createTarget, body: create(`{"CapAdd":["ALL"],"CapDrop":["ALL"]}`), want: []string{"capability ALL"}},
		{name: "cap_all lower case", target: createTarget, body: create(`{"CapAdd":["all"]}`), want: []string{"capability ALL"}},
		{name: "cap_sys_admin lower case", target: createTarget, body: create(`{"CapAdd":["cap_sys_admin"]}`), want: []string{"capability SYS_ADMIN"}},
		{name: "CAP_ prefix stripped", target: createTarget, body: create(`{"CapAdd":["CAP_NET_ADMIN"]}`), want: []string{"capability NET_ADMIN"}},
		{name: "long-s capability name", target: createTarget, body: create(`{"CapAdd":["cap_ſys_admin"]}`), want: []string{"capability SYS_ADMIN"}},
		{name: "dotless-i capability name", target: createTarget, body: create(`{"CapAdd":["cap_sys_adm\u0131n"]}`), want: []string{"capability SYS_ADMIN"}},
		{name: "CapAdd as a single string", target: createTarget, body: create(`{"CapAdd":"sys_ptrace"}`), want: []string{"capability SYS_PTRACE"}},
		{name: "default capability is no fact", target: createTarget, body: create(`{"CapAdd":["chown","CAP_KILL"]}`), not: []string{"capability CHOWN", "capability KILL"}},
		{name: "seccomp unconfined with colon", target: createTarget, body: create(`{"SecurityOpt":["seccomp:unconfined"]}`), want: []string{"security-opt seccomp=unconfined"}},
		{name: "seccomp unconfined with equals", target: createTarget, body: create(`{"SecurityOpt":["seccomp=unconfined"]}`), want: []string{"security-opt seccomp=unconfined"}},
		{name: "custom seccomp profile", target: createTarget, body: create(`{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}`), want: []string{"security-opt seccomp=custom"}},
		{name: "apparmor unconfined", target: createTarget, body: create(`{"SecurityOpt":["apparmor=unconfined"]}`), want: []string{"security-opt apparmor=unconfined"}},
		{name: "apparmor profile with colon", target: createTarget, body: create(`{"SecurityOpt":["apparmor:my-profile"]}`), want: []string{"security-opt apparmor=my-profile"}},
		{name: "label:disable", target: createTarget, body: create(`{"SecurityOpt":["label:disable"]}`), want: []string{"security-opt label=disable"}},
		{name: "label=disable", target: createTarget, body: create(`{"SecurityOpt":["label=disable"]}`), want: []string{"security-opt label=disable"}},
		{name: "bare disable", target: createTarget, body: create(`{"SecurityOpt":["disable"]}`), want: []string{"security-opt label=disable"}},
		{name: "label type", target: createTarget, body: create(`{"SecurityOpt":["label=type:spc_t"]}`), want: []string{"security-opt label=type:spc_t"}},
		{name: "no-new-privileges=false", target: createTarget, body: create(`{"SecurityOpt":["no-new-privileges=false"]}`), want: []string{"security-opt no-new-privileges=false"}},
		{name: "no-new-privileges:0", target: createTarget, body: create(`{"SecurityOpt":["no-new-privileges:0"]}`), want: []string{"security-opt no-new-privileges=false"}},
		{name: "no-new-privileges set again", target: createTarget, body: create(`{"SecurityOpt":["no-new-privileges=false","no-new-privileges"]}`), not: []string{"security-opt no-new-privileges=false"}},
		{name: "invalid security option refused", target: createTarget, body: create(`{"SecurityOpt":["seccomp"]}`), status: 400},
		{name: "unknown security option refused", target: createTarget, body: create(`{"SecurityOpt":["Seccomp=unconfined"]}`), status: 400},
		{name: "empty MaskedPaths", target: createTarget, body: create(`{"MaskedPaths":[]}`), want: []string{"security-opt systempaths=unconfined"}},
		{name: "empty ReadonlyPaths", target: createTarget, body: create(`{"ReadonlyPaths":[]}`), want: []string{"security-opt systempaths=unconfined"}},
		{name: "MaskedPaths missing a default", target: createTarget, body: create(`{"MaskedPaths":["/proc/kcore"]}`), want: []string{"security-opt systempaths=unconfined"}},
		{name: "null MaskedPaths keeps defaults", target: createTarget, body: create(`{"MaskedPaths":null}`), not: []string{"security-opt systempaths=unconfined"}},
		{name: "device", target: createTarget, body: create(`{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]}`), want: []string{"device /dev/sda"}},
		{name: "device directory", target: createTarget, body: create(`{"Devices":[{"PathOnHost":"/dev/dri","PathInContainer":"/dev/dri"}]}`), want: []string{"device /dev/dri"}},
		{name: "device via symlink", target: createTarget, body: create(`{"Devices":[{"PathOnHost":"/dev/disk-by-label-ci"}]}`), want: []string{"device /dev/sda"}},
		{name: "relative device path", target: createTarget, body: create(`{"Devices":[{"PathOnHost":"dev/sda"}]}`), want: []string{"device /dev/sda"}},
		{name: "device cgroup rule", target: createTarget, body: create(`{"DeviceCgroupRules":["a *:* rwm"]}`), want: []string{"device cgroup-rule:a *:* rwm"}},
		{name: "device request", target: createTarget, body: create(`{"DeviceRequests":[{"Driver":"nvidia","Count":-1}]}`), want: []string{"device request:nvidia"}},
		{name: "device request without driver", target: createTarget, body: create(`{"DeviceRequests":[{"Capabilities":[["gpu"]]}]}`), want: []string{"device request:"}},
		{name: "annotations", target: createTarget, body: create(`{"Annotations":{"io.kubernetes.cri-o.Devices":"/dev/sda","b":"x"}}`), want: []string{"annotation b", "annotation io.kubernetes.cri-o.Devices"}},
		{name: "sysctl", target: createTarget, body: create(`{"Sysctls":{"kernel.shm_rmid_forced":"1"}}`), want: []string{"sysctl kernel.shm_rmid_forced=1"}},
		{name: "endpoint sysctls", target: createTarget, body: `{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"net1":{"DriverOpts":{"com.docker.network.endpoint.sysctls":"net.ipv4.conf.IFNAME.forwarding=1,net.ipv6.conf.IFNAME.accept_ra=2"}}}}}`, want: []string{"sysctl net.ipv4.conf.IFNAME.forwarding=1", "sysctl net.ipv6.conf.IFNAME.accept_ra=2"}},
		{name: "non-default runtime", target: createTarget, body: create(`{"Runtime":"kata"}`), want: []string{"runtime kata"}},
		{name: "runc is the default runtime", target: createTarget, body: create(`{"Runtime":"runc"}`), not: []string{"runtime runc"}},
		{name: "cgroup parent", target: createTarget, body: create(`{"CgroupParent":"/"}`), want: []string{"cgroup-parent /"}},
		{name: "log driver", target: createTarget, body: create(`{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"unix:///dev/log"}}}`), want: []string{"log-driver syslog"}},
		{name: "json-file log driver is no fact", target: createTarget, body: create(`{"LogConfig":{"Type":"json-file"}}`), not: []string{"log-driver json-file"}},
		{name: "oom score adj negative", target: createTarget, body: create(`{"OomScoreAdj":-1000}`), want: []string{"resource oom-score-adj=-1000"}},
		{name: "pids limit 0 at create is the default", target: createTarget, body: create(`{"PidsLimit":0}`), not: []string{"resource pids-limit=unlimited"}},
		{name: "pids limit removed on update", target: "/v1.41/containers/x/update", body: `{"PidsLimit":0}`, want: []string{"resource pids-limit=unlimited"}},
		{name: "restart always", target: createTarget, body: create(`{"RestartPolicy":{"Name":"always"}}`), want: []string{"resource restart=always"}},
		{name: "restart unless-stopped on update", target: "/v1.41/containers/x/update", body: `{"RestartPolicy":{"Name":"unless-stopped"}}`, want: []string{"resource restart=unless-stopped"}},
		{name: "update devices", target: "/v1.41/containers/x/update", body: `{"Devices":[{"PathOnHost":"/dev/sda"}],"OomKillDisable":true}`, want: []string{"device /dev/sda", "resource oom-kill-disable"}},
		{name: "update with HostConfig-only field refused", target: "/v1.41/containers/x/update", body: `{"Privileged":true}`, status: 400},
		{name: "exec privileged", target: "/v1.41/containers/x/exec", body: `{"Cmd":["sh"],"Privileged":true}`, want: []string{"privileged exec"}},
		{name: "exec privileged via lower-case key", target: "/v1.41/containers/x/exec", body: `{"cmd":["sh"],"privileged":true}`, want: []string{"privileged exec"}},
		{name: "exec duplicate privileged refused", target: "/v1.41/containers/x/exec", body: `{"Privileged":false,"privileged":true}`, status: 400},
		{name: "exec plain", target: "/v1.41/containers/x/exec", body: `{"Cmd":["sh"]}`, exact: true},
	})
}

func TestNamespaces(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "network host", target: createTarget, body: create(`{"NetworkMode":"host"}`), want: []string{"namespace network=host"}},
		{name: "network container mode", target: createTarget, body: create(`{"NetworkMode":"container:other"}`), want: []string{"namespace network=container"}},
		{name: "endpoint on the host network", target: createTarget, body: `{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"host":{}}}}`, want: []string{"namespace network=host"}},
		{name: "pid host", target: createTarget, body: create(`{"PidMode":"host"}`), want: []string{"namespace pid=host"}},
		{name: "pid container", target: createTarget, body: create(`{"PidMode":"container:x"}`), want: []string{"namespace pid=container"}},
		{name: "ipc host", target: createTarget, body: create(`{"IpcMode":"host"}`), want: []string{"namespace ipc=host"}},
		{name: "ipc container", target: createTarget, body: create(`{"IpcMode":"container:x"}`), want: []string{"namespace ipc=container"}},
		{name: "uts host", target: createTarget, body: create(`{"UTSMode":"host"}`), want: []string{"namespace uts=host"}},
		{name: "userns host", target: createTarget, body: create(`{"UsernsMode":"host"}`), want: []string{"namespace userns=host"}},
		{name: "cgroupns host", target: createTarget, body: create(`{"CgroupnsMode":"host"}`), want: []string{"namespace cgroupns=host"}},
		{name: "cgroup of another container", target: createTarget, body: create(`{"Cgroup":"container:x"}`), want: []string{"namespace cgroup=container"}},
		{name: "invalid pid mode refused", target: createTarget, body: create(`{"PidMode":"HOST"}`), status: 400},
		{name: "invalid uts mode refused", target: createTarget, body: create(`{"UTSMode":"host:"}`), status: 400},
		{name: "bridge network is no namespace", target: createTarget, body: create(`{"NetworkMode":"bridge","IpcMode":"shareable"}`), exact: true, want: []string{"image docker.io/library/busybox:latest"}},
	})
}

func TestVersionDependentMeaning(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "cgroupns implicit host below 1.41", target: "/v1.40/containers/create", body: create(`{}`), want: []string{"namespace cgroupns=host"}},
		{name: "cgroupns implicit host with leading zeros", target: "/v01.040/containers/create", body: create(`{}`), want: []string{"namespace cgroupns=host"}},
		{name: "cgroupns private below 1.41 is no fact", target: "/v1.40/containers/create", body: create(`{"CgroupnsMode":"private"}`), not: []string{"namespace cgroupns=host"}},
		{name: "cgroupns unset at 1.41 is no fact", target: "/v1.41/containers/create", body: create(`{}`), not: []string{"namespace cgroupns=host"}},
		{name: "cgroupns unset at 1.41 with trailing dot is no fact", target: "/v1.41./containers/create", body: create(`{}`), not: []string{"namespace cgroupns=host"}},
		{name: "cgroupns unset without version prefix is no fact", target: "/containers/create", body: create(`{}`), not: []string{"namespace cgroupns=host"}},
		{name: "legacy start body judged below 1.24", target: "/v1.23/containers/x/start", body: `{"HostConfig":{"Privileged":true,"Binds":["/:/host"],"CgroupnsMode":"private"}}`, want: []string{"privileged container", "bind /"}},
		{name: "legacy start body with top-level HostConfig fields refused", target: "/v1.23/containers/x/start", body: `{"Privileged":true}`, status: 400},
		{name: "start body refused from 1.24", target: "/v1.24/containers/x/start", body: `{"HostConfig":{"Privileged":true}}`, status: 400},
		{name: "start body refused without version", target: "/containers/x/start", body: `{"HostConfig":{"Privileged":true}}`, status: 400},
		{name: "start with empty object", target: "/v1.41/containers/x/start", body: `{}`, exact: true},
		{name: "start without body", target: "/v1.41/containers/x/start", exact: true},
	})
}

func TestImageFacts(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "image normalized", target: createTarget, body: `{"Image":"busybox"}`, want: []string{"image docker.io/library/busybox:latest"}},
		{name: "image with user", target: createTarget, body: `{"Image":"user/app:1"}`, want: []string{"image docker.io/user/app:1"}},
		{name: "image on docker.io spelled out", target: createTarget, body: `{"Image":"index.docker.io/library/busybox"}`, want: []string{"image docker.io/library/busybox:latest"}},
		{name: "image with registry port", target: createTarget, body: `{"Image":"registry.example.com:5000/team/app"}`, want: []string{"image registry.example.com:5000/team/app:latest"}},
		{name: "image digest", target: createTarget, body: `{"Image":"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`, want: []string{"image docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{name: "image full ID", target: createTarget, body: `{"Image":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`, want: []string{"image sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, exact: true},
		{name: "image short ID also an ID fact", target: createTarget, body: `{"Image":"0123abcd"}`, want: []string{"image docker.io/library/0123abcd:latest", "image sha256:0123abcd"}},
		{name: "invalid image refused", target: createTarget, body: `{"Image":"Busybox"}`, status: 400},
		{name: "image mount", target: createTarget, body: create(`{"Mounts":[{"Type":"image","Source":"evil/tools","Target":"/t"}]}`), want: []string{"image docker.io/evil/tools:latest"}},
		{name: "image pull normalized", target: "/v1.41/images/create?fromImage=busybox&tag=1.36", want: []string{"image docker.io/library/busybox:1.36"}, exact: true},
		{name: "image pull of all tags", target: "/v1.41/images/create?fromImage=busybox", want: []string{"image docker.io/library/busybox"}, exact: true},
		{name: "image pull with trailing colon", target: "/v1.41/images/create?fromImage=busybox:", want: []string{"image docker.io/library/busybox"}, exact: true},
		{name: "image pull digest as tag", target: "/v1.41/images/create?fromImage=busybox&tag=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", want: []string{"image docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{name: "image pull reads the first value", target: "/v1.41/images/create?fromImage=registry.example.com/ok&fromImage=evil&tag=1", want: []string{"image registry.example.com/ok:1"}, exact: true},
		{name: "image import names", target: "/v1.41/images/create?fromSrc=-&repo=registry.example.com/ok&tag=2", want: []string{"image-target registry.example.com/ok:2"}, exact: true},
		{name: "image push", target: "/v1.41/images/registry.example.com/team/app/push?tag=1", want: []string{"image registry.example.com/team/app:1"}},
		{name: "image push of all tags", target: "/v1.41/images/registry.example.com/team/app/push", want: []string{"image registry.example.com/team/app"}},
		{name: "image tag source and target", target: "/v1.41/images/evil/tag?repo=registry.example.com/approved/app&tag=1", want: []string{"image docker.io/library/evil:latest", "image-target registry.example.com/approved/app:1"}, exact: true},
		{name: "image tag target without tag", target: "/v1.41/images/evil/tag?repo=registry.example.com/approved/app", want: []string{"image-target registry.example.com/approved/app:latest"}, not: []string{"image registry.example.com/approved/app:latest"}},
		{name: "image tag with digest target refused", target: "/v1.41/images/evil/tag?repo=busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", status: 400},
		{name: "commit names", target: "/v1.41/commit?container=c&repo=registry.example.com/approved/app&tag=2", body: `{"Cmd":["sh"]}`, want: []string{"image-target registry.example.com/approved/app:2"}, exact: true},
		{name: "commit without body", target: "/v1.41/commit?container=c&repo=x", want: []string{"image-target docker.io/library/x:latest"}},
		{name: "commit body with duplicate keys refused", target: "/v1.41/commit?container=c", body: `{"Cmd":["a"],"cmd":["b"]}`, status: 400},
		{name: "build network host", target: "/v1.41/build?networkmode=host", want: []string{"build network=host"}},
		{name: "build container network", target: "/v1.41/build?networkmode=container:x", want: []string{"build network=container"}},
		{name: "build remote", target: "/v1.41/build?remote=https://example.com/ctx.tar", want: []string{"build remote-context"}},
		{name: "build tags", target: "/v1.41/build?t=app&t=registry.example.com/approved/app:2&t=", want: []string{"image-target docker.io/library/app:latest", "image-target registry.example.com/approved/app:2"}},
		{name: "build tag with digest refused", target: "/v1.41/build?t=busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", status: 400},
		{name: "build cachefrom", target: `/v1.41/build?cachefrom=%5B%22evil%2Fcache%22%5D`, want: []string{"image docker.io/evil/cache:latest"}},
		{name: "BuildKit session context is not remote", target: "/v1.41/build?version=2&remote=client-session&session=abc", want: nil, exact: true},
		{name: "build image output names", target: `/v1.41/build?outputs=%5B%7B%22Type%22%3A%22image%22%2C%22Attrs%22%3A%7B%22name%22%3A%22evil%2Fx%2Cregistry.example.com%2Fok%3A1%22%2C%22push%22%3A%22true%22%7D%7D%5D`, want: []string{"build output=image", "image-target docker.io/evil/x:latest", "image-target registry.example.com/ok:1"}},
		{name: "build cgroup parent", target: "/v1.41/build?cgroupparent=/", want: []string{"cgroup-parent /"}},
		{name: "build outputs", target: `/v1.41/build?outputs=%5B%7B%22Type%22%3A%22local%22%7D%5D`, want: []string{"build output=local"}},
		{name: "plain build", target: "/v1.41/build", exact: true},
	})
}

func TestNetworkFacts(t *testing.T) {
	runFactCases(t, []factCase{
		{name: "network create macvlan", target: "/v1.41/networks/create", body: `{"Name":"n","Driver":"macvlan","Options":{"parent":"eth0"}}`, want: []string{"network-driver macvlan", "network-option parent=eth0"}},
		{name: "network create with a routed gateway (Engine 27)", target: "/v1.47/networks/create", body: `{"Name":"n","Options":{"com.docker.network.driver.mtu":"1400","com.docker.network.bridge.gateway_mode_ipv4":"routed"}}`,
			want: []string{"network-option com.docker.network.bridge.gateway_mode_ipv4=routed", "network-option com.docker.network.driver.mtu=1400"}, exact: true},
		{name: "network create driver via lower-case key", target: "/v1.41/networks/create", body: `{"name":"n","driver":"ipvlan"}`, want: []string{"network-driver ipvlan"}},
		{name: "network create bridge", target: "/v1.41/networks/create", body: `{"Name":"n","Driver":"bridge","CheckDuplicate":true}`, exact: true},
		{name: "network connect host", target: "/v1.41/networks/host/connect", body: `{"Container":"x"}`, want: []string{"namespace network=host"}},
		{name: "network connect sysctls", target: "/v1.41/networks/n/connect", body: `{"Container":"x","EndpointConfig":{"DriverOpts":{"com.docker.network.endpoint.sysctls":"net.ipv4.conf.IFNAME.log_martians=1"}}}`, want: []string{"sysctl net.ipv4.conf.IFNAME.log_martians=1"}},
		{name: "port below 1024", target: createTarget, body: create(`{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"80"}]}}`), want: []string{"port 80"}},
		{name: "port below 1024 with empty HostIp", target: createTarget, body: create(`{"PortBindings":{"22/tcp":[{"HostIp":"","HostPort":"22"}]}}`), want: []string{"port 22"}},
		{name: "port with leading zeros", target: createTarget, body: create(`{"PortBindings":{"22/tcp":[{"HostPort":"0022"}]}}`), want: []string{"port 22"}},
		{name: "port range below 1024", target: createTarget, body: create(`{"PortBindings":{"80/tcp":[{"HostPort":"1020-1030"}]}}`), want: []string{"port 1020", "port 1021", "port 1022", "port 1023"}, not: []string{"port 1024"}},
		{name: "port range with three parts", target: createTarget, body: create(`{"PortBindings":{"80/tcp":[{"HostPort":"79-81-90"}]}}`), want: []string{"port 79", "port 80", "port 81"}},
		{name: "high port is no fact", target: createTarget, body: create(`{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}`), not: []string{"port 8080"}},
		{name: "ephemeral port is no fact", target: createTarget, body: create(`{"PortBindings":{"80/tcp":[{"HostPort":""},{"HostPort":"0"}]}}`), exact: true, want: []string{"image docker.io/library/busybox:latest"}},
		{name: "invalid port refused", target: createTarget, body: create(`{"PortBindings":{"80/tcp":[{"HostPort":"http"}]}}`), status: 400},
	})
}

func TestSwarmAndPluginFacts(t *testing.T) {
	serviceBody := `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox","CapabilityAdd":["CAP_SYS_ADMIN"],"Sysctls":{"net.core.somaxconn":"1024"},
		"Privileges":{"SELinuxContext":{"Disable":true},"Seccomp":{"Mode":"unconfined"},"AppArmor":{"Mode":"disabled"}},
		"Mounts":[{"Type":"bind","Source":"/var/run/docker.sock","Target":"/s"}]},
		"Networks":[{"Target":"host"}],"LogDriver":{"Name":"gelf"}},
		"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":80}]}}`
	runFactCases(t, []factCase{
		{name: "service privileges", target: "/v1.41/services/create", body: serviceBody, want: []string{
			"image docker.io/library/busybox:latest", "security-opt label=disable", "security-opt seccomp=unconfined",
			"security-opt apparmor=unconfined", "capability SYS_ADMIN", "sysctl net.core.somaxconn=1024",
			"bind /run/docker.sock", "namespace network=host", "log-driver gelf", "port 80",
		}},
		{name: "service update", target: "/v1.41/services/s/update?version=3", body: serviceBody, want: []string{"capability SYS_ADMIN"}},
		{name: "service rollback judges the previous spec", target: "/v1.41/services/web/update?version=3&rollback=previous", body: `{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`, want: []string{"security-opt seccomp=unconfined"}},
		{name: "service rollback of unknown service refused", target: "/v1.41/services/nope/update?version=3&rollback=previous", body: `{"Name":"nope","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`, status: 400},
		{name: "service plugin spec", target: "/v1.41/services/create", body: `{"Name":"p","TaskTemplate":{"Runtime":"plugin","PluginSpec":{"name":"p","remote":"vieux/sshfs","privileges":[{"name":"mount","value":["/var/lib/docker/plugins/"]},{"name":"capabilities","value":["CAP_SYS_ADMIN"]}]}}}`, want: []string{"image docker.io/vieux/sshfs:latest", "bind /var/lib/docker/plugins", "capability SYS_ADMIN"}},
		{name: "service unknown field refused", target: "/v1.41/services/create", body: `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Privileged":true}}}`, status: 400},
		{name: "plugin pull privileges", target: "/v1.41/plugins/pull?remote=vieux/sshfs&name=sshfs", body: `[{"Name":"network","Value":["host"]},{"Name":"mount","Value":["/var/lib/docker/plugins/"]},{"Name":"device","Value":["/dev/fuse"]},{"Name":"capabilities","Value":["CAP_SYS_ADMIN"]},{"Name":"host pid namespace","Value":["true"]},{"Name":"allow-all-devices","Value":["true"]}]`,
			want: []string{"image docker.io/vieux/sshfs:latest", "namespace network=host", "bind /var/lib/docker/plugins", "device /dev/fuse", "capability SYS_ADMIN", "namespace pid=host", "device cgroup-rule:a *:* rwm"}},
		{name: "plugin upgrade privileges", target: "/v1.41/plugins/sshfs/upgrade?remote=vieux/sshfs:next", body: `[{"Name":"mount","Value":["/"]}]`, want: []string{"image docker.io/vieux/sshfs:next", "bind /"}},
		{name: "plugin unknown privilege refused", target: "/v1.41/plugins/pull?remote=vieux/sshfs", body: `[{"Name":"everything","Value":["true"]}]`, status: 400},
		{name: "plugin set source", target: "/v1.41/plugins/sshfs/set", body: `["state.source=/etc","DEBUG=1","dev.path=/dev/sda","bare=/root"]`, want: []string{"bind /etc", "device /dev/sda", "bind /root", "device /root"}, not: []string{"bind 1"}},
	})
}

func TestPluginCreateReadsConfigFromTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name, content string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	add("config.json", `{"Description":"harmless"}`)
	add("rootfs/bin/x", "x")
	// A rootfs larger than any JSON body limit: the tarball is spooled and
	// streamed through, not held whole.
	add("rootfs/bin/big", strings.Repeat("b", 3<<20))
	// The last config.json wins in dockerd, also under another spelling.
	add("/./config.json", `{"Description":"d","Linux":{"AllowAllDevices":true,"Capabilities":["CAP_SYS_ADMIN"],"Devices":[{"Path":"/dev/sda"}]},"Mounts":[{"Source":"/etc","Destination":"/e"}],"PidHost":true,"Network":{"Type":"host"}}`)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	runFactCases(t, []factCase{
		{name: "plugin create config privileges", target: "/v1.41/plugins/create?name=p", ctype: "application/x-tar", body: buf.String(), want: []string{
			"device cgroup-rule:a *:* rwm", "capability SYS_ADMIN", "device /dev/sda", "bind /etc", "namespace pid=host", "namespace network=host",
		}},
		{name: "plugin create without config refused", target: "/v1.41/plugins/create?name=p", ctype: "application/x-tar", body: "", status: 400},
		{name: "plugin create with a config larger than 1 MiB refused", target: "/v1.41/plugins/create?name=p", ctype: "application/x-tar", body: bigConfig(t), status: 400},
		{name: "plugin create that is not a tar refused", target: "/v1.41/plugins/create?name=p", ctype: "application/x-tar", body: "not a tarball at all, but long enough to be read as a header" + strings.Repeat(".", 512), status: 400},
	})
}

// bigConfig is a plugin tarball whose config.json is over maxPluginConfig.
func bigConfig(t *testing.T) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	config := `{"Description":"` + strings.Repeat("d", maxPluginConfig) + `"}`
	if err := tw.WriteHeader(&tar.Header{Name: "config.json", Mode: 0o644, Size: int64(len(config)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, config); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestInspectorFailuresFailClosed: facts that need dockerd's state are
// never skipped when dockerd cannot be asked.
func TestInspectorFailuresFailClosed(t *testing.T) {
	host := fakeHost(t)
	router := NewRouter()
	extract := newExtractor(host)
	broken := &fakeInspector{err: errors.New("connection refused")}
	for _, tc := range []factCase{
		{name: "named volume", target: createTarget, body: create(`{"Binds":["v:/d"]}`)},
		{name: "VolumesFrom", target: createTarget, body: create(`{"VolumesFrom":["c"]}`)},
		{name: "rollback", target: "/v1.41/services/web/update?version=1&rollback=previous", body: `{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, in := range []Inspector{broken, nil} {
				_, err := runFactCase(t, router, extract, in, tc)
				var re *RouteError
				if !errors.As(err, &re) || re.Status < 400 {
					t.Fatalf("inspector %T: want a refusal, got %v", in, err)
				}
			}
		})
	}
}

// TestSocketNamesResolveAlikeOnThisHost uses the real host: on Debian
// /var/run links to /run.
func TestSocketNamesResolveAlikeOnThisHost(t *testing.T) {
	h := hostFS{root: "/"}
	a, err := h.resolve("/var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.resolve("/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat("/var/run"); err == nil && fi.Mode()&os.ModeSymlink != 0 && a != b {
		t.Fatalf("/var/run/docker.sock resolves to %q, /run/docker.sock to %q", a, b)
	}
}

// TestDefaultExtractorIsSafeConcurrently: the extractor shares no state
// between requests.
func TestDefaultExtractorIsSafeConcurrently(t *testing.T) {
	router := NewRouter()
	extract := DefaultExtractor()
	in := newFakeInspector()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				got, err := runFactCase(t, router, extract, in, factCase{target: createTarget, body: create(`{"Privileged":true,"Binds":["bindvol:/d"]}`)})
				if err != nil || len(got) != 3 {
					t.Errorf("got %v, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkContainerCreateFacts reads the facts of the create body the
// docker CLI sends for `docker run -v /srv/ci-cache:/cache test/busybox:1 true`.
func BenchmarkContainerCreateFacts(b *testing.B) {
	body := []byte(`{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"test/busybox:1","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":["/srv/ci-cache:/cache"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}`)
	extract := DefaultExtractor()
	// The image is judged by what dockerd says it is: a fake dockerd
	// answers, without a round trip.
	in := newFakeInspector()
	m := testMatch("container.create", "1.41")
	req := &Request{Method: http.MethodPost, URL: parseTarget(b, createTarget), Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := extract(context.Background(), m, req, in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDaemonDefaultsAreNoChange: a setting that asks for what dockerd
// gives every container anyway (an updater sends a container's own
// inspect back) is no fact; the same setting before a dockerd that gives
// less is.
func TestDaemonDefaultsAreNoChange(t *testing.T) {
	masked2010 := `["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware"]`
	v1old := dockerd.Daemon{CgroupVersion: "1", Version: "20.10.24+dfsg1"}
	v2new := dockerd.Daemon{CgroupVersion: "2", Version: "29.8.0"}
	for _, tc := range []struct {
		name   string
		daemon dockerd.Daemon
		body   string
		fact   string
		want   bool
	}{
		{"cgroupns=host on a cgroup v1 host is every container's", v1old, `{"CgroupnsMode":"host"}`, "namespace cgroupns=host", false},
		{"cgroupns=host on a cgroup v2 host", v2new, `{"CgroupnsMode":"host"}`, "namespace cgroupns=host", true},
		{"dockerd 20.10's own masked paths before dockerd 20.10", v1old, `{"MaskedPaths":` + masked2010 + `}`, "security-opt systempaths=unconfined", false},
		{"dockerd 20.10's masked paths before dockerd 29, which masks more", v2new, `{"MaskedPaths":` + masked2010 + `}`, "security-opt systempaths=unconfined", true},
		{"fewer than dockerd 20.10's own before it", v1old, `{"MaskedPaths":["/proc/kcore"]}`, "security-opt systempaths=unconfined", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newFakeInspector()
			in.daemon = tc.daemon
			got, err := runFactCase(t, NewRouter(), newExtractor(fakeHost(t)), in, factCase{target: createTarget, body: create(tc.body)})
			if err != nil {
				t.Fatal(err)
			}
			has := slices.ContainsFunc(got, func(f policy.Fact) bool { return f.Kind+" "+f.Value == tc.fact })
			if has != tc.want {
				t.Errorf("fact %s: %v, want %v (facts %v)", tc.fact, has, tc.want, got)
			}
		})
	}
}
