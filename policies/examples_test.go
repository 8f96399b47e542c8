package policies_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
	"github.com/dockgate/dockgate/policies"
)

// The profiles in examples/ are not embedded (an operator copies them
// into a policy directory), so they are read from disk, as dockgate
// serve --policy would read them.

const examplesDir = "examples"

// profiles are the shipped profiles: directory and the one file in it.
var profiles = map[string]string{
	"reverse-proxy": "reverse-proxy.csv",
	"dashboard":     "dashboard.csv",
	"updater":       "updater.csv",
	"ci-agent":      "ci-agent.csv",
}

func loadProfile(t *testing.T, name string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadDir(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if p.CustomModel {
		t.Fatalf("%s uses a custom model", name)
	}
	return p
}

// TestProfilesLoad: every profile loads alone, each directory holds
// exactly its one file and its tests (run by policytest's
// TestShippedPolicies), no directory in examples/ is left untested, and
// the profiles load together with the embedded policies they are meant
// to be copied next to (no row of one breaks another).
func TestProfilesLoad(t *testing.T) {
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := profiles[e.Name()]; !ok {
			t.Errorf("examples/%s is not a known profile: add it to profiles and test it", e.Name())
		}
	}
	for name, file := range profiles {
		t.Run(name, func(t *testing.T) {
			p := loadProfile(t, name)
			if len(p.Rules) == 0 {
				t.Fatal("no rules")
			}
			files, err := filepath.Glob(filepath.Join(examplesDir, name, "*"))
			tests := strings.TrimSuffix(file, ".csv") + "_test.yaml"
			if err != nil || len(files) != 2 || filepath.Base(files[0]) != file || filepath.Base(files[1]) != tests {
				t.Errorf("files %v, want only %s and %s", files, file, tests)
			}
			// A profile's rows are for containers: none names a host
			// identity, so that copying one in gives no host caller
			// anything.
			for _, r := range p.Rules {
				if policy.IsHostIdentity(r.Subject) {
					t.Errorf("%s:%d: a profile row for the host identity %s", r.File, r.Line, r.Subject)
				}
			}
			for _, l := range p.Links {
				if policy.IsHostIdentity(l.Member) {
					t.Errorf("%s:%d: a profile link for the host identity %s", l.File, l.Line, l.Member)
				}
			}
		})
	}
	for _, with := range []string{policies.Default, "ci"} {
		t.Run("all next to "+with, func(t *testing.T) {
			dir := t.TempDir()
			embedded, err := policies.FS.ReadDir(with)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range embedded {
				b, err := policies.FS.ReadFile(with + "/" + e.Name())
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "00-"+e.Name()), b)
			}
			for name, file := range profiles {
				b, err := os.ReadFile(filepath.Join(examplesDir, name, file))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "50-"+file), b)
			}
			if _, err := policy.LoadDir(dir); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Container IDs of the callers in these tests.
const (
	traefikID    = "1111111111111111111111111111111111111111111111111111111111111111"
	homepageID   = "2222222222222222222222222222222222222222222222222222222222222222"
	watchtowerID = "3333333333333333333333333333333333333333333333333333333333333333"
	agentID      = "4444444444444444444444444444444444444444444444444444444444444444"
	ryukID       = "5555555555555555555555555555555555555555555555555555555555555555"
	otherID      = "6666666666666666666666666666666666666666666666666666666666666666"
	strangerID   = "7777777777777777777777777777777777777777777777777777777777777777"
	jenkinsJobID = "8888888888888888888888888888888888888888888888888888888888888888"
)

