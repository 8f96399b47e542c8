package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/policygen"
)

const deciderTestPolicy = `g, user:jenkins, role:ci
p, uid:0, *, **, allow
p, role:ci, endpoint, *, allow
p, role:ci, endpoint, plugin.*, deny
p, role:ci, image, registry.example.com/approved/**, allow
p, role:ci, bind, /srv/ci-cache/**, allow
p, role:ci, capability, NET_BIND_SERVICE, allow
`

func testRequest(method, target string, subjects ...string) *Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	return &Request{Method: method, URL: u, Header: http.Header{}, Caller: subjects[0], Subjects: subjects}
}

func factsOf(facts ...policy.Fact) Extractor {
	return func(context.Context, *Match, *Request, Inspector) ([]policy.Fact, error) { return facts, nil }
}

func TestPolicyDeciderDecisions(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"ci.csv": deciderTestPolicy})
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	tests := []struct {
		name    string
		action  string
		subj    []string
		extract Extractor
		audit   bool
		// want
		allow     bool
		wouldDeny bool
		status    int
		reason    string
		facts     []policy.FactResult
	}{
		{name: "allowed when every fact is allowed", action: "container.create", subj: jenkins,
			extract: factsOf(policy.Fact{Kind: "image", Value: "registry.example.com/approved/app:1"}, policy.Fact{Kind: "bind", Value: "/srv/ci-cache"}),
			allow:   true, reason: allowedReason,
			facts: []policy.FactResult{
				{Kind: "endpoint", Value: "container.create", Decision: "allow", Rule: "ci.csv:3: p, role:ci, endpoint, *, allow"},
				{Kind: "image", Value: "registry.example.com/approved/app:1", Decision: "allow", Rule: "ci.csv:5: p, role:ci, image, registry.example.com/approved/**, allow"},
				{Kind: "bind", Value: "/srv/ci-cache", Decision: "allow", Rule: "ci.csv:6: p, role:ci, bind, /srv/ci-cache/**, allow"},
			}},
		{name: "the refusal names the first refused fact", action: "container.create", subj: jenkins,
			extract: factsOf(policy.Fact{Kind: "image", Value: "registry.example.com/approved/app:1"}, policy.Fact{Kind: "privileged", Value: "container"}, policy.Fact{Kind: "bind", Value: "/"}),
			status:  403, reason: "user:jenkins may not privileged container: no rule allows it; allowing it is root on the host (a privileged container or exec has every capability and every host device), so no row is suggested for a group of callers; for one caller trusted with root on the host, \"p, user:jenkins, privileged, container, allow\" would do it",
			facts: []policy.FactResult{
				{Kind: "endpoint", Value: "container.create", Decision: "allow", Rule: "ci.csv:3: p, role:ci, endpoint, *, allow"},
				{Kind: "image", Value: "registry.example.com/approved/app:1", Decision: "allow", Rule: "ci.csv:5: p, role:ci, image, registry.example.com/approved/**, allow"},
				{Kind: "privileged", Value: "container", Decision: "deny", Rule: policy.NoRuleAllows},
				{Kind: "bind", Value: "/", Decision: "deny", Rule: policy.NoRuleAllows},
			}},
		{name: "a refused endpoint names its deny rule", action: "plugin.install", subj: jenkins,
			status: 403, reason: "user:jenkins may not endpoint plugin.install: ci.csv:4: p, role:ci, endpoint, plugin.*, deny; a deny row wins over every allow row, and allowing it is root on the host (a plugin runs with the privileges it asks for)",
			facts: []policy.FactResult{{Kind: "endpoint", Value: "plugin.install", Decision: "deny", Rule: "ci.csv:4: p, role:ci, endpoint, plugin.*, deny"}}},
		{name: "a caller without rights", action: "system.ping", subj: []string{"uid:1002", "*"},
			status: 403, reason: "uid:1002 may not endpoint system.ping: no rule allows it; to allow it, add \"p, uid:1002, endpoint, system.ping, allow\" to the policy"},
		{name: "unknown endpoint is refused whatever the policy", action: ActionUnknown, subj: []string{"uid:0", "*"},
			status: 403, reason: "uid:0 may not call POST /v1.41/frobnicate: unknown endpoint" + UnknownEndpointFix},
		{name: "unknown endpoint is refused in audit mode too", action: ActionUnknown, subj: []string{"uid:0", "*"}, audit: true,
			status: 403, reason: "uid:0 may not call POST /v1.41/frobnicate: unknown endpoint" + UnknownEndpointFix},
		{name: "audit mode forwards what the policy refuses and says so", action: "container.create", subj: jenkins, audit: true,
			extract: factsOf(policy.Fact{Kind: "capability", Value: "SYS_ADMIN"}),
			allow:   true, wouldDeny: true, reason: "user:jenkins may not capability SYS_ADMIN: no rule allows it; allowing it is root on the host (with SYS_ADMIN a container's root acts on the host kernel, processes or files), so no row is suggested for a group of callers; for one caller trusted with root on the host, \"p, user:jenkins, capability, SYS_ADMIN, allow\" would do it"},
		{name: "audit mode does not mark what the policy allows", action: "container.list", subj: jenkins, audit: true,
			allow: true, reason: allowedReason},
		{name: "an extractor error refuses with its status", action: "container.create", subj: []string{"uid:0", "*"},
			extract: func(context.Context, *Match, *Request, Inspector) ([]policy.Fact, error) {
				return nil, &RouteError{Status: http.StatusRequestEntityTooLarge, Message: "request body larger than the limit"}
			},
			status: 413, reason: "request body larger than the limit",
			facts: []policy.FactResult{{Kind: "endpoint", Value: "container.create", Decision: "allow", Rule: "ci.csv:2: p, uid:0, *, **, allow"}}},
		{name: "an extractor error is refused in audit mode too", action: "container.create", subj: jenkins, audit: true,
			extract: func(context.Context, *Match, *Request, Inspector) ([]policy.Fact, error) {
				return nil, &RouteError{Status: http.StatusBadRequest, Message: "duplicate key"}
			},
			status: 400, reason: "duplicate key"},
		{name: "a plain extractor error cannot be judged: 400", action: "container.create", subj: []string{"uid:0", "*"},
			extract: func(context.Context, *Match, *Request, Inspector) ([]policy.Fact, error) {
				return []policy.Fact{{Kind: "privileged", Value: "container"}}, errors.New("unexpected end of JSON input")
			},
			status: 400, reason: "unexpected end of JSON input"},
		{name: "a panic in the extractor is refused with 500, never forwarded", action: "container.create", subj: []string{"uid:0", "*"}, audit: true,
			extract: func(context.Context, *Match, *Request, Inspector) ([]policy.Fact, error) { panic("index out of range") },
			status:  500, reason: "internal error reading the facts of container.create: index out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewPolicyDecider(p)
			d.Extract = tt.extract
			d.Put(d.Policy(), tt.audit)
			req := testRequest("POST", "/v1.41/frobnicate", tt.subj...)
			got := d.Decide(context.Background(), testMatch(tt.action, ""), req)
			if got.Allow != tt.allow || got.WouldDeny != tt.wouldDeny || got.Status != tt.status || got.Reason != tt.reason {
				t.Errorf("Decide = allow %v, would deny %v, status %d, reason %q\nwant allow %v, would deny %v, status %d, reason %q",
					got.Allow, got.WouldDeny, got.Status, got.Reason, tt.allow, tt.wouldDeny, tt.status, tt.reason)
			}
			if tt.facts != nil && fmt.Sprint(got.Facts) != fmt.Sprint(tt.facts) {
				t.Errorf("facts\n%v\nwant\n%v", got.Facts, tt.facts)
			}
		})
	}
}

