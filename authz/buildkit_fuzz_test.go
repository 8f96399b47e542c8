package authz

import (
	"context"
	"errors"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/protobuf/proto"
)

// FuzzBuildKitSolveFacts: reading any bytes as a Solve never panics, a
// refusal carries a status, and a message that is read decodes with
// BuildKit's types into a solve whose dangerous parts show up as facts.
func FuzzBuildKitSolveFacts(f *testing.F) {
	ctx := context.Background()
	exec, err := llb.Image("evil/x").Run(llb.Shlex("true"), llb.Network(llb.NetModeHost), llb.Security(llb.SecurityModeInsecure)).Root().Marshal(ctx)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []*controlapi.SolveRequest{
		dockerfileSolve(map[string]string{"build-arg:BUILDKIT_SYNTAX": "evil/fe", "context:a": "docker-image://evil/a", "force-network-mode": "host"}),
		{Definition: exec.ToPB(), Entitlements: []string{"network.host", "security.insecure", "device=x"}},
		{Frontend: "dockerfile.v0", Exporters: []*controlapi.Exporter{{Type: "image", Attrs: map[string]string{"name": "evil/x", "push": "true"}}},
			Cache: &controlapi.CacheOptions{Exports: []*controlapi.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "evil/c"}}}}},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	host := fakeHost(f)
	extract := newExtractor(host)
	in := newFakeInspector()
	m := MatchBuildKitCall("/moby.buildkit.v1.Control/Solve")
	f.Fuzz(func(t *testing.T, body []byte) {
		req := bkRequest(m, body, nil, nil)
		facts, err := extract(ctx, m, req, in)
		if err != nil {
			var re *RouteError
			if !errors.As(err, &re) || re.Status == 0 {
				t.Fatalf("refusal without a status: %v", err)
			}
			return
		}
		var sr controlapi.SolveRequest
		if err := proto.Unmarshal(body, &sr); err != nil {
			t.Fatalf("read a message BuildKit's types do not decode: %v", err)
		}
		has := func(kind, value string) bool {
			for _, f := range facts {
				if f.Kind == kind && f.Value == value {
					return true
				}
			}
			return false
		}
		for _, e := range sr.Entitlements {
			switch e {
			case "network.host":
				if !has("build", "network=host") {
					t.Fatalf("entitlement %s without its fact: %v", e, facts)
				}
			case "security.insecure":
				if !has("privileged", "build") {
					t.Fatalf("entitlement %s without its fact: %v", e, facts)
				}
			}
		}
		for i, dt := range sr.GetDefinition().GetDef() {
			var op pb.Op
			if proto.Unmarshal(dt, &op) != nil {
				t.Fatalf("op %d does not decode, yet was read", i)
			}
			if e := op.GetExec(); e != nil && e.GetNetwork() == pb.NetMode_HOST && !has("build", "network=host") {
				t.Fatalf("host network exec without its fact: %v", facts)
			}
		}
		if req.Solve == nil {
			t.Fatal("a solve read without its record")
		}
	})
}