// callers is what a fake dockerd says of each caller's container: the
// profiles' containers as an administrator started them (no dockgate
// label), a job container the CI agent started (its owner and creator
// recorded by dockgate), and a container that is none of them.
var callers = map[string]dockerd.CallerContainer{
	traefikID:    {ID: traefikID, Name: "traefik", Image: "traefik:v3.1", ImageKnown: true},
	homepageID:   {ID: homepageID, Name: "homepage", Image: "ghcr.io/gethomepage/homepage:latest", ImageKnown: true},
	watchtowerID: {ID: watchtowerID, Name: "watchtower", Image: "containrrr/watchtower", ImageKnown: true},
	agentID:      {ID: agentID, Name: "ci-agent", Image: "registry.example.com/approved/ci-agent:1", ImageKnown: true},
	ryukID: {ID: ryukID, Name: "testcontainers-ryuk-1", Image: "testcontainers/ryuk:0.11.0", ImageKnown: true, Labels: map[string]string{
		authz.OwnerLabel:   "container:ci-agent",
		authz.CreatorLabel: `{"id":"0123456789abcdef","owner":"container:ci-agent","creators":[["container:ci-agent","image:registry.example.com/approved/ci-agent","*"]]}`,
	}},
	// A job user:jenkins started through dockgate as a tenant of the CI
	// example policy: root in it is jenkins.
	jenkinsJobID: {ID: jenkinsJobID, Name: "job-42", Image: "registry.example.com/approved/app:1", ImageKnown: true, Labels: map[string]string{
		authz.OwnerLabel:   "user:jenkins",
		authz.CreatorLabel: `{"id":"fedcba9876543210","owner":"user:jenkins","creators":[["uid:1001","user:jenkins","gid:1001","group:jenkins","*"]]}`,
	}},
	// Named like nothing in a profile, with labels a creator could set on
	// any container.
	strangerID: {ID: strangerID, Name: "web", Image: "registry.example.com/approved/app:1", ImageKnown: true,
		Labels: map[string]string{"traefik.enable": "true"}},
}

type fakeCallers map[string]dockerd.CallerContainer

func (f fakeCallers) CallerContainer(_ context.Context, id string) (dockerd.CallerContainer, bool, error) {
	c, ok := f[id]
	return c, ok, nil
}

// fakeDockerd answers the extractor's questions: the containers named in
// requests (the profiles' own, the agent's job, an administrator's app),
// no volumes, and images as if not pulled yet (judged by the name
// requested, as a create of a pulled image would be by its RepoDigests).
type fakeDockerd struct{}

var objects = map[string]struct {
	id     string
	labels map[string]string
}{
	"traefik":  {traefikID, nil},
	"homepage": {homepageID, nil},
	"ci-agent": {agentID, nil},
	"app":      {otherID, nil},
	"job":      {ryukID, callers[ryukID].Labels},
}

func (fakeDockerd) VolumeOptions(context.Context, string) (string, map[string]string, bool, error) {
	return "", nil, false, nil
}

func (fakeDockerd) ContainerMounts(_ context.Context, name string) (dockerd.ContainerMounts, bool, error) {
	o, ok := objects[name]
	return dockerd.ContainerMounts{ID: o.id}, ok, nil
}

func (fakeDockerd) Daemon(context.Context) (dockerd.Daemon, error) {
	return dockerd.Daemon{CgroupVersion: "2", Version: "29.8.0"}, nil
}

func (fakeDockerd) ImageProvenance(context.Context, string) (string, []string, []string, bool, error) {
	return "", nil, nil, false, nil
}

func (fakeDockerd) ObjectOwner(_ context.Context, kind, name string) (string, map[string]string, bool, error) {
	if kind != authz.ObjectContainer {
		return "", nil, false, nil
	}
	o, ok := objects[name]
	if !ok {
		// A full ID, as dockerd resolves it: a tenant's request is judged
		// for the container its name was resolved to once.
		for _, byName := range objects {
			if byName.id == name {
				o, ok = byName, true
			}
		}
	}
	return o.id, o.labels, ok, nil
}

// profileCase is one request of a caller in a container, judged by the
// real decider with the real route table and fact extractor.
type profileCase struct {
	name   string
	caller string // container ID
	method string
	target string
	body   string
	allow  bool
	reason string // substring of the refusal
}

