package authz

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/dockerd"
)

// TestContainerOwnerFact: a tenant's request on an existing container
// carries the owner fact self, other or none; a container that does not
// exist and a caller who is no tenant carry none.
func TestContainerOwnerFact(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\np, role:units, owner, self, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	in := newFakeInspector()
	in.containers["mine"] = fakeContainer{id: "1111", labels: map[string]string{OwnerLabel: "user:jenkins", "job": "7"}}
	in.containers["1111"] = in.containers["mine"]
	in.containers["theirs"] = fakeContainer{id: "2222", labels: map[string]string{OwnerLabel: "user:alice"}}
	in.containers["2222"] = in.containers["theirs"]
	in.containers["agent"] = fakeContainer{id: "3333", labels: map[string]string{"job": "agent"}}
	in.containers["empty"] = fakeContainer{id: "4444", labels: map[string]string{OwnerLabel: ""}}
	d.Inspector = in
	router := NewRouter()
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	alice := []string{"uid:1002", "user:alice", "group:runners", "*"}
	root := []string{"uid:0", "user:root", "*"}
	unitless := []string{"uid:1005", "user:unitless", "*"}

	for _, tc := range []struct {
		name, method, target string
		subjects             []string
		owner                string // "": no owner fact
		allow                bool
		status               int
	}{
		{"self by name", "GET", "/v1.41/containers/mine/logs?stdout=1", jenkins, "self", true, 0},
		{"self by short ID", "POST", "/v1.41/containers/1111/stop", jenkins, "self", true, 0},
		{"self exec", "POST", "/v1.41/containers/mine/exec", jenkins, "self", true, 0},
		{"self delete", "DELETE", "/v1.41/containers/mine?force=1", jenkins, "self", true, 0},
		{"other by name", "GET", "/v1.41/containers/theirs/logs", jenkins, "other", false, http.StatusForbidden},
		{"other by short ID", "DELETE", "/containers/2222?force=1", jenkins, "other", false, http.StatusForbidden},
		{"other exec", "POST", "/v1.41/containers/theirs/exec", jenkins, "other", false, http.StatusForbidden},
		{"other archive", "GET", "/v1.41/containers/theirs/archive?path=/etc", jenkins, "other", false, http.StatusForbidden},
		{"other attach ws", "GET", "/v1.41/containers/theirs/attach/ws", jenkins, "other", false, http.StatusForbidden},
		{"other by its owner", "POST", "/v1.41/containers/theirs/kill", alice, "self", true, 0},
		// start and restart judge the container's host paths first and
		// pin it; the owner is then read of that pinned ID.
		{"self start", "POST", "/v1.41/containers/mine/start", jenkins, "self", true, 0},
		{"other start", "POST", "/v1.41/containers/theirs/start", jenkins, "other", false, http.StatusForbidden},
		{"other restart by short ID", "POST", "/v1.41/containers/2222/restart", jenkins, "other", false, http.StatusForbidden},
		{"none start", "POST", "/v1.41/containers/agent/start", jenkins, "none", false, http.StatusForbidden},
		{"none", "POST", "/v1.41/containers/agent/stop", jenkins, "none", false, http.StatusForbidden},
		{"empty owner label is someone else's", "POST", "/v1.41/containers/empty/stop", jenkins, "other", false, http.StatusForbidden},
		{"none inspect", "GET", "/v1.41/containers/agent/json", jenkins, "none", false, http.StatusForbidden},
		{"not found: dockerd's 404, not forwarded by name", "GET", "/v1.41/containers/nope/logs", jenkins, "", false, http.StatusNotFound},
		{"root is no tenant", "DELETE", "/v1.41/containers/theirs?force=1", root, "", true, 0},
		{"root on the agent", "POST", "/v1.41/containers/agent/exec", root, "", true, 0},
		{"list has no owner fact", "GET", "/v1.41/containers/json", jenkins, "", true, 0},
		{"tenant without an owner subject is refused", "GET", "/v1.41/containers/mine/logs", unitless, "", false, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest(tc.method, tc.target, tc.subjects...)
			if strings.HasSuffix(tc.target, "/exec") {
				req.Header.Set("Content-Type", "application/json")
				req.Body = []byte(`{"Cmd":["true"]}`)
			}
			m, err := router.Route(req.Method, req.URL)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			if dec.Allow != tc.allow || (!tc.allow && dec.Status != tc.status) {
				t.Fatalf("allow %v status %d (%s), want allow %v status %d", dec.Allow, dec.Status, dec.Reason, tc.allow, tc.status)
			}
			if dec.Body != nil {
				t.Errorf("body replaced: %q", dec.Body)
			}
			if tc.owner != "" && tc.allow && !strings.Contains(dec.Target, "/containers/"+in.containers[m.Vars["name"]].id) {
				t.Errorf("forwarded %q, not pinned to the container's ID", dec.Target)
			}
			got := ""
			n := 0
			for _, f := range dec.Facts {
				if f.Kind == policy.OwnerKind {
					got = f.Value
					n++
				}
			}
			if got != tc.owner || n > 1 {
				t.Fatalf("owner fact %q (%d), want %q: %+v", got, n, tc.owner, dec.Facts)
			}
		})
	}
}