func TestPolicyDeciderRefusedEndpoint(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"ci.csv": deciderTestPolicy})
	called := false
	extract := func(context.Context, *Match, *Request, Inspector) ([]policy.Fact, error) {
		called = true
		return []policy.Fact{{Kind: "privileged", Value: "container"}}, nil
	}
	req := testRequest("POST", "/plugins/pull", "user:jenkins", "*")

	t.Run("the body of a refused endpoint is not read", func(t *testing.T) {
		d := NewPolicyDecider(p)
		d.Extract = extract
		called = false
		got := d.Decide(context.Background(), testMatch("plugin.install", ""), req)
		if called || got.Allow || got.Status != 403 || len(got.Facts) != 1 {
			t.Fatalf("extractor called %v, decision %+v", called, got)
		}
	})
	t.Run("audit mode reads every fact of a refused endpoint", func(t *testing.T) {
		d := NewPolicyDecider(p)
		d.Extract = extract
		d.Put(d.Policy(), true)
		called = false
		got := d.Decide(context.Background(), testMatch("plugin.install", ""), req)
		if !called || !got.Allow || !got.WouldDeny || len(got.Facts) != 2 || !strings.Contains(got.Reason, "endpoint plugin.install") {
			t.Fatalf("extractor called %v, decision %+v", called, got)
		}
	})
}

