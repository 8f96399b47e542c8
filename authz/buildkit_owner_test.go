package authz

import (
	"context"
	"strings"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"google.golang.org/protobuf/proto"
)

// TestBuildKitTenantBuildsCarryTheirOwner: a tenant's BuildKit build puts
// its owner labels where BuildKit takes an image's labels from, and what a
// client-side frontend returns is checked to carry them; nobody's build
// result may carry an io.dockgate.* label dockgate did not set.
func TestBuildKitTenantBuildsCarryTheirOwner(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": `
p, user:tenant, endpoint, *, allow
p, user:tenant, tenant, user, allow
p, user:tenant, image-target, ci.local/**, allow
p, user:tenant, local-image, **, allow
p, user:tenant, image, **, allow
p, user:root, *, **, allow
`})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	judge := func(t *testing.T, caller, method string, body []byte) Decision {
		t.Helper()
		m := MatchBuildKitCall(method)
		req := bkRequest(m, body, nil, nil)
		req.Caller, req.Subjects, req.Creator = caller, []string{caller, "*"}, nil
		return Judge(context.Background(), d, m, req)
	}
	moby := []*controlapi.Exporter{{Type: "moby", Attrs: map[string]string{"name": "ci.local/app:1"}}}
	config := func(labels string) map[string][]byte {
		return map[string][]byte{"containerimage.config": []byte(`{"config":{"Labels":{` + labels + `}}}`)}
	}
	ret := func(md map[string][]byte) []byte {
		return marshalPB(t, &gatewaypb.ReturnRequest{Result: &gatewaypb.Result{Result: &gatewaypb.Result_Ref{Ref: &gatewaypb.Ref{Id: "r1"}}, Metadata: md}})
	}
	def, err := llb.Image("docker.io/library/busybox:latest").Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a tenant's Dockerfile build is forwarded with its owner label attribute", func(t *testing.T) {
		r := dockerfileSolve(nil)
		r.Exporters = moby
		dec := judge(t, "user:tenant", "/moby.buildkit.v1.Control/Solve", marshalPB(t, r))
		if !dec.Allow || dec.Body == nil {
			t.Fatalf("allow %v body %v: %s", dec.Allow, dec.Body != nil, dec.Reason)
		}
		var got controlapi.SolveRequest
		if err := proto.Unmarshal(dec.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.FrontendAttrs["label:"+OwnerLabel] != "user:tenant" || got.Session != "sess1" || got.Exporters[0].Attrs["name"] != "ci.local/app:1" {
			t.Errorf("forwarded Solve %v", &got)
		}
	})
	t.Run("root's build is forwarded as read", func(t *testing.T) {
		r := dockerfileSolve(nil)
		r.Exporters = moby
		if dec := judge(t, "user:root", "/moby.buildkit.v1.Control/Solve", marshalPB(t, r)); !dec.Allow || dec.Body != nil {
			t.Fatalf("allow %v, body %q", dec.Allow, dec.Body)
		}
	})
	t.Run("a tenant's raw LLB image export is what dockgate cannot judge: it could carry no owner", func(t *testing.T) {
		r := &controlapi.SolveRequest{Ref: "r", Session: "s", Definition: def.ToPB(), Exporters: moby}
		dec := judge(t, "user:tenant", "/moby.buildkit.v1.Control/Solve", marshalPB(t, r))
		if dec.Allow || !strings.Contains(dec.Reason, "may not build buildkit") {
			t.Fatalf("allow %v: %s", dec.Allow, dec.Reason)
		}
	})
	t.Run("a tenant's raw LLB build exported to the client passes", func(t *testing.T) {
		r := &controlapi.SolveRequest{Ref: "r", Session: "s", Definition: def.ToPB(), Exporters: []*controlapi.Exporter{{Type: "local"}}}
		if dec := judge(t, "user:tenant", "/moby.buildkit.v1.Control/Solve", marshalPB(t, r)); !dec.Allow {
			t.Fatalf("refused: %s", dec.Reason)
		}
	})
	t.Run("a tenant's client-side frontend solve is labelled", func(t *testing.T) {
		r := &gatewaypb.SolveRequest{Frontend: "dockerfile.v0", FrontendOpt: map[string]string{"filename": "Dockerfile"}}
		dec := judge(t, "user:tenant", "/moby.buildkit.v1.frontend.LLBBridge/Solve", marshalPB(t, r))
		var got gatewaypb.SolveRequest
		if !dec.Allow || proto.Unmarshal(dec.Body, &got) != nil || got.FrontendOpt["label:"+OwnerLabel] != "user:tenant" {
			t.Fatalf("allow %v (%s), forwarded %v", dec.Allow, dec.Reason, &got)
		}
	})
	for _, tc := range []struct {
		name, caller string
		md           map[string][]byte
		refused      string
	}{
		{"a tenant returns its labelled image", "user:tenant", config(`"` + OwnerLabel + `":"user:tenant","x":"y"`), ""},
		{"a tenant returns an image without its owner", "user:tenant", config(`"x":"y"`), "lacks its owner label"},
		{"a tenant returns an image of another owner", "user:tenant", config(`"` + OwnerLabel + `":"user:other"`), "only dockgate sets"},
		{"a tenant returns a result with no image config of its own (its final solve's)", "user:tenant", nil, ""},
		{"root returns an image claiming an owner", "user:root", config(`"` + OwnerLabel + `":"user:tenant"`), "only dockgate sets"},
		{"root returns a plain image", "user:root", config(`"x":"y"`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := judge(t, tc.caller, "/moby.buildkit.v1.frontend.LLBBridge/Return", ret(tc.md))
			if tc.refused == "" {
				if !dec.Allow {
					t.Fatalf("refused: %s", dec.Reason)
				}
				return
			}
			if dec.Allow || !strings.Contains(dec.Reason, tc.refused) {
				t.Fatalf("allow %v: %s; want refused naming %q", dec.Allow, dec.Reason, tc.refused)
			}
		})
	}
}
