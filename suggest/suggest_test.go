package suggest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/policytest"
	"github.com/dockgate/dockgate/proxy"
	"github.com/dockgate/dockgate/replay"
)

var (
	alice   = &proxy.Caller{UID: 1000, GID: 1000, GIDs: []uint32{1000, 998}, User: "alice", Groups: []string{"alice", "docker"}, Exe: "/usr/bin/docker"}
	jenkins = &proxy.Caller{UID: 1001, GID: 1001, GIDs: []uint32{1001}, User: "jenkins", Groups: []string{"jenkins"}, Exe: "/usr/bin/docker", Unit: "jenkins.service"}
	nobody  = &proxy.Caller{UID: 1002, GID: 1002, GIDs: []uint32{1002}}
	robot   = &proxy.Caller{UID: ^uint32(0), GID: ^uint32(0), Cert: "deploy-bot", CertSANs: []string{"cert-dns:deploy.example.com"}}
)

// rootOnly is a policy a host is first put under in audit mode: every
// request of anyone but root is recorded as would_deny, and forwarded.
const rootOnly = "p, uid:0, *, **, allow\n"

// ciWeek is a CI host's trail: jenkins pulls and runs two applications of
// one team by tag, binds two job directories of its cache, lists, starts,
// waits, removes; alice runs busybox pinned by digest and once asks for
// an image that is not there; nobody (a uid without a name) pings; a
// deploy bot on TLS reads the version.
var ciWeek = []call{
	{Caller: jenkins, Method: "POST", Path: "/v1.41/images/create?fromImage=reg.example.com/team/app1&tag=1", Facts: []policy.Fact{image("reg.example.com/team/app1:1")}},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/images/create?fromImage=reg.example.com/team/app2&tag=7", Facts: []policy.Fact{image("reg.example.com/team/app2:7")}},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/create?name=job-1", Facts: []policy.Fact{image("reg.example.com/team/app1:1"), fact("bind", "/srv/ci/cache/job-1")}, Status: 201},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/create?name=job-2", Facts: []policy.Fact{image("reg.example.com/team/app2:7"), fact("bind", "/srv/ci/cache/job-2"), fact("bind", "/srv/ci/cache/shared")}, Status: 201},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/job-1/start", Status: 204},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/job-1/wait"},
	{Caller: jenkins, Method: "DELETE", Path: "/v1.41/containers/job-1?force=1", Status: 204},
	{Caller: jenkins, Method: "GET", Path: "/v1.41/containers/json"},
	{Caller: jenkins, Method: "GET", Path: "/_ping"},
	{Caller: alice, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{image("docker.io/library/busybox@sha256:" + strings.Repeat("ab", 32))}, Status: 201},
	{Caller: alice, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{image("docker.io/library/gone:1")}, Status: 404},
	{Caller: alice, Method: "GET", Path: "/v1.41/version"},
	{Caller: nobody, Method: "GET", Path: "/_ping"},
	{Caller: robot, Method: "GET", Path: "/v1.41/version"},
}

// suggestDir learns from trail and writes the suggested policy directory.
func suggestDir(t *testing.T, trail string, opt Options) (*Suggestion, string) {
	t.Helper()
	s, err := Trail([]string{trail}, opt)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "suggested")
	if _, err := s.WriteDir(dir, trail); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// rowsOf lists a suggestion's rows as "SUBJECT KIND PATTERN", a row
// commented out marked "(commented out)".
func rowsOf(s *Suggestion) []string {
	var out []string
	for _, p := range s.Principals {
		if p.Tenant != "" {
			out = append(out, p.Subject+" tenant "+p.Tenant)
		}
		for _, r := range p.Rows {
			row := p.Subject + " " + r.Kind + " " + r.Pattern
			if r.Danger != "" {
				row += " (commented out)"
			}
			out = append(out, row)
		}
	}
	return out
}