func checkProfile(t *testing.T, p *policy.Policy, cases []profileCase) {
	t.Helper()
	d := authz.NewPolicyDecider(p)
	d.Containers = fakeCallers(callers)
	d.Extract = authz.DefaultExtractor()
	d.Inspector = fakeDockerd{}
	router := authz.NewRouter()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(c.target)
			if err != nil {
				t.Fatal(err)
			}
			// Root in the container: its uid is no subject.
			req := &authz.Request{Method: c.method, URL: u, Header: http.Header{}, ContainerID: c.caller,
				Caller: "uid:0", Subjects: []string{"uid:0", "user:root", "gid:0", "group:root", "*"}}
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
				req.Body = []byte(c.body)
			}
			m, err := router.Route(c.method, u)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			if dec.Allow != c.allow || !c.allow && !strings.Contains(dec.Reason, c.reason) {
				t.Errorf("%s %s: allow %v (%d %s), want allow %v %q", c.method, c.target, dec.Allow, dec.Status, dec.Reason, c.allow, c.reason)
			}
			if c.allow && dec.Container == nil {
				t.Error("not judged as a container")
			}
		})
	}
}

const approved = "registry.example.com/approved/app:2"

func createBody(hostConfig string) string {
	return `{"Image":"` + approved + `","HostConfig":` + hostConfig + `}`
}

func TestReverseProxyProfile(t *testing.T) {
	checkProfile(t, loadProfile(t, "reverse-proxy"), []profileCase{
		{"version at Traefik's fixed API version", traefikID, "GET", "/v1.24/version", "", true, ""},
		{"ping", traefikID, "HEAD", "/_ping", "", true, ""},
		{"list containers", traefikID, "GET", "/v1.24/containers/json?all=1", "", true, ""},
		{"inspect a container", traefikID, "GET", "/v1.24/containers/app/json", "", true, ""},
		{"events", traefikID, "GET", `/v1.24/events?filters={"type":["container"]}`, "", true, ""},
		{"create a container", traefikID, "POST", "/v1.41/containers/create", createBody(`{}`), false, "container:traefik may not endpoint container.create"},
		{"exec in another container", traefikID, "POST", "/v1.41/containers/app/exec", `{"Cmd":["sh"]}`, false, "may not endpoint container.exec"},
		{"copy files out", traefikID, "GET", "/v1.41/containers/app/archive?path=/etc", "", false, "may not endpoint container.archive.get"},
		{"read logs", traefikID, "GET", "/v1.41/containers/app/logs?stdout=1", "", false, "may not endpoint container.logs"},
		{"pull", traefikID, "POST", "/v1.41/images/create?fromImage=" + approved, "", false, "may not endpoint image.pull"},
		{"daemon configuration", traefikID, "GET", "/v1.41/info", "", false, "may not endpoint system.info"},
		{"another container carrying Traefik's routing label is not the proxy", strangerID, "GET", "/v1.24/containers/json", "", false, "container:web may not endpoint container.list"},
		{"a container of another daemon is *", otherID, "GET", "/v1.24/containers/json", "", false, "may not endpoint container.list"},
	})
}

func TestDashboardProfile(t *testing.T) {
	checkProfile(t, loadProfile(t, "dashboard"), []profileCase{
		{"ping", homepageID, "GET", "/_ping", "", true, ""},
		{"list containers", homepageID, "GET", "/v1.41/containers/json?all=true", "", true, ""},
		{"inspect", homepageID, "GET", "/v1.41/containers/app/json", "", true, ""},
		{"one stats sample", homepageID, "GET", "/v1.41/containers/app/stats?stream=false", "", true, ""},
		{"follow logs", homepageID, "GET", "/v1.41/containers/app/logs?follow=1&stdout=1&stderr=1&tail=100", "", true, ""},
		{"stop button", homepageID, "POST", "/v1.41/containers/app/stop", "", false, "container:homepage may not endpoint container.stop"},
		{"restart button", homepageID, "POST", "/v1.41/containers/app/restart", "", false, "may not endpoint container.restart"},
		{"exec", homepageID, "POST", "/v1.41/containers/app/exec", `{"Cmd":["sh"]}`, false, "may not endpoint container.exec"},
		{"attach", homepageID, "POST", "/v1.41/containers/app/attach?stream=1&stdin=1", "", false, "may not endpoint container.attach"},
		{"export a filesystem", homepageID, "GET", "/v1.41/containers/app/export", "", false, "may not endpoint container.export"},
		{"create", homepageID, "POST", "/v1.41/containers/create", createBody(`{}`), false, "may not endpoint container.create"},
		{"events are not needed", homepageID, "GET", "/v1.41/events", "", false, "may not endpoint system.events"},
		{"the reverse proxy's name gives nothing here", traefikID, "GET", "/v1.41/containers/json", "", false, "container:traefik may not endpoint container.list"},
	})
}

