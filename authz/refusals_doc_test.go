package authz

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
)

// refusalCase is one request the CI example policy refuses, rendered into
// docs/refusals.md with the message the real decider gives it.
type refusalCase struct {
	kind, name     string
	method, target string
	body           string
	subjects       []string
	// fix must be part of the message: what each case promises to teach.
	fix string
}

// Fake IDs as dockerd prints them: 64 hex digits.
const (
	agentID  = "3f2a9c1be4d07a6153b2c8e9f0d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3"
	theirsID = "9b1e7d3c5a2f4e6d8c0b1a29384756abcdef0123456789abcdef0123456789ab"
	imageID  = "sha256:5d0da3dc976460b72c77d94c8a1ad043720b0416bfc16c52c45d4847e53fadb6"
)

var jenkinsSubjects = []string{"user:jenkins", "uid:1001", "gid:1001", "group:jenkins", "*"}

func refusalCases() []refusalCase {
	create := func(hostConfig string) string {
		return `{"Image":"registry.example.com/approved/app:1","HostConfig":{` + hostConfig + `}}`
	}
	return []refusalCase{
		{kind: "endpoint", name: "an endpoint a deny row refuses", method: "POST", target: "/v1.41/plugins/pull?remote=vieux/sshfs", fix: "a deny row wins over every allow row, and allowing it is root on the host"},
		{kind: "endpoint", name: "a caller the policy does not name", method: "GET", target: "/v1.41/_ping", subjects: []string{"uid:1002", "gid:1002", "*"}, fix: `add "p, uid:1002, endpoint, system.ping, allow"`},
		{kind: "image", name: "an image from outside the approved namespace", target: "/v1.41/containers/create", body: `{"Image":"docker.io/library/alpine:3.20"}`, fix: `add "p, role:ci, image, docker.io/library/alpine:3.20, allow"`},
		{kind: "local-image", name: "an approved name on an image that did not come from the registry", target: "/v1.41/containers/create", body: `{"Image":"registry.example.com/approved/app:2"}`, fix: "pull it from the registry"},
		{kind: "local-image", name: "an image built here under a name of its own", target: "/v1.41/containers/create", body: `{"Image":"myapp:dev"}`, fix: `add "p, role:ci, local-image, docker.io/library/myapp:dev, allow"`},
		{kind: "image-target", name: "a tag into the approved namespace", target: "/v1.41/images/ci.local/app:1/tag?repo=registry.example.com/approved/app&tag=1", fix: "would let local content pass as approved"},
		{kind: "image-target", name: "a tag under another name", target: "/v1.41/images/ci.local/app:1/tag?repo=team/app&tag=1", fix: `add "p, role:ci, image-target, docker.io/team/app:1, allow"`},
		{kind: "privileged", name: "a privileged container", target: "/v1.41/containers/create", body: create(`"Privileged":true`), fix: `"p, user:jenkins, privileged, container, allow" would do it`},
		{kind: "bind", name: "a host directory", target: "/v1.41/containers/create", body: create(`"Binds":["/srv/data:/data"]`), fix: `add "p, role:ci, bind, /srv/data/**, allow"`},
		{kind: "bind", name: "the host's root", target: "/v1.41/containers/create", body: create(`"Binds":["/:/host"]`), fix: "is root on the host"},
		{kind: policy.ReplaceablePathKind, name: "a cache directory every user may write", target: "/v1.41/containers/create", body: create(`"Binds":["/srv/ci-cache/shared/job:/cache"]`), fix: "make every directory on the way root-owned"},
		{kind: "volume-driver", name: "a volume of a plugin driver", target: "/v1.41/volumes/create", body: `{"Name":"data","Driver":"rexray"}`, fix: `add "p, role:ci, volume-driver, rexray, allow"`},
		{kind: "volume-option", name: "an NFS volume", target: "/v1.41/volumes/create", body: `{"Name":"share","Driver":"local","DriverOpts":{"type":"nfs","o":"addr=10.0.0.1","device":":/export"}}`, fix: `add "p, role:ci, volume-option, type=nfs, allow"`},
		{kind: "device", name: "a host disk", target: "/v1.41/containers/create", body: create(`"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]`), fix: "is root on the host"},
		{kind: "device", name: "a GPU", target: "/v1.41/containers/create", body: create(`"DeviceRequests":[{"Driver":"nvidia","Count":-1,"Capabilities":[["gpu"]]}]`), fix: `add "p, role:ci, device, request:nvidia, allow"`},
		{kind: "capability", name: "SYS_ADMIN", target: "/v1.41/containers/create", body: create(`"CapAdd":["SYS_ADMIN"]`), fix: "is root on the host"},
		{kind: "capability", name: "NET_ADMIN", target: "/v1.41/containers/create", body: create(`"CapAdd":["NET_ADMIN"]`), fix: `add "p, role:ci, capability, NET_ADMIN, allow"`},
		{kind: "namespace", name: "the host's network", target: "/v1.41/containers/create", body: create(`"NetworkMode":"host"`), fix: "is root on the host"},
		{kind: "namespace", name: "the host's processes", target: "/v1.41/containers/create", body: create(`"PidMode":"host"`), fix: "is root on the host"},
		{kind: "security-opt", name: "seccomp off", target: "/v1.41/containers/create", body: create(`"SecurityOpt":["seccomp=unconfined"]`), fix: "takes away confinement"},
		{kind: "security-opt", name: "an AppArmor profile of the host's", target: "/v1.41/containers/create", body: create(`"SecurityOpt":["apparmor=ci-job"]`), fix: `add "p, role:ci, security-opt, apparmor=ci-job, allow"`},
		{kind: "sysctl", name: "a network sysctl", target: "/v1.41/containers/create", body: create(`"Sysctls":{"net.ipv4.ip_forward":"1"}`), fix: `add "p, role:ci, sysctl, net.ipv4.ip_forward=1, allow"`},
		{kind: "runtime", name: "another runtime", target: "/v1.41/containers/create", body: create(`"Runtime":"runsc"`), fix: `add "p, role:ci, runtime, runsc, allow"`},
		{kind: "cgroup-parent", name: "a cgroup of the caller's choosing", target: "/v1.41/containers/create", body: create(`"CgroupParent":"ci.slice"`), fix: `add "p, role:ci, cgroup-parent, ci.slice, allow"`},
		{kind: "log-driver", name: "syslog", target: "/v1.41/containers/create", body: create(`"LogConfig":{"Type":"syslog"}`), fix: `add "p, role:ci, log-driver, syslog, allow"`},
		{kind: "port", name: "a privileged host port", target: "/v1.41/containers/create", body: create(`"PortBindings":{"80/tcp":[{"HostPort":"80"}]}`), fix: `add "p, role:ci, port, 80, allow"`},
		{kind: "annotation", name: "a container annotation", target: "/v1.41/containers/create", body: create(`"Annotations":{"com.example.trace":"1"}`), fix: `add "p, role:ci, annotation, com.example.trace, allow"`},
		{kind: "resource", name: "a container that restarts forever", target: "/v1.41/containers/create", body: create(`"RestartPolicy":{"Name":"always"}`), fix: `add "p, role:ci, resource, restart=always, allow"`},
		{kind: "network-driver", name: "a macvlan network", target: "/v1.41/networks/create", body: `{"Name":"lan","Driver":"macvlan"}`, fix: `add "p, role:ci, network-driver, macvlan, allow"`},
		{kind: "network-option", name: "a routed bridge", target: "/v1.41/networks/create", body: `{"Name":"routed","Options":{"com.docker.network.bridge.gateway_mode_ipv4":"routed"}}`, fix: `add "p, role:ci, network-option, com.docker.network.bridge.gateway_mode_ipv4=routed, allow"`},
		{kind: "build", name: "a BuildKit build dockgate cannot judge", target: "/v1.41/build?version=2&remote=upload-request", fix: "send the context with the build"},
		{kind: policy.OwnerKind, name: "a container created outside dockgate", target: "/v1.41/containers/agent/stop", fix: "use one that user:jenkins created through dockgate"},
		{kind: policy.OwnerKind, name: "another tenant's container", method: "GET", target: "/v1.41/containers/theirs/logs?stdout=1", fix: "have its owner, or a caller who is no tenant (such as root), do this"},
		{kind: policy.OwnerKind, name: "removing a shared base image", method: "DELETE", target: "/v1.41/images/busybox:latest", fix: "no row is suggested"},
		{kind: policy.TenantKind, name: "a tenant whose uid has no user name", target: "/v1.41/containers/create", body: `{"Image":"registry.example.com/approved/app:1"}`, subjects: []string{"uid:1005", "gid:1005", "group:ci-runners", "*"}, fix: `add "p, uid:1005, tenant, uid, allow"`},
	}
}

