package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"slices"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/authz/policy"
)

// FuzzContainerCreateFacts: reading a create body never panics, every
// refusal carries a status, and a body that is read decodes with
// encoding/json (as dockerd decodes it) into a value whose dangerous parts
// all show up as facts.
func FuzzContainerCreateFacts(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox"}`,
		`{"Image":"busybox","HostConfig":{"Privileged":true,"Binds":["/:/host","bindvol:/v"],"CapAdd":["ALL"]}}`,
		`{"Image":"busybox","hostconfig":{"privileged":true}}`,
		`{"Image":"busybox","HostConfig":{"Bind\u017f":["/var/run/docker.sock:/s"],"Oom\u212aillDisable":true}}`,
		`{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"x","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]}}`,
		`{"Image":"busybox","HostConfig":{"VolumesFrom":["builder"],"SecurityOpt":["seccomp:unconfined","label:disable"],"MaskedPaths":[]}}`,
		`{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"1-1023"}]},"NetworkMode":"host","PidMode":"container:x"}}`,
		`{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"host":{"DriverOpts":{"com.docker.network.endpoint.sysctls":"a=b"}}}}}`,
		`{"Image":"busybox","Privileged":true}`,
		`{"Image":"busybox"}{"HostConfig":{"Privileged":true}}`,
	} {
		f.Add([]byte(s), "1.41")
	}
	f.Add([]byte(`{"Image":"busybox","HostConfig":{}}`), "1.40")
	host := fakeHost(f)
	extract := newExtractor(host)
	in := newFakeInspector()
	f.Fuzz(func(t *testing.T, body []byte, version string) {
		m := testMatch("container.create", version)
		req := &Request{Method: http.MethodPost, URL: parseTarget(t, "/containers/create"), Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
		facts, err := extract(context.Background(), m, req, in)
		if err != nil {
			var re *RouteError
			if !errors.As(err, &re) || re.Status < 400 {
				t.Fatalf("error without a refusal status: %#v", err)
			}
			return
		}
		var w container.CreateRequest
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatalf("read facts %v from %q, which encoding/json refuses: %v", facts, body, err)
		}
		if w.Config == nil {
			t.Fatalf("read facts from %q, which has no config", body)
		}
		has := func(kind, value string) bool { return slices.Contains(facts, policy.Fact{Kind: kind, Value: value}) }
		hasKind := func(kind string) bool {
			return slices.ContainsFunc(facts, func(f policy.Fact) bool { return f.Kind == kind })
		}
		if !hasKind("image") {
			t.Fatalf("no image fact for %q", body)
		}
		hc := w.HostConfig
		if hc == nil {
			return
		}
		if hc.Privileged && !has("privileged", "container") {
			t.Fatalf("privileged body %q without the privileged fact: %v", body, facts)
		}
		for _, b := range hc.Binds {
			if src, err := parseBindSource(b); err == nil && path.IsAbs(src) && !hasKind("bind") {
				t.Fatalf("bind %q without a bind fact: %v", b, facts)
			}
		}
		for _, c := range hc.CapAdd {
			if n := normalizeCapability(c); !defaultCapabilities[n] && !has("capability", n) {
				t.Fatalf("CapAdd %q without its capability fact: %v", c, facts)
			}
		}
		if hc.NetworkMode.IsHost() && !has("namespace", "network=host") {
			t.Fatalf("host network without its fact: %v", facts)
		}
		if hc.PidMode.IsHost() && !has("namespace", "pid=host") {
			t.Fatalf("host pid without its fact: %v", facts)
		}
		if len(hc.Devices) > 0 && !hasKind("device") {
			t.Fatalf("devices without a device fact: %v", facts)
		}
	})
}
