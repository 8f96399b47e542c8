package authz

import (
	"encoding/json"
	"net/http"
	"strings"

	controlapi "github.com/moby/buildkit/api/services/control"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"google.golang.org/protobuf/proto"
)

// A tenant's BuildKit build: what it exports into dockerd's image store
// carries its owner labels, as a classic build's does (labelBuild). They
// go where BuildKit takes an image's labels from: the Dockerfile
// frontend's `label:<key>` attributes, added to the judged Solve, which is
// forwarded re-encoded (Request.OwnedBody). A client-side frontend (buildx)
// runs the Dockerfile frontend through LLBBridge/Solve, labelled the same
// way, and hands BuildKit the image config to export with LLBBridge/Return,
// which is checked to carry them: its config is the client's to write.

// storeExporters are the exporters that put an image into dockerd's store;
// the others send the result to the client.
var storeExporters = map[string]bool{"moby": true, "image": true}

// labelSolve records the tenant's owner labels in a Control/Solve.
func (x *extraction) labelSolve(req *controlapi.SolveRequest, exporters []*controlapi.Exporter) error {
	stores := false
	for _, e := range exporters {
		stores = stores || storeExporters[e.GetType()]
	}
	switch {
	case !stores:
		// Nothing lands in dockerd's store.
		x.req.ownerRecorded = true
		return nil
	case isDockerfileFrontend(req.Frontend):
		req.FrontendAttrs = withOwnerLabelAttrs(req.FrontendAttrs, x.req.ownerLabels())
		return x.reencodePB("Control/Solve", req)
	case req.Frontend == "" && req.Definition == nil:
		// A client-side frontend's build: its LLBBridge/Solve is
		// labelled, its LLBBridge/Return checked.
		x.req.ownerRecorded = true
		return nil
	}
	// Raw LLB: BuildKit gives the image it exports no labels but the
	// base's, and nothing dockgate could add to the Solve changes that.
	// The image would be nobody's: what dockgate cannot judge, which only
	// a caller trusted with root may do (a fact, so that a refusal of
	// another fact of the build names that one first).
	x.add("build", buildKitFact)
	x.req.ownerRecorded = true
	return nil
}

// labelGatewaySolve records the tenant's owner labels in a client-side
// frontend's solve that runs the Dockerfile frontend.
func (x *extraction) labelGatewaySolve(req *gatewaypb.SolveRequest) error {
	if !isDockerfileFrontend(req.Frontend) {
		// Raw LLB: its result exports only through LLBBridge/Return,
		// whose image config is checked.
		x.req.ownerRecorded = true
		return nil
	}
	req.FrontendOpt = withOwnerLabelAttrs(req.FrontendOpt, x.req.ownerLabels())
	return x.reencodePB("LLBBridge/Solve", req)
}

func isDockerfileFrontend(f string) bool {
	return f == "dockerfile.v0" || f == "gateway.v0"
}

// withOwnerLabelAttrs adds the owner labels as frontend attributes. A
// client's own label:io.dockgate.* attribute was refused already.
func withOwnerLabelAttrs(attrs, labels map[string]string) map[string]string {
	if attrs == nil {
		attrs = map[string]string{}
	}
	for k, v := range labels {
		attrs["label:"+k] = v
	}
	return attrs
}

// reencodePB makes m the body forwarded, and records the owner.
func (x *extraction) reencodePB(what string, m proto.Message) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return &RouteError{Status: http.StatusInternalServerError, Message: "cannot encode the " + what + " with the owner labels: " + err.Error()}
	}
	x.req.OwnedBody, x.req.ownerRecorded = b, true
	return nil
}

// buildKitReturnFacts: LLBBridge/Return, a client-side frontend handing
// BuildKit its result. For a tenant, every image config in it must carry
// the tenant's owner label (its labelled LLBBridge/Solve put it there);
// for anyone, no other io.dockgate.* label may be in it. A result with no
// config of its own (buildx's: its final solve's, labelled, is what
// BuildKit exports) passes; an image exported without one carries no
// owner at all, which makes it nobody's, never another tenant's.
func buildKitReturnFacts(x *extraction) error {
	var req gatewaypb.ReturnRequest
	if err := x.decodeBuildKit("LLBBridge/Return", &req); err != nil {
		return err
	}
	res := req.GetResult()
	if res == nil {
		x.req.ownerRecorded = true
		return nil
	}
	for k, v := range res.GetMetadata() {
		if k != "containerimage.config" && !strings.HasPrefix(k, "containerimage.config/") {
			continue
		}
		var cfg struct {
			Config struct {
				Labels map[string]string
			} `json:"config"`
		}
		if err := json.Unmarshal(v, &cfg); err != nil {
			return badBody("LLBBridge/Return: the image config %s: %v", k, err)
		}
		for l, val := range cfg.Config.Labels {
			if !strings.HasPrefix(l, reservedLabelPrefix) {
				continue
			}
			// The labels of the tenant's labelled solve, and nothing else.
			if own := x.req.Owner != "" && (l == OwnerLabel && val == x.req.Owner || l == ExpiresLabel); !own {
				return &RouteError{Status: http.StatusForbidden, Message: x.req.Caller + " may not return a build result whose image carries " + l + "=" + val + ": only dockgate sets " + reservedLabelPrefix + " labels"}
			}
		}
		if x.req.Owner != "" && cfg.Config.Labels[OwnerLabel] != x.req.Owner {
			return &RouteError{Status: http.StatusForbidden, Message: x.req.Caller + " may not return a build result whose image lacks its owner label " + OwnerLabel + "=" + x.req.Owner + ": build it with the Dockerfile frontend, which dockgate labels"}
		}
	}
	x.req.ownerRecorded = true
	return nil
}