// TestContainerOwnerInspectorError: when dockerd cannot be asked whose a
// container is, a tenant's request is refused (502), never forwarded.
func TestContainerOwnerInspectorError(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	in := newFakeInspector()
	in.err = errors.New("connection refused")
	d.Inspector = in
	req := testRequest("POST", "/v1.41/containers/mine/stop", "user:jenkins", "uid:1001", "*")
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	if dec := d.Decide(context.Background(), m, req); dec.Allow || dec.Status != http.StatusBadGateway {
		t.Fatalf("allow %v status %d (%s), want 502", dec.Allow, dec.Status, dec.Reason)
	}
}

// TestOwnerLookupAnsweredByDockerd: when dockerd answers a tenant's owner
// lookup with a client error (a name two networks share, an ambiguous ID
// prefix), the request gets that status and message, for every kind of
// object, rather than 502; it is never forwarded.
func TestOwnerLookupAnsweredByDockerd(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	router := NewRouter()
	for _, tc := range []struct {
		name, method, target string
		answer               *dockerd.Answer
	}{
		{"network inspect by a name two tenants' networks share", "GET", "/v1.41/networks/reaper_default", &dockerd.Answer{Status: 400, Message: "network reaper_default is ambiguous (2 matches found based on name)"}},
		{"network connect by a shared name", "POST", "/v1.41/networks/reaper_default/connect", &dockerd.Answer{Status: 400, Message: "network reaper_default is ambiguous (2 matches found based on name)"}},
		{"container by an ambiguous ID prefix", "POST", "/v1.41/containers/ab/stop", &dockerd.Answer{Status: 400, Message: "multiple IDs found with provided prefix: ab"}},
		{"exec", "GET", "/v1.41/exec/e1/json", &dockerd.Answer{Status: 409, Message: "container is restarting"}},
		{"volume", "GET", "/v1.41/volumes/v1", &dockerd.Answer{Status: 400, Message: "volume name is ambiguous"}},
		{"image", "DELETE", "/v1.41/images/ci.local/app:1", &dockerd.Answer{Status: 400, Message: "invalid reference format"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newFakeInspector()
			in.err = tc.answer
			d.Inspector = in
			req := testRequest(tc.method, tc.target, "user:jenkins", "uid:1001", "*")
			if tc.method == "POST" {
				req.Header.Set("Content-Type", "application/json")
				req.Body = []byte(`{}`)
			}
			m, err := router.Route(req.Method, req.URL)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			// The client gets dockerd's message as dockerd gives it; the
			// record's reason says whose answer it is.
			if dec.Allow || dec.Status != tc.answer.Status || dec.Answer != tc.answer.Message || !strings.HasSuffix(dec.Reason, ": "+tc.answer.Message) {
				t.Fatalf("allow %v status %d answer %q reason %q, want dockerd's %d %q", dec.Allow, dec.Status, dec.Answer, dec.Reason, tc.answer.Status, tc.answer.Message)
			}
		})
	}
}

func containsVar(path, name string) bool {
	for i := 0; i+len(name)+1 < len(path); i++ {
		if path[i] == '{' && path[i+1:i+1+len(name)] == name && (path[i+1+len(name)] == '}' || path[i+1+len(name)] == ':') {
			return true
		}
	}
	return false
}
