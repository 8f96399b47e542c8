package policies_test

import (
	"io/fs"
	"sort"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/policies"
)

func load(t *testing.T, dir string) *policy.Policy {
	t.Helper()
	sub, err := fs.Sub(policies.FS, dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.LoadFS(sub, dir)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	if p.CustomModel {
		t.Fatalf("%s uses a custom model", dir)
	}
	return p
}

type decisionCase struct {
	name     string
	subjects []string
	kind     string
	value    string
	allow    bool
	rule     string // substring of the deciding rule; "" for any
}

func checkDecisions(t *testing.T, p *policy.Policy, cases []decisionCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := p.DecideFact(c.subjects, policy.Fact{Kind: c.kind, Value: c.value})
			if v.Allow != c.allow || !strings.Contains(v.RuleText(), c.rule) {
				t.Errorf("%s %s for %v: allow %v by %q, want allow %v by %q", c.kind, c.value, c.subjects, v.Allow, v.RuleText(), c.allow, c.rule)
			}
		})
	}
}

var (
	root   = []string{"uid:0", "user:root", "gid:0", "group:root", "*"}
	user   = []string{"uid:1000", "user:alice", "gid:1000", "group:alice", "group:docker", "*"}
	noRule = policy.NoRuleAllows
)

func TestDefaultPolicy(t *testing.T) {
	p := load(t, policies.Default)
	checkDecisions(t, p, []decisionCase{
		{"root may run privileged containers", root, "privileged", "container", true, "p, uid:0, *, **, allow"},
		{"root may install plugins", root, "endpoint", "plugin.install", true, "uid:0"},
		{"root may bind the docker socket", root, "bind", "/var/run/docker.sock", true, "uid:0"},
		{"root may use the host network", root, "namespace", "network=host", true, "uid:0"},
		{"a user may create containers", user, "endpoint", "container.create", true, "p, *, endpoint, container.create, allow"},
		{"a user may exec", user, "endpoint", "container.exec", true, ""},
		{"a user may copy files in and out", user, "endpoint", "container.archive.put", true, ""},
		{"a user may build (classic builder)", user, "endpoint", "build.run", true, ""},
		{"a user may pull", user, "endpoint", "image.pull", true, ""},
		{"a user may create volumes", user, "endpoint", "volume.create", true, ""},
		{"a user may read the swarm", user, "endpoint", "service.list", true, ""},
		{"a user may not install plugins", user, "endpoint", "plugin.install", false, noRule},
		{"a user may not enable plugins", user, "endpoint", "plugin.enable", false, noRule},
		{"a user may not init a swarm", user, "endpoint", "swarm.init", false, noRule},
		{"a user may not read the swarm unlock key", user, "endpoint", "swarm.unlockkey", false, noRule},
		{"a user may not create services", user, "endpoint", "service.create", false, noRule},
		{"a user may not create secrets", user, "endpoint", "secret.create", false, noRule},
		{"a user may not update nodes", user, "endpoint", "node.update", false, noRule},
		{"a user may not update cluster volumes", user, "endpoint", "volume.update", false, noRule},
		{"a user may not checkpoint to a host directory", user, "endpoint", "container.checkpoint.create", false, noRule},
		{"BuildKit's session opens, its Dockerfiles judged", user, "endpoint", "session.start", true, "p, *, endpoint, session.start, allow"},
		{"BuildKit's control API opens, its calls judged", user, "endpoint", "grpc.start", true, "p, *, endpoint, grpc.start, allow"},
		{"debug endpoints are not allowed", user, "endpoint", "debug.pprof", false, noRule},
		{"privileged container refused", user, "privileged", "container", false, noRule},
		{"privileged exec refused", user, "privileged", "exec", false, noRule},
		{"bind of the root refused", user, "bind", "/", false, noRule},
		{"bind of the docker socket refused", user, "bind", "/run/docker.sock", false, noRule},
		{"device refused", user, "device", "/dev/sda", false, noRule},
		{"device cgroup rule refused", user, "device", "cgroup-rule:a *:* rwm", false, noRule},
		{"GPU request refused", user, "device", "request:nvidia", false, noRule},
		{"SYS_ADMIN refused", user, "capability", "SYS_ADMIN", false, noRule},
		{"ALL capabilities refused", user, "capability", "ALL", false, noRule},
		{"NET_ADMIN refused", user, "capability", "NET_ADMIN", false, noRule},
		{"SYS_PTRACE allowed", user, "capability", "SYS_PTRACE", true, "p, *, capability, SYS_PTRACE, allow"},
		{"host network refused", user, "namespace", "network=host", false, noRule},
		{"host pid refused", user, "namespace", "pid=host", false, noRule},
		{"host userns refused", user, "namespace", "userns=host", false, noRule},
		{"host cgroupns refused", user, "namespace", "cgroupns=host", false, noRule},
		{"another container's network allowed", user, "namespace", "network=container", true, ""},
		{"seccomp unconfined refused", user, "security-opt", "seccomp=unconfined", false, noRule},
		{"apparmor unconfined refused", user, "security-opt", "apparmor=unconfined", false, noRule},
		{"label disable refused", user, "security-opt", "label=disable", false, noRule},
		{"unmasked paths refused", user, "security-opt", "systempaths=unconfined", false, noRule},
		{"no-new-privileges=false refused", user, "security-opt", "no-new-privileges=false", false, noRule},
		{"other runtime refused", user, "runtime", "nvidia", false, noRule},
		{"cgroup parent refused", user, "cgroup-parent", "/system.slice", false, noRule},
		{"volume driver refused", user, "volume-driver", "local-persist", false, noRule},
		{"tmpfs volume allowed", user, "volume-option", "type=tmpfs", true, "p, *, volume-option, type=tmpfs, allow"},
		{"nfs volume refused", user, "volume-option", "type=nfs", false, noRule},
		{"ext4 volume on a device refused", user, "volume-option", "type=ext4", false, noRule},
		{"overlay network allowed", user, "network-driver", "overlay", true, ""},
		{"macvlan network refused", user, "network-driver", "macvlan", false, noRule},
		{"ipvlan network refused", user, "network-driver", "ipvlan", false, noRule},
		{"safe sysctl allowed", user, "sysctl", "net.ipv4.ip_unprivileged_port_start=0", true, "net.ipv4.ip_unprivileged_port_start=*"},
		{"safe sysctl with spaces allowed", user, "sysctl", "net.ipv4.ip_local_port_range=1024 65000", true, ""},
		{"kernel.shm_rmid_forced allowed", user, "sysctl", "kernel.shm_rmid_forced=1", true, ""},
		{"ip_forward refused", user, "sysctl", "net.ipv4.ip_forward=1", false, noRule},
		{"kernel.core_pattern refused", user, "sysctl", "kernel.core_pattern=|/tmp/x", false, noRule},
		{"sysctl name that only starts like a safe one refused", user, "sysctl", "net.ipv4.tcp_syncookies_x=1", false, noRule},
		{"any image allowed", user, "image", "docker.io/library/busybox:latest", true, "p, *, image, **, allow"},
		{"any registry allowed", user, "image", "registry.example.com:5000/team/app@sha256:0123", true, ""},
		{"local image allowed", user, "local-image", "test/busybox:1", true, ""},
		{"naming an image anything allowed", user, "image-target", "registry.example.com/team/app:1", true, "p, *, image-target, **, allow"},
		{"BuildKit builds are not allowed by default", user, "build", "buildkit", false, noRule},
		{"low port allowed", user, "port", "80", true, ""},
		{"log driver allowed", user, "log-driver", "syslog", true, ""},
		{"annotation refused", user, "annotation", "run.oci.keep_original_groups", false, noRule},
		{"restart policy allowed", user, "resource", "restart=always", true, ""},
		{"explicit unlimited pids refused", user, "resource", "pids-limit=unlimited", false, noRule},
		{"another container's cgroup allowed", user, "namespace", "cgroup=container", true, ""},
		{"oom-kill-disable refused", user, "resource", "oom-kill-disable", false, noRule},
		{"negative oom-score-adj refused", user, "resource", "oom-score-adj=-1000", false, noRule},
		{"host network build refused", user, "build", "network=host", false, noRule},
		{"remote context build refused", user, "build", "remote-context", false, noRule},
		{"no tenancy in the default policy", user, "owner", "user:bob", true, ""},
	})
}