// The key property: the suggested policy, replayed over the trail it was
// learned from, refuses no request that succeeded, and can tell for each
// one.
func TestSuggestedPolicyAllowsWhatTheTrailDid(t *testing.T) {
	const agentID = "a9e1c0ffee5eed0000000000000000000000000000000000000000000000beef"
	agent := &proxy.Caller{UID: 0, Container: agentID}
	tenantRows := "p, role:ci, tenant, user, allow\np, role:ci, owner, self, allow\np, role:ci, endpoint, *, allow\np, role:ci, image, **, allow\ng, user:jenkins, role:ci\ng, user:alice, role:ci\n"
	tests := []struct {
		name      string
		recording string
		auditMode bool
		calls     []call
		opt       func(t *testing.T) Options
	}{
		{name: "a week of a CI host in audit mode", recording: rootOnly, auditMode: true, calls: ciWeek},
		{name: "an enforced trail, with what it refused left refused", recording: "p, user:jenkins, endpoint, *, allow\np, user:jenkins, image, reg.example.com/**, allow\np, user:jenkins, bind, /srv/**, allow\np, *, endpoint, system.*, allow\n", calls: ciWeek},
		{
			name: "tenants, whose requests name their own objects", recording: tenantRows,
			calls: []call{
				// The real fact reader labels a tenant's create with its
				// owner; as the proxy records it once labelled.
				{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/create?name=job", Facts: []policy.Fact{image("reg.example.com/team/app1:1")}, Record: func(r *audit.Record) {
					r.Decision, r.Status = audit.DecisionAllow, 201
				}},
				{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/job/start", Facts: []policy.Fact{fact("owner", "self")}, Status: 204},
				{Caller: alice, Method: "DELETE", Path: "/v1.41/containers/web", Facts: []policy.Fact{fact("owner", "self")}, Status: 204},
				{Caller: alice, Method: "GET", Path: "/v1.41/containers/json"},
			},
			opt: func(t *testing.T) Options { return Options{Current: loadPolicy(t, tenantRows)} },
		},
		{
			name: "a container created in the trail acts within what its creator did", recording: rootOnly, auditMode: true,
			calls: []call{
				{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=ci-agent", Facts: []policy.Fact{image("docker.io/library/busybox:latest"), fact("docker-socket", "/var/run/docker.sock")}, Status: 201,
					Record: func(r *audit.Record) { r.ObjectID = agentID }},
				{Caller: agent, Method: "GET", Path: "/v1.41/containers/json", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"}},
				{Caller: agent, Method: "GET", Path: "/v1.41/info", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trail := writeTrail(t, tt.recording, tt.auditMode, tt.calls)
			opt := Options{}
			if tt.opt != nil {
				opt = tt.opt(t)
			}
			s, dir := suggestDir(t, trail, opt)
			p, err := policy.LoadDir(dir)
			if err != nil {
				t.Fatalf("the suggested policy does not load: %v", err)
			}
			rep, err := replay.Trail(p, []string{trail}, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var dangerous int
			for _, pr := range s.Principals {
				for _, r := range pr.Rows {
					if r.Danger != "" {
						dangerous += r.Requests
					}
				}
			}
			// Only the requests of rows left commented out (the Docker
			// socket) are refused.
			if got := rep.SucceededRefused(); got != dangerous {
				t.Errorf("%d newly refused requests that succeeded, want %d (those of rows commented out): %+v", got, dangerous, rep.NewlyRefused)
			}
			if rep.NotReplayableSucceeded != 0 {
				t.Errorf("not replayable: %v", rep.NotReplayable)
			}
			if len(rep.NewlyAllowed) != 0 {
				t.Errorf("newly allowed: %+v", rep.NewlyAllowed)
			}
			policyText, _ := os.ReadFile(filepath.Join(dir, PolicyFile))
			t.Logf("%s", policyText)
		})
	}
}

func TestSuggestGeneralizes(t *testing.T) {
	trail := writeTrail(t, rootOnly, true, ciWeek)
	s, err := Trail([]string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := rowsOf(s)
	want := []string{
		// Every jenkins request that succeeded; not every container verb.
		"user:jenkins endpoint container.create",
		"user:jenkins endpoint container.delete",
		"user:jenkins endpoint container.list",
		"user:jenkins endpoint container.start",
		"user:jenkins endpoint container.wait",
		"user:jenkins endpoint image.pull",
		"user:jenkins endpoint system.ping",
		// Two repositories of one namespace: the namespace.
		"user:jenkins image reg.example.com/team/**",
		// Three job directories: their deepest common directory.
		"user:jenkins bind /srv/ci/cache/**",
		"user:alice endpoint container.create",
		"user:alice endpoint system.version",
		// One repository, by digest; the 404 taught nothing.
		"user:alice image docker.io/library/busybox@*",
		// A uid without a name is named by its uid, a TLS caller by its
		// certificate.
		"uid:1002 endpoint system.ping",
		"cert:deploy-bot endpoint system.version",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows:\n got %q\nwant %q", got, want)
	}
	if s.Requests != len(ciWeek) || s.Learned != len(ciWeek)-1 || s.Skipped[WhyNotSucceeded] != 1 {
		t.Errorf("requests %d, learned %d, skipped %v", s.Requests, s.Learned, s.Skipped)
	}
}

func TestSuggestGroups(t *testing.T) {
	tests := []struct {
		name   string
		kind   string
		values []string
		want   []string
	}{
		{"one repository by tags: any tag of it", "image", []string{"reg.example.com/team/app:1", "reg.example.com/team/app:2"}, []string{"reg.example.com/team/app:*"}},
		{"one repository by tag and by digest: a row each", "image", []string{"reg.example.com/team/app:1", "reg.example.com/team/app@sha256:aa"}, []string{"reg.example.com/team/app:*", "reg.example.com/team/app@*"}},
		{"repositories of two namespaces stay apart", "image", []string{"reg.example.com/a/app:1", "reg.example.com/b/app:1"}, []string{"reg.example.com/a/app:*", "reg.example.com/b/app:*"}},
		{"repositories at the top of a registry never make the whole registry", "image", []string{"127.0.0.1:5000/app1:1", "127.0.0.1:5000/app2:1"}, []string{"127.0.0.1:5000/app1:*", "127.0.0.1:5000/app2:*"}},
		{"a registry port is not a tag", "image", []string{"127.0.0.1:5000/app1"}, []string{"127.0.0.1:5000/app1"}},
		{"image names minted: the same generalization", "image-target", []string{"reg.example.com/team/a:1", "reg.example.com/team/b:1"}, []string{"reg.example.com/team/**"}},
		{"one bind: that directory and below", "bind", []string{"/srv/data"}, []string{"/srv/data/**"}},
		{"binds whose common directory is / split below it", "bind", []string{"/srv/a/1", "/srv/a/2", "/home/ci/x"}, []string{"/home/ci/x/**", "/srv/a/**"}},
		{"binds under /var never make /var", "bind", []string{"/var/cache/ci", "/var/tmp/ci"}, []string{"/var/cache/ci/**", "/var/tmp/ci/**"}},
		{"a sibling's prefix is not a directory", "bind", []string{"/srv/ci", "/srv/ci-evil"}, []string{"/srv/**"}},
		{"the Docker socket: commented out", "bind", []string{"/var/run/docker.sock", "/srv/x"}, []string{"/srv/x/**", "/var/run/docker.sock (commented out)"}},
		{"/ and /etc: commented out", "bind", []string{"/", "/etc"}, []string{"/ (commented out)", "/etc (commented out)"}},
		{"every verb of exec: exec.*", "endpoint", []string{"exec.inspect", "exec.resize", "exec.start"}, []string{"exec.*"}},
		{"a plugin install: commented out", "endpoint", []string{"plugin.install"}, []string{"plugin.install (commented out)"}},
		{"privileged: commented out", "privileged", []string{"container"}, []string{"container (commented out)"}},
		{"the host pid namespace: commented out, a shared one not", "namespace", []string{"pid=host", "pid=container"}, []string{"pid=container", "pid=host (commented out)"}},
		{"SYS_ADMIN: commented out, NET_BIND_SERVICE not", "capability", []string{"SYS_ADMIN", "NET_BIND_SERVICE"}, []string{"NET_BIND_SERVICE", "SYS_ADMIN (commented out)"}},
		{"another tenant's object: commented out", "owner", []string{"other", "self"}, []string{"other (commented out)", "self"}},
		{"a value a pattern cannot say: commented out", "sysctl", []string{"net.ipv4.x=*"}, []string{"net.ipv4.x=* (commented out)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []call
			for _, v := range tt.values {
				calls = append(calls, call{Caller: alice, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{fact(tt.kind, v)}, Status: 201})
			}
			if tt.kind == "endpoint" {
				calls = nil
				for _, v := range tt.values {
					method, p, _ := strings.Cut(endpointPath[v], " ")
					calls = append(calls, call{Caller: alice, Method: method, Path: p, Status: 200})
				}
			}
			s, err := Trail([]string{writeTrail(t, rootOnly, true, calls)}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range s.Principals[0].Rows {
				if r.Kind != tt.kind {
					continue
				}
				g := r.Pattern
				if r.Danger != "" {
					g += " (commented out)"
				}
				got = append(got, g)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// endpointPath are requests of the actions the grouping tests use.
var endpointPath = map[string]string{
	"exec.inspect":   "GET /v1.41/exec/e1/json",
	"exec.resize":    "POST /v1.41/exec/e1/resize?h=1&w=1",
	"exec.start":     "POST /v1.41/exec/e1/start",
	"plugin.install": "POST /v1.41/plugins/pull?remote=vieux/sshfs",
}

// Rows that are root on the host are written commented out under a
// comment saying so, and replay lists exactly their requests as refused.
func TestSuggestDangerousRowsCommentedOut(t *testing.T) {
	trail := writeTrail(t, rootOnly, true, []call{
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=priv", Facts: []policy.Fact{image("docker.io/library/busybox:latest"), fact("privileged", "container")}, Status: 201},
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=sock", Facts: []policy.Fact{image("docker.io/library/busybox:latest"), fact("bind", "/var/run/docker.sock")}, Status: 201},
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=hostpid", Facts: []policy.Fact{image("docker.io/library/busybox:latest"), fact("namespace", "pid=host")}, Status: 201},
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=plain", Facts: []policy.Fact{image("docker.io/library/busybox:latest")}, Status: 201},
	})
	_, dir := suggestDir(t, trail, Options{})
	text, err := os.ReadFile(filepath.Join(dir, PolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"p, user:alice, privileged, container, allow", "p, user:alice, bind, /var/run/docker.sock, allow", "p, user:alice, namespace, pid=host, allow"} {
		i := strings.Index(string(text), "\n# "+row+"\n")
		if i < 0 {
			t.Errorf("%q is not commented out:\n%s", row, text)
			continue
		}
		above := string(text)[strings.LastIndex(string(text)[:i], "\n# commented out:"):i]
		if !strings.Contains(above, "is root on the host") {
			t.Errorf("%q: the comment above does not say it is root on the host: %q", row, above)
		}
	}
	p, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Trail(p, []string{trail}, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, c := range rep.NewlyRefused {
		refused = append(refused, c.Path+" "+c.Fact.Kind+" "+c.Fact.Value)
	}
	want := []string{
		"/v1.41/containers/create?name=priv privileged container",
		"/v1.41/containers/create?name=sock bind /var/run/docker.sock",
		"/v1.41/containers/create?name=hostpid namespace pid=host",
	}
	if !slices.Equal(refused, want) {
		t.Errorf("newly refused:\n got %q\nwant %q", refused, want)
	}
}

// The cases written beside the suggested policy pass under it: the
// requests that succeeded are allowed, those refused at their endpoint
// stay refused.
func TestSuggestedTestsPass(t *testing.T) {
	calls := append(slices.Clone(ciWeek),
		call{Caller: alice, Method: "GET", Path: "/v1.41/info"},
	)
	trail := writeTrail(t, "p, *, endpoint, system.version, allow\np, *, endpoint, system.ping, allow\np, user:jenkins, *, **, allow\np, user:alice, *, **, allow\np, user:alice, endpoint, system.info, deny\np, cert:deploy-bot, endpoint, system.version, allow\n", false, calls)
	_, dir := suggestDir(t, trail, Options{})
	p, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := policytest.ReadFile(filepath.Join(dir, TestFile))
	if err != nil {
		t.Fatal(err)
	}
	results, err := policytest.Run(context.Background(), p, []*policytest.File{f})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if failed := policytest.Print(&b, results, true); failed != 0 {
		t.Errorf("%d cases fail:\n%s", failed, b.String())
	}
	var deny, allow int
	for _, c := range f.Cases {
		switch c.Expect {
		case "deny":
			deny++
		case "allow":
			allow++
		}
	}
	if allow < 4 || deny != 1 {
		t.Errorf("%d allow cases, %d deny cases: want one of each caller, and alice's info refused\n%s", allow, deny, b.String())
	}
}

func TestSuggestWritesNoPolicyOverAnother(t *testing.T) {
	trail := writeTrail(t, rootOnly, true, ciWeek)
	s, err := Trail([]string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.csv"), []byte(rootOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteDir(dir, trail); err == nil {
		t.Fatal("wrote into a policy directory")
	}
}

func TestSuggestSubjectSelects(t *testing.T) {
	trail := writeTrail(t, rootOnly, true, ciWeek)
	s, err := Trail([]string{trail}, Options{Subject: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Principals) != 1 || s.Principals[0].Subject != "user:alice" {
		t.Errorf("principals: %+v", s.Principals)
	}
}

// A caller that has a role of the policy the trail was recorded under
// gets its rows under that role, with the role's g rows; a caller in no
// role keeps its own subject.
func TestSuggestRowsForRoles(t *testing.T) {
	current := "g, user:jenkins, role:ci\ng, group:ci-runners, role:ci\ng, *, role:everyone\np, role:ci, endpoint, *, allow\np, role:everyone, endpoint, system.ping, allow\n"
	trail := writeTrail(t, current, false, []call{
		{Caller: jenkins, Method: "GET", Path: "/v1.41/version"},
		{Caller: alice, Method: "GET", Path: "/_ping"},
	})
	s, err := Trail([]string{trail}, Options{Current: loadPolicy(t, current)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsOf(s), []string{"role:ci endpoint system.version", "user:alice endpoint system.ping"}; !slices.Equal(got, want) {
		t.Errorf("rows: got %q, want %q", got, want)
	}
	var links []string
	for _, l := range s.Links {
		links = append(links, l.Member+" "+l.Role)
	}
	// Every member of the role keeps it; "*" makes no one a member here.
	if want := []string{"user:jenkins role:ci", "group:ci-runners role:ci"}; !slices.Equal(links, want) {
		t.Errorf("links: got %q, want %q", links, want)
	}
}

// What a container created in the trail did, its creator is allowed too,
// and the row's example says who did it.
func TestSuggestCreatorCoversItsContainer(t *testing.T) {
	const agentID = "a9e1c0ffee5eed0000000000000000000000000000000000000000000000beef"
	agent := &proxy.Caller{UID: 0, Container: agentID}
	trail := writeTrail(t, rootOnly, true, []call{
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=ci-agent", Facts: []policy.Fact{image("docker.io/library/busybox:latest")}, Status: 201,
			Record: func(r *audit.Record) { r.ObjectID = agentID }},
		{Caller: agent, Method: "GET", Path: "/v1.41/info", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"}},
	})
	s, err := Trail([]string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsOf(s), []string{
		"user:alice endpoint container.create", "user:alice endpoint system.info", "user:alice image docker.io/library/busybox:*",
		"container:ci-agent endpoint system.info",
	}; !slices.Equal(got, want) {
		t.Errorf("rows: got %q, want %q", got, want)
	}
	if ex := s.Principals[0].Rows[1].Example; ex != "GET /v1.41/info by container:ci-agent, which it created" {
		t.Errorf("example: %q", ex)
	}
}

// Two trails whose files share a base name give cases of the same file
// and line: the test file still loads (a case's name is unique).
func TestSuggestedTestsOfTwoTrailsLoad(t *testing.T) {
	a := writeTrail(t, rootOnly, true, []call{{Caller: alice, Method: "GET", Path: "/_ping"}})
	b := writeTrail(t, rootOnly, true, []call{{Caller: jenkins, Method: "GET", Path: "/_ping"}})
	s, err := Trail([]string{a, b}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "p")
	w, err := s.WriteDir(dir, a+" "+b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := policytest.ReadFile(w.Tests)
	if err != nil {
		t.Fatal(err)
	}
	results, err := policytest.Run(context.Background(), w.Policy, []*policytest.File{f})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if policytest.Print(&out, results, true) != 0 || len(f.Cases) != 2 {
		t.Errorf("%d cases:\n%s", len(f.Cases), out.String())
	}
}