// refusalsDocFixture is the daemon and host the cases are judged against.
func refusalsDocFixture(t *testing.T) (*PolicyDecider, *fakeInspector) {
	t.Helper()
	p, err := policy.LoadDir(filepath.Join("..", "policies", "ci"))
	if err != nil {
		t.Fatal(err)
	}
	host := fakeHost(t)
	// A cache directory every user may write: any job can swap what is in it.
	shared := filepath.Join(host.root, "srv/ci-cache/shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	in := newFakeInspector()
	in.images = map[string]fakeImage{
		// Tagged here: no RepoDigest of the approved repository.
		"registry.example.com/approved/app:2": {id: imageID, repoTags: []string{"registry.example.com/approved/app:2"}},
		"myapp:dev":                           {id: imageID, repoTags: []string{"myapp:dev"}},
		"ci.local/app:1":                      {id: imageID, repoTags: []string{"ci.local/app:1"}},
		"registry.example.com/approved/app:1": {id: "sha256:1111111111111111111111111111111111111111111111111111111111111111", repoDigests: []string{"registry.example.com/approved/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
	}
	in.containers["agent"] = fakeContainer{id: agentID, labels: map[string]string{"role": "ci-agent"}}
	in.containers["theirs"] = fakeContainer{id: theirsID, labels: map[string]string{OwnerLabel: "user:alice"}}
	in.objects = map[string]fakeContainer{}
	in.objects["image:busybox:latest"] = fakeContainer{id: imageID}
	in.objects["image:ci.local/app:1"] = fakeContainer{id: imageID, labels: map[string]string{OwnerLabel: "user:jenkins"}}
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(host)
	d.Inspector = in
	return d, in
}

// renderRefusal decides one case and returns its status and message.
func renderRefusal(t *testing.T, d *PolicyDecider, tc refusalCase) (int, string) {
	t.Helper()
	subjects := tc.subjects
	if subjects == nil {
		subjects = jenkinsSubjects
	}
	method := tc.method
	if method == "" {
		method = "POST"
	}
	req := testRequest(method, tc.target, subjects...)
	req.Cred = credFor(subjects)
	if tc.body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Body = []byte(tc.body)
	}
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatalf("%s: %v", tc.target, err)
	}
	dec := d.Decide(context.Background(), m, req)
	if dec.Allow {
		t.Fatalf("%s %s: allowed, want a refusal (%+v)", method, tc.target, dec.Facts)
	}
	return dec.Status, "dockgate: " + dec.Reason
}

func credFor(subjects []string) *Cred {
	for _, s := range subjects {
		var uid uint32
		if _, err := fmt.Sscanf(s, "uid:%d", &uid); err == nil {
			return &Cred{UID: uid, GIDs: []uint32{uid}}
		}
	}
	return nil
}

// TestRefusalsTeachTheFix: every refusal of the CI example keeps BRIEF §5's
// prefix and names the fix it promises; none suggests a row that would
// give away another tenant's objects or the host.
func TestRefusalsTeachTheFix(t *testing.T) {
	d, _ := refusalsDocFixture(t)
	for _, tc := range refusalCases() {
		t.Run(tc.kind+" "+tc.name, func(t *testing.T) {
			status, msg := renderRefusal(t, d, tc)
			if status != http.StatusForbidden {
				t.Fatalf("status %d (%s), want 403", status, msg)
			}
			caller := "user:jenkins"
			if tc.subjects != nil {
				caller = tc.subjects[0]
			}
			if !strings.HasPrefix(msg, "dockgate: "+caller+" may not ") {
				t.Errorf("message %q does not start with BRIEF §5's prefix", msg)
			}
			if !strings.Contains(msg, tc.fix) {
				t.Errorf("message %q does not name the fix %q", msg, tc.fix)
			}
			for _, undo := range []string{"owner, other", "owner, none", "replaceable-path, ", "p, role:ci, privileged", "p, role:ci, capability, SYS_ADMIN", "p, role:ci, bind, /**", "p, role:ci, namespace", ", *, "} {
				if strings.Contains(msg, `"p, `) && strings.Contains(msg, undo) {
					t.Errorf("message %q suggests a row that undoes isolation (%q)", msg, undo)
				}
			}
		})
	}
}

// TestRefusalsDocUpToDate keeps docs/refusals.md in step with the decider:
// the messages there are rendered from the cases above.
func TestRefusalsDocUpToDate(t *testing.T) {
	d, _ := refusalsDocFixture(t)
	var b strings.Builder
	b.WriteString(refusalsDocHead)
	kind := ""
	for _, tc := range refusalCases() {
		_, msg := renderRefusal(t, d, tc)
		if tc.kind != kind {
			kind = tc.kind
			fmt.Fprintf(&b, "\n## %s\n", kind)
		}
		method := tc.method
		if method == "" {
			method = "POST"
		}
		caller := "user:jenkins (a member of role:ci)"
		if tc.subjects != nil {
			caller = strings.Join(tc.subjects[:len(tc.subjects)-1], ", ")
		}
		fmt.Fprintf(&b, "\n### %s\n\n`%s %s` as %s", tc.name, method, tc.target, caller)
		if tc.body != "" {
			fmt.Fprintf(&b, " with the body `%s`", tc.body)
		}
		fmt.Fprintf(&b, ":\n\n```\n%s\n```\n", msg)
	}
	checkGeneratedDoc(t, "refusals.md", "TestRefusalsDocUpToDate", b.String())
}

const refusalsDocHead = `# Refusals and how to fix them

Every request dockgate refuses by policy is answered 403 with Docker's
error JSON, ` + "`" + `{"message":"dockgate: <caller> may not <kind> <value>: <rule>"}` + "`" + `,
which the docker CLI prints as ` + "`" + `Error response from daemon: dockgate: …` + "`" + `.
That start is a contract (scripts match it); after it the message says

- the rule that decided: a deny row by its file, line and text, or ` + "`" + `no
  rule allows it` + "`" + `;
- why, where the rule does not say it: which object (by name and short ID)
  and whose it is, who could replace a host path;
- the fix: the row that would allow it, written for the caller's role (or,
  for a caller without one, its user name or uid) and naming just what was
  asked (the exact value, a host directory and what is below it), or, where
  any such row would give away another tenant's objects or root on the
  host, what to do instead.

` + "`" + `dockgate explain` + "`" + ` prints the same message. The examples below are
the refusals of the CI example policy (` + "`" + `policies/ci/ci.csv` + "`" + `,
[policy-language.md](policy-language.md)), one or more for each fact kind
it refuses, plus tenancy ([tenancy.md](tenancy.md)). They are rendered by
the decider itself (` + "`" + `go test ./authz -run TestRefusalsDocUpToDate -update` + "`" + `),
so they cannot go stale. The caller is user:jenkins (uid 1001), a member of
role:ci, unless a case says otherwise.
`