func TestUpdaterProfile(t *testing.T) {
	checkProfile(t, loadProfile(t, "updater"), []profileCase{
		{"list running containers", watchtowerID, "GET", `/v1.41/containers/json?filters={"status":["running"]}`, "", true, ""},
		{"inspect", watchtowerID, "GET", "/v1.41/containers/app/json", "", true, ""},
		{"inspect the image", watchtowerID, "GET", "/v1.41/images/" + approved + "/json", "", true, ""},
		{"pull an approved image", watchtowerID, "POST", "/v1.41/images/create?fromImage=registry.example.com/approved/app&tag=2", "", true, ""},
		{"pull an approved image by digest", watchtowerID, "POST", "/v1.41/images/create?fromImage=registry.example.com/approved/team/app@sha256:" + strings.Repeat("a", 64), "", true, ""},
		{"stop with a signal", watchtowerID, "POST", "/v1.41/containers/app/kill?signal=SIGTERM", "", true, ""},
		{"remove the old container", watchtowerID, "DELETE", "/v1.41/containers/app?force=1", "", true, ""},
		{"recreate it with its settings", watchtowerID, "POST", "/v1.41/containers/create?name=app",
			createBody(`{"RestartPolicy":{"Name":"unless-stopped"},"PortBindings":{"80/tcp":[{"HostPort":"80"}]},"LogConfig":{"Type":"syslog"}}`), true, ""},
		{"reconnect a network", watchtowerID, "POST", "/v1.41/networks/backend/connect", `{"Container":"app"}`, true, ""},
		{"start it", watchtowerID, "POST", "/v1.41/containers/app/start", "", true, ""},
		{"remove the old image", watchtowerID, "DELETE", "/v1.41/images/sha256:" + strings.Repeat("b", 64) + "?force=1", "", true, ""},
		{"privileged container", watchtowerID, "POST", "/v1.41/containers/create?name=app", createBody(`{"Privileged":true}`), false, "container:watchtower may not privileged container"},
		{"bind of the host's root", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"Binds":["/:/host"]}`), false, "may not bind /"},
		// A bind fact on this branch, a docker-socket fact where the
		// extractor tells sockets apart: refused either way.
		{"bind of dockerd's socket", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}`), false, "may not "},
		{"host network", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"NetworkMode":"host"}`), false, "may not namespace network=host"},
		{"host pid", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"PidMode":"host"}`), false, "may not namespace pid=host"},
		{"another container's network", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"NetworkMode":"container:traefik"}`), false, "may not namespace network=container"},
		{"SYS_ADMIN", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"CapAdd":["SYS_ADMIN"]}`), false, "may not capability SYS_ADMIN"},
		{"a device", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]}`), false, "may not device /dev/sda"},
		{"seccomp off", watchtowerID, "POST", "/v1.41/containers/create", createBody(`{"SecurityOpt":["seccomp=unconfined"]}`), false, "may not security-opt seccomp=unconfined"},
		{"an image from Docker Hub", watchtowerID, "POST", "/v1.41/containers/create", `{"Image":"busybox"}`, false, "may not image docker.io/library/busybox:latest"},
		{"pull from Docker Hub", watchtowerID, "POST", "/v1.41/images/create?fromImage=busybox&tag=latest", "", false, "may not image docker.io/library/busybox:latest"},
		{"a look-alike registry", watchtowerID, "POST", "/v1.41/images/create?fromImage=registry.example.com.evil.io/approved/app&tag=1", "", false, "may not image"},
		{"rename itself to take another container's rows", watchtowerID, "POST", "/v1.41/containers/watchtower/rename?name=ci-agent", "", false, "may not endpoint container.rename"},
		{"exec (lifecycle hooks)", watchtowerID, "POST", "/v1.41/containers/app/exec", `{"Cmd":["sh"]}`, false, "may not endpoint container.exec"},
		{"tag an image into the approved namespace", watchtowerID, "POST", "/v1.41/images/busybox/tag?repo=registry.example.com/approved/app&tag=2", "", false, "may not endpoint image.tag"},
	})
}

func TestCIAgentProfile(t *testing.T) {
	checkProfile(t, loadProfile(t, "ci-agent"), []profileCase{
		{"ping", agentID, "GET", "/_ping", "", true, ""},
		{"run a job from an approved image", agentID, "POST", "/v1.41/containers/create?name=job", createBody(`{}`), true, ""},
		{"start Ryuk", agentID, "POST", "/v1.41/containers/create", `{"Image":"testcontainers/ryuk:0.11.0"}`, true, ""},
		{"list (its own)", agentID, "GET", "/v1.41/containers/json", "", true, ""},
		{"inspect its job", agentID, "GET", "/v1.41/containers/job/json", "", true, ""},
		{"remove its job", agentID, "DELETE", "/v1.41/containers/job?force=1", "", true, ""},
		{"Ryuk acts for the agent: list", ryukID, "GET", "/v1.41/containers/json?all=1", "", true, ""},
		{"Ryuk acts for the agent: remove its job", ryukID, "DELETE", "/v1.41/containers/job?force=1", "", true, ""},
		{"privileged job", agentID, "POST", "/v1.41/containers/create", createBody(`{"Privileged":true}`), false, "container:ci-agent may not privileged container"},
		{"privileged Ryuk", agentID, "POST", "/v1.41/containers/create", `{"Image":"testcontainers/ryuk:0.11.0","HostConfig":{"Privileged":true}}`, false, "may not privileged container"},
		{"a host path", agentID, "POST", "/v1.41/containers/create", createBody(`{"Binds":["/etc:/host-etc"]}`), false, "may not bind /etc"},
		{"host network", agentID, "POST", "/v1.41/containers/create", createBody(`{"NetworkMode":"host"}`), false, "may not namespace network=host"},
		{"an image from Docker Hub", agentID, "POST", "/v1.41/containers/create", `{"Image":"busybox"}`, false, "may not image docker.io/library/busybox:latest"},
		{"another repository of testcontainers", agentID, "POST", "/v1.41/containers/create", `{"Image":"testcontainers/sshd:1.2.0"}`, false, "may not image docker.io/testcontainers/sshd:1.2.0"},
		{"an administrator's container", agentID, "GET", "/v1.41/containers/app/json", "", false, "may not owner none"},
		{"its own container, which an administrator created", agentID, "POST", "/v1.41/containers/ci-agent/rename?name=x", "", false, "may not owner none"},
		{"exec in the reverse proxy", agentID, "POST", "/v1.41/containers/traefik/exec", `{"Cmd":["sh"]}`, false, "may not owner none"},
		{"install a plugin", agentID, "POST", "/v1.41/plugins/pull?remote=evil/plugin", "[]", false, "may not endpoint plugin.install"},
		{"BuildKit with a context no request judged", agentID, "POST", "/v1.41/build?version=2&remote=upload-request&t=ci.local/x", "", false, "may not build buildkit"},
		{"Ryuk is no more than the agent: privileged", ryukID, "POST", "/v1.41/containers/create", createBody(`{"Privileged":true}`), false, "may not privileged container"},
		{"Ryuk is no more than the agent: an administrator's container", ryukID, "DELETE", "/v1.41/containers/app", "", false, "may not owner none"},
	})
}

// TestCIAgentDelegatesDockerSockets: the docker-socket fact, by whatever
// path it names, is allowed to the agent and to the jobs that act for it,
// and to nobody else; any other host path is a bind, refused. (Decided
// fact by fact: the extractor emits docker-socket where sockets are told
// apart from binds.)
func TestCIAgentDelegatesDockerSockets(t *testing.T) {
	p := loadProfile(t, "ci-agent")
	agent := authz.JudgeContainer(p, agentID, callers[agentID], true).Subjects
	ryuk := authz.JudgeContainer(p, ryukID, callers[ryukID], true).Subjects
	web := authz.JudgeContainer(p, strangerID, callers[strangerID], true).Subjects
	checkDecisions(t, p, []decisionCase{
		{"the agent hands Ryuk a socket", agent, "docker-socket", "/run/docker.sock", true, "role:ci-agent, docker-socket, **, allow"},
		{"by dockgate's own path too", agent, "docker-socket", "/run/dockgate/docker.sock", true, ""},
		{"a job hands its own job a socket", ryuk, "docker-socket", "/run/docker.sock", true, ""},
		{"any other host path is no socket", agent, "bind", "/run", false, noRule},
		{"another container may not", web, "docker-socket", "/run/docker.sock", false, noRule},
		{"root on the host is not given it here", root, "docker-socket", "/run/docker.sock", false, noRule},
	})
	if owner, err := p.Owner(agent); owner != "container:ci-agent" || err != nil {
		t.Errorf("the agent owns by %q, %v; want container:ci-agent", owner, err)
	}
	if owner, err := p.Owner(ryuk); owner != "container:ci-agent" || err != nil {
		t.Errorf("Ryuk owns by %q, %v; want container:ci-agent: what it creates is the agent's", owner, err)
	}
}

// TestEmbeddedPoliciesGiveContainersNoHostRoot: under every embedded
// policy, root in a container (whatever its name, image or labels) is not
// host root and cannot create a privileged container, while root on the
// host keeps its rights where the policy gives them.
func TestEmbeddedPoliciesGiveContainersNoHostRoot(t *testing.T) {
	// An image the CI example approves, so that its tenants are refused
	// for privileged itself.
	privileged := createBody(`{"Privileged":true}`)
	for _, dir := range []string{policies.Default, "ci", "read-only-monitoring"} {
		p := load(t, dir)
		d := authz.NewPolicyDecider(p)
		d.Containers = fakeCallers(callers)
		d.Extract = authz.DefaultExtractor()
		d.Inspector = fakeDockerd{}
		router := authz.NewRouter()
		for _, tc := range []struct {
			name      string
			container string // "" for a host process
			allow     bool
		}{
			{"root on the host", "", true},
			{"root in container:traefik", traefikID, false},
			{"root in container:ci-agent", agentID, false},
			{"root in the CI agent's job", ryukID, false},
			{"root in jenkins' job", jenkinsJobID, false},
			{"root in a container labelled traefik.enable=true", strangerID, false},
			{"root in another daemon's container", otherID, false},
		} {
			t.Run(dir+"/"+tc.name, func(t *testing.T) {
				u, _ := url.ParseRequestURI("/v1.41/containers/create")
				req := &authz.Request{Method: "POST", URL: u, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(privileged),
					Caller: "uid:0", Subjects: []string{"uid:0", "user:root", "gid:0", "group:root", "*"}, ContainerID: tc.container}
				m, err := router.Route("POST", u)
				if err != nil {
					t.Fatal(err)
				}
				dec := d.Decide(context.Background(), m, req)
				if dec.Allow != tc.allow {
					t.Errorf("allow %v (%d %s), want %v", dec.Allow, dec.Status, dec.Reason, tc.allow)
				}
				if !tc.allow && (dec.Status != http.StatusForbidden || strings.Contains(dec.Reason, "uid:0") ||
					!strings.Contains(dec.Reason, "may not privileged container") && !strings.Contains(dec.Reason, "may not endpoint container.create")) {
					t.Errorf("refused as %d %s: want 403 naming the container, not uid:0, for privileged or the create itself", dec.Status, dec.Reason)
				}
			})
		}
	}
}
