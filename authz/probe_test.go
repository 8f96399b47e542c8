package authz

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// pluginInspector is the fake inspector with plugins on the daemon.
type pluginInspector struct {
	*fakeInspector
	plugins map[string]bool
}

func (p pluginInspector) PluginExists(_ context.Context, name string) (bool, error) {
	return p.plugins[name], nil
}

// TestRefusedPluginLookupOfNothingIs404: `docker inspect NAME` ends with a
// plugin lookup; under a policy that refuses it, a plugin that does not
// exist is dockerd's 404 (so the CLI says "No such object"), one that
// exists is refused, and an allowed caller is not asked about.
func TestRefusedPluginLookupOfNothingIs404(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": "p, uid:0, *, **, allow\np, user:ci, endpoint, *, allow\np, user:ci, endpoint, plugin.*, deny\n"})
	d := NewPolicyDecider(p)
	d.Inspector = pluginInspector{newFakeInspector(), map[string]bool{"vieux/sshfs:latest": true}}
	router := NewRouter()
	for _, tc := range []struct {
		name, target string
		subjects     []string
		status       int
		allow        bool
	}{
		{"no such plugin", "/v1.41/plugins/nosuch/json", []string{"user:ci"}, http.StatusNotFound, false},
		{"a plugin that exists", "/v1.41/plugins/vieux/sshfs:latest/json", []string{"user:ci"}, http.StatusForbidden, false},
		{"a name no plugin can have", "/v1.41/plugins/a%3Fb/json", []string{"user:ci"}, http.StatusNotFound, false},
		{"root may", "/v1.41/plugins/nosuch/json", []string{"uid:0"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest(http.MethodGet, tc.target, tc.subjects...)
			req.Caller = tc.subjects[0]
			m, err := router.Route(req.Method, req.URL)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			if dec.Allow != tc.allow || dec.Status != tc.status {
				t.Fatalf("allow %v status %d (%s), want allow %v status %d", dec.Allow, dec.Status, dec.Reason, tc.allow, tc.status)
			}
			if tc.status == http.StatusNotFound && (!strings.Contains(dec.Reason, "not found") || !strings.Contains(dec.Reason, "may not endpoint plugin.inspect")) {
				t.Errorf("reason %q: want the 404 and the refusal both", dec.Reason)
			}
		})
	}
}
