package authz

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
)

func TestBuildKitCallRoutes(t *testing.T) {
	for _, tc := range []struct {
		method, action string
		facts          []string
	}{
		{"/moby.buildkit.v1.Control/Solve", "build.run", []string{}},
		{"/moby.buildkit.v1.Control/Status", "grpc.start", []string{}},
		{"/moby.buildkit.v1.Control/ListWorkers", "grpc.start", []string{}},
		{"/moby.buildkit.v1.Control/Info", "grpc.start", []string{}},
		{"/moby.buildkit.v1.Control/DiskUsage", "grpc.start", []string{}},
		{"/moby.buildkit.v1.Control/ListenBuildHistory", "grpc.start", []string{}},
		{"/grpc.health.v1.Health/Check", "grpc.start", []string{}},
		{"/moby.buildkit.v1.Control/Prune", "build.prune", []string{}},
		{"/moby.buildkit.v1.Control/UpdateBuildHistory", "build.prune", []string{}},
		{"/moby.buildkit.v1.Control/Session", "session.start", []string{"build buildkit"}},
		{"/moby.buildkit.v1.frontend.LLBBridge/Solve", "build.run", []string{}},
		{"/moby.buildkit.v1.frontend.LLBBridge/NewContainer", "build.frontend", []string{"build buildkit"}},
		{"/moby.buildkit.v1.frontend.LLBBridge/ExecProcess", "build.frontend", []string{"build buildkit"}},
		{"/moby.buildkit.v1.frontend.LLBBridge/ReadFile", "build.frontend", []string{}},
		{"/moby.buildkit.v1.frontend.LLBBridge/Ping", "build.frontend", []string{}},
		{"/moby.buildkit.v1.frontend.LLBBridge/NewContainer", "build.frontend", []string{"build buildkit"}},
		{"/moby.buildkit.v1.frontend.LLBBridge/ExecProcess", "build.frontend", []string{"build buildkit"}},
		{"/moby.buildkit.v1.Control/Evil", ActionUnknown, nil},
		{"/moby.buildkit.v1.control/Solve", ActionUnknown, nil},
		{"/moby.buildkit.v1.Control/Solve/", ActionUnknown, nil},
		{"/moby.filesync.v1.FileSync/DiffCopy", ActionUnknown, nil},
		{"", ActionUnknown, nil},
	} {
		t.Run(tc.method, func(t *testing.T) {
			m := MatchBuildKitCall(tc.method)
			if m.Action != tc.action {
				t.Fatalf("action %q, want %q", m.Action, tc.action)
			}
			if tc.facts == nil {
				return
			}
			have, _, err := bkFacts(t, m, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(have, tc.facts) {
				t.Fatalf("facts %q, want %q", have, tc.facts)
			}
		})
	}
}

// TestBuildKitCallsJudged: the calls are decided by the policy like HTTP
// requests: endpoint rows, fact rows, tenants, unknown calls, and the
// solve handed to the proxy only when allowed.
func TestBuildKitCallsJudged(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"ci.csv": `
g, user:jenkins, role:ci
p, role:ci, endpoint, *, allow
p, role:ci, image, docker.io/library/**, allow
p, role:ci, image-target, ci.local/**, allow
p, user:tenant, endpoint, *, allow
p, user:tenant, tenant, user, allow
p, user:tenant, image-target, ci.local/**, allow
p, user:root, *, **, allow
`})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	solve := func(attrs map[string]string, entitlements ...string) []byte {
		r := dockerfileSolve(attrs)
		r.Entitlements = entitlements
		r.Exporters = []*controlapi.Exporter{{Type: "moby", Attrs: map[string]string{"name": "ci.local/app:1"}}}
		return marshalPB(t, r)
	}
	for _, tc := range []struct {
		name, caller, method string
		body                 []byte
		allow                bool
		msg                  string
	}{
		{name: "a CI job's Dockerfile build", caller: "user:jenkins", method: "/moby.buildkit.v1.Control/Solve", body: solve(nil), allow: true},
		{name: "a CI job's build with an unapproved syntax frontend", caller: "user:jenkins", method: "/moby.buildkit.v1.Control/Solve", body: solve(map[string]string{"build-arg:BUILDKIT_SYNTAX": "evil/fe"}),
			msg: "user:jenkins may not image docker.io/evil/fe:latest: no rule allows it"},
		{name: "a CI job's build in the host network", caller: "user:jenkins", method: "/moby.buildkit.v1.Control/Solve", body: solve(nil, "network.host"),
			msg: "user:jenkins may not build network=host"},
		{name: "a CI job's build-time insecure mode", caller: "user:jenkins", method: "/moby.buildkit.v1.Control/Solve", body: solve(nil, "security.insecure"),
			msg: "user:jenkins may not privileged build"},
		{name: "a CI job's client-side frontend reading what its judged solve made", caller: "user:jenkins", method: "/moby.buildkit.v1.frontend.LLBBridge/ReadFile", allow: true},
		{name: "a CI job's client-side frontend running a container outside any solve", caller: "user:jenkins", method: "/moby.buildkit.v1.frontend.LLBBridge/NewContainer",
			msg: "user:jenkins may not build buildkit"},
		{name: "a tenant's cache prune", caller: "user:tenant", method: "/moby.buildkit.v1.Control/Prune",
			msg: "the build cache records no owner"},
		{name: "an unknown call, whatever the policy", caller: "user:root", method: "/moby.buildkit.v1.Control/Evil",
			msg: "unknown endpoint"},
		{name: "status of a build", caller: "user:jenkins", method: "/moby.buildkit.v1.Control/Status", allow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := MatchBuildKitCall(tc.method)
			req := bkRequest(m, tc.body, nil, nil)
			req.Caller, req.Subjects, req.Creator = tc.caller, []string{tc.caller, "*"}, nil
			dec := Judge(context.Background(), d, m, req)
			if dec.Allow != tc.allow {
				t.Fatalf("allow %v (%d %s), want %v", dec.Allow, dec.Status, dec.Reason, tc.allow)
			}
			if !tc.allow {
				if dec.Status != http.StatusForbidden || !strings.Contains(dec.Reason, tc.msg) {
					t.Fatalf("refusal %d %q, want 403 naming %q", dec.Status, dec.Reason, tc.msg)
				}
				if dec.Solve != nil {
					t.Fatalf("a refused solve handed to the proxy: %+v", dec.Solve)
				}
				return
			}
			if tc.body != nil && (dec.Solve == nil || dec.Solve.Session != "sess1" || !dec.Solve.ReadsDockerfile) {
				t.Fatalf("solve %+v, want the session's Dockerfile to judge", dec.Solve)
			}
		})
	}
}

// TestBuildKitCallTableIsOneRowPerCall: a method has one row, and every
// row names an action of the form policies use.
func TestBuildKitCallTableIsOneRowPerCall(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range append(buildKitCallRoutes(), buildKitDockerfileRoute()) {
		if seen[r.Path] {
			t.Errorf("%s has two rows", r.Path)
		}
		seen[r.Path] = true
		if res, verb, ok := strings.Cut(r.Action, "."); !ok || res == "" || verb == "" || strings.ToLower(r.Action) != r.Action {
			t.Errorf("%s: action %q is not <resource>.<verb>", r.Path, r.Action)
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Path, "/") || strings.Count(r.Path, "/") != 2 {
			t.Errorf("%s %s is not a gRPC full method", r.Method, r.Path)
		}
	}
}