func TestPolicyDeciderWithoutPolicyRefuses(t *testing.T) {
	d := &PolicyDecider{}
	got := d.Decide(context.Background(), testMatch("system.ping", ""), testRequest("GET", "/_ping", "uid:0", "*"))
	if got.Allow || got.Status != http.StatusInternalServerError {
		t.Fatalf("no policy: %+v", got)
	}
}

func TestPolicyDeciderNilMatchIsUnknown(t *testing.T) {
	d := NewPolicyDecider(loadTestPolicy(t, map[string]string{"a.csv": "p, *, *, **, allow\n"}))
	got := d.Decide(context.Background(), nil, testRequest("GET", "/x", "uid:0", "*"))
	if got.Allow || got.Status != http.StatusForbidden {
		t.Fatalf("nil match: %+v", got)
	}
}

func TestPolicyDeciderReload(t *testing.T) {
	dir := writePolicy(t, map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\n"})
	old, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ping := testMatch("system.ping", "")

	t.Run("swap while a decision is in flight keeps the old one", func(t *testing.T) {
		d := NewPolicyDecider(old)
		entered, release := make(chan struct{}), make(chan struct{})
		d.Extract = func(context.Context, *Match, *Request, Inspector) ([]policy.Fact, error) {
			close(entered)
			<-release
			return nil, nil
		}
		done := make(chan Decision)
		go func() { done <- d.Decide(context.Background(), ping, testRequest("GET", "/_ping", "uid:1000", "*")) }()
		<-entered
		refuseAll := loadTestPolicy(t, map[string]string{"a.csv": "p, uid:0, *, **, allow\n"})
		if prev := d.SetPolicy(refuseAll); prev != old {
			t.Fatal("SetPolicy did not return the policy it replaced")
		}
		close(release)
		if got := <-done; !got.Allow {
			t.Fatalf("in-flight decision used the new policy: %s", got.Reason)
		}
		d.Extract = nil
		if got := d.Decide(context.Background(), ping, testRequest("GET", "/_ping", "uid:1000", "*")); got.Allow {
			t.Fatal("the next decision still uses the old policy")
		}
	})

	t.Run("a broken file keeps the old policy", func(t *testing.T) {
		d := NewPolicyDecider(old)
		if err := os.WriteFile(filepath.Join(dir, "b.csv"), []byte("p, *, endpoint, *, allow\np, *, privileged, container, alow\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := d.ReloadDir(dir)
		if err == nil || p != nil {
			t.Fatalf("ReloadDir of a broken policy: %v, %v", p, err)
		}
		if !strings.Contains(err.Error(), "b.csv:2: unknown effect") {
			t.Fatalf("error does not name file and line: %v", err)
		}
		if d.Policy() != old {
			t.Fatal("a failed reload replaced the policy")
		}
		if got := d.Decide(context.Background(), testMatch("container.create", ""), testRequest("POST", "/containers/create", "uid:1000", "*")); got.Allow {
			t.Fatal("half of a broken policy is in force")
		}
	})

	t.Run("a good reload is in force with a new hash", func(t *testing.T) {
		d := NewPolicyDecider(old)
		if err := os.WriteFile(filepath.Join(dir, "b.csv"), []byte("p, *, endpoint, container.*, allow\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := d.ReloadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if d.Policy() != p || p.Hash == old.Hash {
			t.Fatalf("reload: in force %p (loaded %p), hash %s (old %s)", d.Policy(), p, p.Hash, old.Hash)
		}
		if got := d.Decide(context.Background(), testMatch("container.create", ""), testRequest("POST", "/containers/create", "uid:1000", "*")); !got.Allow {
			t.Fatalf("reloaded rule not in force: %s", got.Reason)
		}
	})
}

func TestPolicyDeciderConcurrentReload(t *testing.T) {
	a := loadTestPolicy(t, map[string]string{"a.csv": "p, *, endpoint, *, allow\n"})
	b := loadTestPolicy(t, map[string]string{"a.csv": "p, *, endpoint, *, allow\np, *, image, **, allow\n"})
	d := NewPolicyDecider(a)
	d.Extract = factsOf(policy.Fact{Kind: "image", Value: "docker.io/library/busybox:latest"})
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				d.SetPolicy(b)
			} else {
				d.SetPolicy(a)
			}
		}
	}()
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		got := d.Decide(context.Background(), testMatch("container.create", ""), testRequest("POST", "/containers/create", "uid:1", "*"))
		// Either policy, never a mix: the endpoint is allowed by both.
		if got.Facts[0].Decision != "allow" {
			t.Fatalf("endpoint refused: %+v", got)
		}
	}
	close(stop)
}

