package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/versions"

	"github.com/dockgate/dockgate/test/testbed"
)

// TestNewerAPIFieldsReachDockerd: a create body with a field of an API
// newer than the SDK types dockgate decodes into (HostConfig.Umask, API
// 1.56) is judged and forwarded as sent; Engine 29 applies it. An unknown
// field with a value is still refused, on both engines.
func TestNewerAPIFieldsReachDockerd(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	g := azStartGate(t, env, azPolicy(t, false))
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })

	v := "/v1.41"
	if !versions.LessThan(env.Dockerd.APIVersion, "1.56") {
		v = "/v1.56"
	}
	create := func(hostConfig string) azResp {
		t.Helper()
		resp, err := azSend(t, g.Socket, azCreate(v+"/containers/create", `{"Image":"`+env.Image+`","Cmd":["true"],"Labels":{"e2e.authz":"newer"},"HostConfig":`+hostConfig+`}`))
		if err != nil || len(resp) != 1 {
			t.Fatalf("create through dockgate: %v %v", resp, err)
		}
		return resp[0]
	}
	r := create(`{"Umask":63}`)
	if r.status != 201 {
		t.Fatalf("create with HostConfig.Umask at %s: %d %s, want 201", v, r.status, r.body)
	}
	var created struct{ Id string }
	if err := json.Unmarshal([]byte(r.body), &created); err != nil {
		t.Fatal(err)
	}
	if v == "/v1.56" {
		// Read it back raw: the SDK's types have no Umask either.
		got, err := azSend(t, env.Dockerd.Socket, azReq("GET", v+"/containers/"+created.Id+"/json", false, ""))
		if err != nil || len(got) != 1 || !strings.Contains(got[0].body, `"Umask":63`) {
			t.Errorf("dockerd %s did not record the umask sent through dockgate: %v %v", env.Dockerd.Version, got, err)
		}
	}
	if r := create(`{"Umaks":63}`); r.status != 400 || !strings.Contains(r.body, "Umaks") {
		t.Errorf("an unknown HostConfig field: %d %s, want 400 naming it", r.status, r.body)
	}
}

// TestNetworkOptionsThatExposeTheHost: under the CI example a job may set
// the MTU of its network, but not a gateway mode that makes its containers
// reachable without NAT or port filtering (Engine 27 on), nor attach it to
// a host bridge. dockgate refuses them the same on an engine that does not
// know the option.
func TestNetworkOptionsThatExposeTheHost(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	g := azStartGate(t, env, azPolicy(t, false))
	u := azNewUser(t, "unix://"+g.Socket)
	const ok, routed, hostBridge = "e2e-netopt-mtu", "e2e-netopt-routed", "e2e-netopt-bridge"
	t.Cleanup(func() { tnCleanup(t, c, nil, []string{ok, routed, hostBridge}) })

	u.must("network", "create", "--label", tnTestLabel, "-o", "com.docker.network.driver.mtu=1400", ok)
	for name, opt := range map[string]string{
		routed:     "com.docker.network.bridge.gateway_mode_ipv4=routed",
		hostBridge: "com.docker.network.bridge.name=docker0",
	} {
		r := u.run("", nil, "network", "create", "--label", tnTestLabel, "-o", opt, name)
		want := "dockgate: " + azCaller + " may not network-option " + opt + ": no rule allows it"
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("network create -o %s: want %q, got %v", opt, want, r)
		}
	}
	ctx, cancel := azCtx()
	defer cancel()
	for _, name := range []string{routed, hostBridge} {
		if _, err := c.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
			t.Errorf("BYPASS: network %s was created", name)
		}
	}
}

// TestImageMountsAreJudgedAsImages: a mount of type image (API 1.48,
// Engine 28 on) puts an image's files into a container; the image is
// judged by provenance like the one the container runs. Debian's 20.10
// does not know the mount type; dockgate refuses the unapproved one there
// too, before dockerd.
func TestImageMountsAreJudgedAsImages(t *testing.T) {
	env := testbed.Shared(t)
	c := azDirect(t, env)
	const unapproved = "e2e-unapproved/mount:1"
	ctx, cancel := azCtx()
	defer cancel()
	if err := c.ImageTag(ctx, env.Image, unapproved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { azRemoveImage(t, c, unapproved) })
	g := azStartGate(t, env, azPolicy(t, false))
	u := azNewUser(t, "unix://"+g.Socket)

	r := u.run("", nil, "run", "--rm", "--label", "e2e.authz=mount", "--mount", "type=image,source="+unapproved+",target=/m", env.Image, "true")
	want := "dockgate: " + azCaller + " may not local-image docker.io/" + unapproved + ": no rule allows it"
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("an image mount of an unapproved image: want %q, got %v", want, r)
	}
	if env.Engine != testbed.EngineCurrent {
		return
	}
	r = u.run("", nil, "run", "--rm", "--label", "e2e.authz=mount", "--mount", "type=image,source="+env.Image+",target=/m", env.Image, "ls", "/m/bin/busybox")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "/m/bin/busybox" {
		t.Errorf("an image mount of the approved image on dockerd %s: %v", env.Dockerd.Version, r)
	}
}