// TestDefaultPolicyRefusesExactlyTheseEndpoints lists every action a
// non-root caller may not call under the default policy, from the route
// table: a new route shows up here, refused until someone decides.
func TestDefaultPolicyRefusesExactlyTheseEndpoints(t *testing.T) {
	p := load(t, policies.Default)
	want := []string{
		"config.create", "config.delete", "config.update",
		"container.checkpoint.create", "container.checkpoint.delete", "container.checkpoint.list",
		"debug.pprof", "debug.vars",
		"node.delete", "node.update",
		"plugin.create", "plugin.delete", "plugin.disable", "plugin.enable", "plugin.inspect", "plugin.install",
		"plugin.list", "plugin.privileges", "plugin.push", "plugin.set", "plugin.upgrade",
		"secret.create", "secret.delete", "secret.update",
		"service.create", "service.delete", "service.update",
		"swarm.init", "swarm.join", "swarm.leave", "swarm.unlock", "swarm.unlockkey", "swarm.update",
		"volume.update",
	}
	var got []string
	for _, a := range actions() {
		if !p.DecideFact(user, policy.Fact{Kind: "endpoint", Value: a}).Allow {
			got = append(got, a)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("refused endpoints:\n got %v\nwant %v", got, want)
	}
	for _, a := range actions() {
		if !p.DecideFact(root, policy.Fact{Kind: "endpoint", Value: a}).Allow {
			t.Errorf("root may not call %s", a)
		}
	}
}

func actions() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range authz.NewRouter().Routes() {
		if !seen[r.Action] {
			seen[r.Action] = true
			out = append(out, r.Action)
		}
	}
	sort.Strings(out)
	return out
}