// BenchmarkDecideContainerCreate decides a container.create of nine facts
// (endpoint, image, two binds, capability, namespace, sysctl, port, log
// driver) for a caller with six subjects and two roles, against a
// generated 1,000-row policy. Target: ≤ 20 µs, few allocations.
func BenchmarkDecideContainerCreate(b *testing.B) {
	policyText := policygen.Site(1000)
	p := loadTestPolicy(b, map[string]string{"site.csv": policyText})
	if len(p.Rules) != 1000 {
		b.Fatalf("%d rules, want 1000", len(p.Rules))
	}
	facts := []policy.Fact{
		{Kind: "image", Value: "registry.example.com/team42/app:1.2.3"},
		{Kind: "bind", Value: "/srv/team42/cache/job/17"},
		{Kind: "bind", Value: "/srv/team42/work"},
		{Kind: "capability", Value: "NET_BIND_SERVICE"},
		{Kind: "namespace", Value: "network=container"},
		{Kind: "sysctl", Value: "net.ipv4.ip_local_port_range=1024 65000"},
		{Kind: "port", Value: "8042"},
		{Kind: "log-driver", Value: "syslog"},
	}
	req := testRequest("POST", "/v1.41/containers/create", "user:dev42", "uid:1042", "gid:1042", "group:team42", "group:docker", "*")
	m := testMatch("container.create", "")
	for _, mode := range []struct {
		name string
		p    *policy.Policy
	}{{"index", p}} {
		b.Run(mode.name, func(b *testing.B) {
			d := NewPolicyDecider(mode.p)
			d.Extract = factsOf(facts...)
			got := d.Decide(context.Background(), m, req)
			// The namespace fact has no allow row: refused, after every
			// fact was decided.
			if got.Allow || len(got.Facts) != 9 || !strings.Contains(got.Reason, "namespace network=container") {
				b.Fatalf("unexpected decision: %+v", got)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				d.Decide(context.Background(), m, req)
			}
		})
	}
	b.Run("index-allowed", func(b *testing.B) {
		// The same request without the refused fact: no refusal message,
		// no advice.
		d := NewPolicyDecider(p)
		allowed := slices.DeleteFunc(slices.Clone(facts), func(f policy.Fact) bool { return f.Kind == "namespace" })
		d.Extract = factsOf(allowed...)
		if got := d.Decide(context.Background(), m, req); !got.Allow || len(got.Facts) != 8 {
			b.Fatalf("unexpected decision: %+v", got)
		}
		b.ReportAllocs()
		for b.Loop() {
			d.Decide(context.Background(), m, req)
		}
	})
	b.Run("index+extractor", func(b *testing.B) {
		// The same request through the fact extractor: JSON decoding and
		// host path resolution included.
		body := []byte(`{"Image":"registry.example.com/team42/app:1.2.3","HostConfig":{"Binds":["/srv/team42/work:/work"],` +
			`"CapAdd":["NET_BIND_SERVICE"],"NetworkMode":"container:db","Sysctls":{"net.ipv4.ip_local_port_range":"1024 65000"},` +
			`"PortBindings":{"80/tcp":[{"HostPort":"8042"}]},"LogConfig":{"Type":"syslog"}}}`)
		r := *req
		r.Body = body
		r.Header = http.Header{"Content-Type": {"application/json"}}
		d := NewPolicyDecider(p)
		d.Extract = DefaultExtractor()
		// The image is judged by what dockerd says it is: a fake dockerd
		// answers, without a round trip.
		in := newFakeInspector()
		in.images = map[string]fakeImage{"registry.example.com/team42/app:1.2.3": {
			id:          "sha256:" + strings.Repeat("ab", 32),
			repoDigests: []string{"registry.example.com/team42/app@sha256:" + strings.Repeat("cd", 32)},
			repoTags:    []string{"registry.example.com/team42/app:1.2.3"},
		}}
		d.Inspector = in
		got := d.Decide(context.Background(), m, &r)
		if got.Allow || got.Status != http.StatusForbidden {
			b.Skipf("extractor answered %d %s", got.Status, got.Reason)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			d.Decide(context.Background(), m, &r)
		}
	})
	b.Run("casbin", func(b *testing.B) {
		// The same decision through casbin's Enforce, for comparison: the
		// path a custom model.conf takes.
		b.ReportAllocs()
		subjects := req.Subjects
		for b.Loop() {
			p.EnforceFact(subjects, policy.Fact{Kind: "endpoint", Value: "container.create"})
			for _, f := range facts {
				p.EnforceFact(subjects, f)
			}
		}
	})
}

// TestPolicyDeciderPutsPolicyAndModeTogether: a reload that changes the
// mode and the policy changes both for the next decision, and a policy
// reload alone keeps the mode.
func TestPolicyDeciderPutsPolicyAndModeTogether(t *testing.T) {
	denyAll := loadTestPolicy(t, map[string]string{"a.csv": "p, *, endpoint, system.version, allow\n"})
	allowPing := loadTestPolicy(t, map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\n"})
	req := func() *Request { return testRequest("GET", "/_ping", "uid:1000", "*") }
	ping := testMatch("system.ping", "")
	d := NewPolicyDecider(denyAll)
	if got := d.Decide(context.Background(), ping, req()); got.Allow {
		t.Fatalf("enforcing a policy without the ping: %+v", got)
	}
	d.Put(denyAll, true)
	if got := d.Decide(context.Background(), ping, req()); !got.Allow || !got.WouldDeny {
		t.Fatalf("audit mode: allow %v would-deny %v, want both", got.Allow, got.WouldDeny)
	}
	if old := d.SetPolicy(allowPing); old != denyAll {
		t.Fatalf("SetPolicy returned %v, want the policy it replaced", old)
	}
	if got := d.Decide(context.Background(), ping, req()); !got.Allow || got.WouldDeny {
		t.Fatalf("audit mode kept across a policy reload, ping allowed: allow %v would-deny %v", got.Allow, got.WouldDeny)
	}
	d.Put(denyAll, false)
	if got := d.Decide(context.Background(), ping, req()); got.Allow {
		t.Fatalf("back to enforcing: %+v", got)
	}
}