func TestCIPolicy(t *testing.T) {
	p := load(t, "ci")
	jenkins := []string{"uid:1001", "user:jenkins", "gid:1001", "group:jenkins", "*"}
	runner := []string{"uid:1002", "user:gitlab-runner", "gid:1002", "group:ci-runners", "*"}
	other := []string{"uid:1003", "user:mallory", "gid:1003", "group:mallory", "*"}
	rootInCI := []string{"uid:0", "user:root", "gid:0", "group:root", "group:ci-runners", "*"}
	checkDecisions(t, p, []decisionCase{
		{"jenkins may create containers", jenkins, "endpoint", "container.create", true, "p, role:ci, endpoint, *, allow"},
		{"ci-runners members may create containers", runner, "endpoint", "container.create", true, "role:ci"},
		{"jenkins may build", jenkins, "endpoint", "build.run", true, ""},
		{"jenkins may not install plugins", jenkins, "endpoint", "plugin.install", false, "p, role:ci, endpoint, plugin.*, deny"},
		{"jenkins may not touch the swarm", jenkins, "endpoint", "swarm.init", false, "p, role:ci, endpoint, swarm.*, deny"},
		{"jenkins may not create services", jenkins, "endpoint", "service.create", false, "service.*, deny"},
		{"BuildKit sessions open, their Dockerfiles judged", jenkins, "endpoint", "session.start", true, "p, role:ci, endpoint, *, allow"},
		{"jenkins may not what dockgate cannot judge of a BuildKit build", jenkins, "build", "buildkit", false, noRule},
		{"jenkins may not read the daemon's memory", jenkins, "endpoint", "debug.pprof", false, "debug.*, deny"},
		{"approved image allowed", jenkins, "image", "registry.example.com/approved/app:1.2", true, "p, role:ci, image, registry.example.com/approved/**, allow"},
		{"approved image by digest allowed", jenkins, "image", "registry.example.com/approved/team/app@sha256:0123", true, ""},
		{"Docker Hub image refused", jenkins, "image", "docker.io/library/busybox:latest", false, noRule},
		{"look-alike registry refused", jenkins, "image", "registry.example.com.evil.io/approved/app:1", false, noRule},
		{"registry port refused", jenkins, "image", "registry.example.com:5000/approved/app:1", false, noRule},
		{"sibling namespace refused", jenkins, "image", "registry.example.com/approved-evil/app:1", false, noRule},
		{"own build's tag used as a source allowed", jenkins, "image", "ci.local/app:42", true, "ci.local/**"},
		{"naming an image under ci.local allowed", jenkins, "image-target", "ci.local/app:42", true, "p, role:ci, image-target, ci.local/**, allow"},
		{"minting a name in the approved namespace refused", jenkins, "image-target", "registry.example.com/approved/app:1", false, noRule},
		{"minting a name on Docker Hub refused", jenkins, "image-target", "docker.io/library/busybox:latest", false, noRule},
		{"minting a look-alike of ci.local refused", jenkins, "image-target", "ci.local.evil.io/app:1", false, noRule},
		{"removing a shared base image refused", jenkins, "owner", "none", false, noRule},
		{"removing another job's image refused", jenkins, "owner", "other", false, noRule},
		{"removing one's own image allowed", jenkins, "owner", "self", true, "p, role:ci, owner, self, allow"},
		{"own build runs as a local image", jenkins, "local-image", "ci.local/app:42", true, "p, role:ci, local-image, ci.local/**, allow"},
		{"a local image under an approved name refused", jenkins, "local-image", "registry.example.com/approved/app:1", false, noRule},
		{"cache directory itself allowed", jenkins, "bind", "/srv/ci-cache", true, "p, role:ci, bind, /srv/ci-cache/**, allow"},
		{"a Docker socket is delegated to a job's container", jenkins, "docker-socket", "/run/docker.sock", true, "p, role:ci, docker-socket, **, allow"},
		{"dockerd's socket as a bind is root on the host", jenkins, "bind", "/run/docker.sock", false, "no rule allows it"},
		{"cache subdirectory allowed", jenkins, "bind", "/srv/ci-cache/job/42", true, ""},
		{"cache sibling refused", jenkins, "bind", "/srv/ci-cache-evil", false, noRule},
		{"cache entry the job could swap refused", jenkins, "replaceable-path", "/srv/ci-cache/jenkins/d", false, noRule},
		{"docker socket refused", jenkins, "bind", "/var/run/docker.sock", false, noRule},
		{"root filesystem refused", jenkins, "bind", "/", false, noRule},
		{"NET_BIND_SERVICE allowed", jenkins, "capability", "NET_BIND_SERVICE", true, ""},
		{"SYS_ADMIN refused", jenkins, "capability", "SYS_ADMIN", false, noRule},
		{"ALL refused", jenkins, "capability", "ALL", false, noRule},
		{"privileged refused", jenkins, "privileged", "container", false, noRule},
		{"host pid refused", jenkins, "namespace", "pid=host", false, noRule},
		{"host network refused", jenkins, "namespace", "network=host", false, noRule},
		{"seccomp unconfined refused", jenkins, "security-opt", "seccomp=unconfined", false, noRule},
		{"device refused", jenkins, "device", "/dev/fuse", false, noRule},
		{"tmpfs allowed", jenkins, "volume-option", "type=tmpfs", true, ""},
		{"a local volume binding a host path refused", jenkins, "volume-option", "type=none", false, noRule},
		{"a caller outside the role may do nothing", other, "endpoint", "system.ping", false, noRule},
		{"root may do everything", root, "endpoint", "plugin.install", true, "p, uid:0, *, **, allow"},
		{"deny wins over allow of another subject: root in ci-runners", rootInCI, "endpoint", "plugin.install", false, "p, role:ci, endpoint, plugin.*, deny"},
	})
}

func TestReadOnlyMonitoringPolicy(t *testing.T) {
	p := load(t, "read-only-monitoring")
	mon := []string{"uid:998", "user:telegraf", "gid:998", "group:monitoring", "*"}
	checkDecisions(t, p, []decisionCase{
		{"ping", mon, "endpoint", "system.ping", true, "p, role:monitoring, endpoint, system.ping, allow"},
		{"list containers", mon, "endpoint", "container.list", true, ""},
		{"inspect containers", mon, "endpoint", "container.inspect", true, ""},
		{"read logs", mon, "endpoint", "container.logs", true, ""},
		{"read stats", mon, "endpoint", "container.stats", true, ""},
		{"read events", mon, "endpoint", "system.events", true, ""},
		{"prometheus by user name", []string{"uid:997", "user:prometheus", "*"}, "endpoint", "system.info", true, ""},
		{"docker cp out of a container leaks files", mon, "endpoint", "container.archive.get", false, noRule},
		{"archive head leaks which files exist", mon, "endpoint", "container.archive.head", false, noRule},
		{"old copy endpoint leaks files", mon, "endpoint", "container.archive.copy", false, noRule},
		{"export leaks the filesystem", mon, "endpoint", "container.export", false, noRule},
		{"image save leaks every layer", mon, "endpoint", "image.save", false, noRule},
		{"exec is a shell", mon, "endpoint", "container.exec", false, noRule},
		{"exec start", mon, "endpoint", "exec.start", false, noRule},
		{"attach is a process's input", mon, "endpoint", "container.attach", false, noRule},
		{"websocket attach on GET is attach too", mon, "endpoint", "container.attach.ws", false, noRule},
		{"top shows command lines", mon, "endpoint", "container.top", false, noRule},
		{"no create", mon, "endpoint", "container.create", false, noRule},
		{"no stop", mon, "endpoint", "container.stop", false, noRule},
		{"no pull", mon, "endpoint", "image.pull", false, noRule},
		{"no registry login checks", mon, "endpoint", "system.auth", false, noRule},
		{"no registry lookups", mon, "endpoint", "distribution.inspect", false, noRule},
		{"no image names", mon, "image-target", "docker.io/library/busybox:latest", false, noRule},
		{"no tags", mon, "endpoint", "image.tag", false, noRule},
		{"no BuildKit", mon, "build", "buildkit", false, noRule},
		{"no secrets", mon, "endpoint", "secret.inspect", false, noRule},
		{"a monitoring admin keeps root's rights", []string{"uid:0", "group:monitoring", "*"}, "endpoint", "container.exec", true, "uid:0"},
	})
}

// TestReadOnlyMonitoringOnlyReads: every action the monitoring role may
// call is a GET or HEAD route, and none of them hands out file contents.
func TestReadOnlyMonitoringOnlyReads(t *testing.T) {
	p := load(t, "read-only-monitoring")
	mon := []string{"group:monitoring", "*"}
	leaks := map[string]bool{"container.archive.get": true, "container.archive.head": true, "container.export": true,
		"image.save": true, "container.attach.ws": true, "container.changes": true, "container.top": true}
	for _, r := range authz.NewRouter().Routes() {
		if !p.DecideFact(mon, policy.Fact{Kind: "endpoint", Value: r.Action}).Allow {
			continue
		}
		if r.Method != "GET" && r.Method != "HEAD" {
			t.Errorf("monitoring may call %s %s (%s)", r.Method, r.Path, r.Action)
		}
		if leaks[r.Action] {
			t.Errorf("monitoring may call %s, which reads files", r.Action)
		}
	}
}

func TestTenants(t *testing.T) {
	for _, tc := range []struct {
		dir      string
		subjects []string
		owner    string
	}{
		{"ci", []string{"uid:1001", "user:jenkins", "*"}, "user:jenkins"},
		{"ci", []string{"uid:1002", "user:alice", "group:ci-runners", "*"}, "user:alice"},
		{"ci", []string{"uid:0", "user:root", "group:root", "*"}, ""},
		{"ci", []string{"uid:1003", "user:bob", "*"}, ""},
		{"default", []string{"uid:1001", "user:jenkins", "*"}, ""},
		{"default", []string{"uid:0", "user:root", "*"}, ""},
	} {
		owner, err := load(t, tc.dir).Owner(tc.subjects)
		if err != nil || owner != tc.owner {
			t.Errorf("%s %v: owner %q, %v; want %q", tc.dir, tc.subjects, owner, err, tc.owner)
		}
	}
}
