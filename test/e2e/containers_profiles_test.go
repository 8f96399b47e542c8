package e2e

// The shipped profiles (policies/examples, docs/containers.md "Profiles")
// against a real dockerd: each profile's container, created on dockerd as
// an administrator would, with dockgate's socket bound at
// /var/run/docker.sock, makes the ordinary requests of its tool (allowed)
// and an escalation (refused, naming the container). The policy is the
// profile's csv as shipped, root's row and rows approving the bed's images
// for the profile's role, which the profiles approve under
// registry.example.com/approved/** only.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/test/testbed"
)

// profApp is the name of the ordinary container the profiles' tools look
// at, stop and recreate; an administrator creates it on dockerd.
const profApp = "dg-e2e-prof-app"

// profPolicy is the profile's csv as shipped, root's row (a host process
// as root may do anything, as under the default policy) and the extra
// rows.
func profPolicy(t *testing.T, name string, extra ...string) string {
	t.Helper()
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "policies", "examples", name, name+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	csv := string(b) + "\n# e2e: root on the host may do anything.\np, uid:0, *, **, allow\n"
	if len(extra) > 0 {
		csv += "# e2e: the bed's images, approved for the profile's role.\n" + strings.Join(extra, "\n") + "\n"
	}
	return csv
}

// profImageRows approve the client image and the bed's image for role,
// as the profiles approve registry.example.com/approved/**; both kinds of
// fact, since the bed's images are imported, with no registry digest, and
// a create of one is judged as a local image.
func profImageRows(role string) []string {
	var rows []string
	for _, img := range []string{"docker.io/" + harnessClientImage, azImageFact} {
		rows = append(rows, "p, "+role+", image, "+img+", allow", "p, "+role+", local-image, "+img+", allow")
	}
	return rows
}

// profSetup is a dockgate with the profile name's policy, the client
// image, a direct client and the administrator's running container
// profApp (cmd), removed after the test with whatever requests from
// inside created.
func profSetup(t *testing.T, name string, cmd []string, extra ...string) (*testbed.Env, *azGate, *client.Client, string, string, context.Context) {
	t.Helper()
	env := testbed.Shared(t)
	c := azDirect(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	img := harnessImage(t, ctx, c, env)
	before := azContainers(t, c)
	t.Cleanup(func() { azRemoveNew(t, c, before) })
	g := azStartGate(t, env, profPolicy(t, name, extra...))
	app, err := testbed.StartContainer(ctx, env.DirectHost(), testbed.ContainerSpec{
		Image: img, Name: profApp, Labels: map[string]string{azLabel: "prof"}, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	return env, g, c, img, app, ctx
}

// profSpec is the profile's container, named as the profile keys it.
func profSpec(img, name string) testbed.ContainerSpec {
	return testbed.ContainerSpec{Image: img, Name: name, Labels: map[string]string{azLabel: "prof"}}
}

// profRefused checks a refusal: 403, and dockgate's message naming the
// container and what it may not.
func profRefused(t *testing.T, what string, a testbed.DgcallAnswer, want string) {
	t.Helper()
	if a.Status != 403 || !strings.Contains(a.Body, "dockgate: "+want) {
		t.Errorf("%s: %d %s\nwant 403 %q", what, a.Status, a.Body, "dockgate: "+want)
	}
}

// profCheckRecord checks that a request of the container name is on
// record with the decision want, its caller that container, judged by its
// name and image and by no host identity.
func profCheckRecord(t *testing.T, g *azGate, method, path, name, want string) {
	t.Helper()
	rec := g.azRecord(t, want+" "+method+" "+path+" from container "+name, func(rec map[string]any) bool {
		c, _ := rec["caller"].(map[string]any)
		return rec["method"] == method && rec["path"] == path && c != nil && c["container_name"] == name && rec["decision"] == want
	})
	if rec == nil {
		return
	}
	subjects := ccSubjects(rec)
	if !slices.Contains(subjects, "container:"+name) || !slices.Contains(subjects, "image:docker.io/test/dgcall") {
		t.Errorf("%s %s: subjects on record %q, want container:%s and the image", method, path, subjects, name)
	}
	for _, s := range subjects {
		if strings.HasPrefix(s, "uid:") || strings.HasPrefix(s, "user:") || strings.HasPrefix(s, "gid:") || strings.HasPrefix(s, "group:") {
			t.Errorf("%s %s: the container has the host subject %s", method, path, s)
		}
	}
}

// profStamp is a time as the events endpoint takes it.
func profStamp(ts time.Time) string {
	return fmt.Sprintf("%d.%09d", ts.Unix(), ts.Nanosecond())
}

// TestProfileReverseProxy: Traefik's docker provider lists containers,
// inspects them and reads the events; it may not create a container or
// read the daemon's configuration.
func TestProfileReverseProxy(t *testing.T) {
	since := time.Now().Add(-time.Second)
	env, g, _, img, app, ctx := profSetup(t, "reverse-proxy", []string{"sleep", "300"})
	until := time.Now().Add(100 * time.Millisecond)
	time.Sleep(150 * time.Millisecond) // until is in the past: the stream ends at once
	spec := profSpec(img, "traefik")

	for _, tc := range []struct{ name, path, want string }{
		{"list", "/v1.41/containers/json", app},
		{"inspect", "/v1.41/containers/" + profApp + "/json", `"Id":"` + app + `"`},
		{"events", "/v1.41/events?since=" + profStamp(since) + "&until=" + profStamp(until), `"id":"` + app + `"`},
	} {
		a := ccCall(t, ctx, env, g, spec, "GET", tc.path)
		if a.Status != 200 || !strings.Contains(a.Body, tc.want) {
			t.Errorf("%s (GET %s): %d %s\nwant 200 with %s", tc.name, tc.path, a.Status, a.Body, tc.want)
		}
	}
	create := `{"Image":"` + img + `","Labels":{"` + azLabel + `":"prof"}}`
	profRefused(t, "create", ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/create", create),
		"container:traefik may not endpoint container.create")
	profRefused(t, "info", ccCall(t, ctx, env, g, spec, "GET", "/v1.41/info"),
		"container:traefik may not endpoint system.info")

	profCheckRecord(t, g, "GET", "/v1.41/containers/json", "traefik", "allow")
	profCheckRecord(t, g, "POST", "/v1.41/containers/create", "traefik", "deny")
}

// TestProfileDashboard: Homepage lists, inspects, reads the logs and one
// stats sample of a running container; its stop button is refused and the
// container keeps running.
func TestProfileDashboard(t *testing.T) {
	env, g, c, img, app, ctx := profSetup(t, "dashboard", []string{"sh", "-c", "echo dg-e2e-hello; exec sleep 300"})
	spec := profSpec(img, "homepage")

	for _, tc := range []struct{ name, path, want string }{
		{"list", "/v1.41/containers/json", app},
		{"inspect", "/v1.41/containers/" + app + "/json", `"Running":true`},
		{"logs", "/v1.41/containers/" + app + "/logs?stdout=1", "dg-e2e-hello"},
		{"stats", "/v1.41/containers/" + app + "/stats?stream=0", `"memory_stats"`},
	} {
		a := ccCall(t, ctx, env, g, spec, "GET", tc.path)
		if a.Status != 200 || !strings.Contains(a.Body, tc.want) {
			t.Errorf("%s (GET %s): %d %s\nwant 200 with %s", tc.name, tc.path, a.Status, a.Body, tc.want)
		}
	}
	stop := "/v1.41/containers/" + app + "/stop"
	profRefused(t, "stop", ccCall(t, ctx, env, g, spec, "POST", stop), "container:homepage may not endpoint container.stop")
	if in, err := c.ContainerInspect(ctx, app); err != nil || !in.State.Running {
		t.Errorf("the dashboard stopped a container: %v", err)
	}

	profCheckRecord(t, g, "GET", "/v1.41/containers/"+app+"/logs?stdout=1", "homepage", "allow")
	profCheckRecord(t, g, "POST", stop, "homepage", "deny")
}

// TestProfileUpdater: Watchtower's recreate of a container, through
// dockgate from inside the updater's container, with the settings dockerd
// gave the old one, as Watchtower sends them: inspect the container and
// its image, stop it with a signal (Watchtower kills with its stop signal
// rather than call stop), remove it, create it again under its name from
// its inspect (Config and HostConfig as they are, the first network),
// start it. (No pull: the bed has no approved registry; no network
// reconnect: the bed's containers have none.) A create of a privileged container or
// of one that binds the host's root is refused.
func TestProfileUpdater(t *testing.T) {
	// The old container: an ordinary one with a restart policy, that
	// exits on SIGTERM (Watchtower's default stop signal).
	env, g, c, img, old, ctx := profSetup(t, "updater", []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"}, profImageRows("role:updater")...)
	if _, err := c.ContainerUpdate(ctx, old, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "unless-stopped"}}); err != nil {
		t.Fatal(err)
	}
	spec := profSpec(img, "watchtower")
	must := func(step string, want int, method, path string, body ...string) string {
		t.Helper()
		a := ccCall(t, ctx, env, g, spec, append([]string{method, path}, body...)...)
		if a.Status != want {
			t.Fatalf("%s (%s %s): %d %s\nwant %d", step, method, path, a.Status, a.Body, want)
		}
		return a.Body
	}

	var in container.InspectResponse
	if err := json.Unmarshal([]byte(must("inspect", 200, "GET", "/v1.41/containers/"+profApp+"/json")), &in); err != nil {
		t.Fatal(err)
	}
	if in.ID != old || in.Config == nil || in.HostConfig == nil || in.NetworkSettings == nil {
		t.Fatalf("the inspect is of %.12s, not of %.12s, or lacks its settings", in.ID, old)
	}
	must("inspect the image", 200, "GET", "/v1.41/images/"+in.Image+"/json")
	must("stop with a signal", 204, "POST", "/v1.41/containers/"+old+"/kill?signal=SIGTERM")
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	waitC, errC := c.ContainerWait(wctx, old, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatalf("the old container did not stop on SIGTERM: %v", err)
	}
	wcancel()
	must("remove the old container", 204, "DELETE", "/v1.41/containers/"+old+"?force=1&v=1")

	// What Watchtower creates: the old Config with the image's name, the
	// old HostConfig as dockerd shows it, and its first network.
	config := *in.Config
	config.Hostname = ""
	endpoints := map[string]*network.EndpointSettings{}
	for name, ep := range in.NetworkSettings.Networks {
		endpoints[name] = ep
		break
	}
	recreate := func(hc *container.HostConfig) testbed.DgcallAnswer {
		body, err := json.Marshal(struct {
			*container.Config
			HostConfig       *container.HostConfig
			NetworkingConfig *network.NetworkingConfig
		}{&config, hc, &network.NetworkingConfig{EndpointsConfig: endpoints}})
		if err != nil {
			t.Fatal(err)
		}
		return ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/create?name="+profApp, string(body))
	}
	a := recreate(in.HostConfig)
	if a.Status != 201 {
		// A failure of the profile (or of how dockgate judges what
		// dockerd itself reports), whatever the facts. They are listed
		// from the record, and the rest of the flow goes on with the
		// settings dockerd fills in by default left unset, to check the
		// steps after it.
		var denied []string
		if rec := ccRecord(t, g, "POST", "/v1.41/containers/create?name="+profApp, "watchtower"); rec != nil {
			for _, f := range azFacts(rec) {
				if f["decision"] != "allow" {
					denied = append(denied, fmt.Sprintf("%v %v", f["kind"], f["value"]))
				}
			}
		}
		t.Errorf("the recreate as Watchtower sends it (the inspect's HostConfig: CgroupnsMode %q, MaskedPaths %q, ReadonlyPaths %q) is refused for %q: %d %s\nwant 201",
			in.HostConfig.CgroupnsMode, in.HostConfig.MaskedPaths, in.HostConfig.ReadonlyPaths, denied, a.Status, a.Body)
		hc := *in.HostConfig
		hc.CgroupnsMode, hc.MaskedPaths, hc.ReadonlyPaths = "", nil, nil
		a = recreate(&hc)
	}
	var created container.CreateResponse
	if a.Status != 201 || json.Unmarshal([]byte(a.Body), &created) != nil || created.ID == "" {
		t.Fatalf("recreate: %d %s\nwant 201", a.Status, a.Body)
	}
	must("start", 204, "POST", "/v1.41/containers/"+created.ID+"/start")
	now, err := c.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if now.Name != "/"+profApp || !now.State.Running || now.Image != in.Image || now.HostConfig.Privileged ||
		now.HostConfig.RestartPolicy.Name != "unless-stopped" || now.Config.Labels[azLabel] != "prof" {
		t.Errorf("the recreated container: name %s, running %v, image %s (was %s), privileged %v, restart %q, labels %v",
			now.Name, now.State.Running, now.Image, in.Image, now.HostConfig.Privileged, now.HostConfig.RestartPolicy.Name, now.Config.Labels)
	}
	if _, err := c.ContainerInspect(ctx, old); !client.IsErrNotFound(err) {
		t.Errorf("the old container is still there: %v", err)
	}

	// Escalations: nothing is created.
	before := azContainers(t, c)
	for _, tc := range []struct{ name, hostConfig, want string }{
		{"privileged", `{"Privileged":true}`, "container:watchtower may not privileged container"},
		{"the host's root", `{"Binds":["/:/host"]}`, "container:watchtower may not bind /"},
	} {
		body := `{"Image":"` + img + `","Labels":{"` + azLabel + `":"prof"},"HostConfig":` + tc.hostConfig + `}`
		profRefused(t, tc.name, ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/create", body), tc.want)
	}
	if n := azNewContainers(t, c, before); len(n) != 0 {
		t.Errorf("refused creates made containers: %v", n)
	}

	profCheckRecord(t, g, "POST", "/v1.41/containers/create?name="+profApp, "watchtower", "allow")
	profCheckRecord(t, g, "POST", "/v1.41/containers/create", "watchtower", "deny")
}

// TestProfileCIAgent: the agent creates a job container, which is its
// own, and a Ryuk-like container that binds dockerd's socket, which is
// given dockgate's and, started, reaches what the agent may only; the
// agent may not reach an administrator's container nor create a
// privileged one.
func TestProfileCIAgent(t *testing.T) {
	env, g, c, img, _, ctx := profSetup(t, "ci-agent", []string{"sleep", "300"}, profImageRows("role:ci-agent")...)
	spec := profSpec(img, "ci-agent")
	const owner = "container:ci-agent"
	create := func(what, name, body string) string {
		t.Helper()
		a := ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/create?name="+name, body)
		var created container.CreateResponse
		if a.Status != 201 || json.Unmarshal([]byte(a.Body), &created) != nil || created.ID == "" {
			t.Fatalf("the agent creates %s: %d %s", what, a.Status, a.Body)
		}
		in, err := c.ContainerInspect(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if in.Config.Labels[authz.OwnerLabel] != owner {
			t.Errorf("%s is not the agent's: labels %v", what, in.Config.Labels)
		}
		return created.ID
	}

	create("a job", "dg-e2e-prof-job", `{"Image":"`+img+`","Cmd":["true"],"Labels":{"`+azLabel+`":"prof"}}`)

	// Ryuk, given the socket testcontainers binds: dockgate's instead, and
	// what it asks through it is judged as the agent.
	ryuk := create("a Ryuk", "dg-e2e-prof-ryuk", `{"Image":"`+img+`","Cmd":["dgcall","GET","/v1.41/containers/`+profApp+`/json"],`+
		`"Labels":{"`+azLabel+`":"prof","org.testcontainers.ryuk":"true"},`+
		`"HostConfig":{"NetworkMode":"none","Binds":["/var/run/docker.sock:/var/run/docker.sock"]}}`)
	in, err := c.ContainerInspect(ctx, ryuk)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.HostConfig.Binds) != 1 || !strings.HasPrefix(in.HostConfig.Binds[0], g.Socket+":") {
		t.Errorf("the Ryuk was given %q, want dockgate's socket %s", in.HostConfig.Binds, g.Socket)
	}
	if a := ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/"+ryuk+"/start"); a.Status != 204 {
		t.Fatalf("the agent starts its Ryuk: %d %s", a.Status, a.Body)
	}
	r, err := testbed.WaitContainer(ctx, env.DirectHost(), ryuk)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Stdout, "403\n") || !strings.Contains(r.Stdout, "(for "+owner+") may not owner none") {
		t.Errorf("the Ryuk reaches an administrator's container:\n%v", r)
	}

	profRefused(t, "an administrator's container", ccCall(t, ctx, env, g, spec, "GET", "/v1.41/containers/"+profApp+"/json"),
		owner+" may not owner none")
	before := azContainers(t, c)
	privileged := `{"Image":"` + img + `","Labels":{"` + azLabel + `":"prof"},"HostConfig":{"Privileged":true}}`
	profRefused(t, "privileged", ccCall(t, ctx, env, g, spec, "POST", "/v1.41/containers/create", privileged),
		owner+" may not privileged container")
	if n := azNewContainers(t, c, before); len(n) != 0 {
		t.Errorf("a refused create made containers: %v", n)
	}
	profCheckRecord(t, g, "POST", "/v1.41/containers/create?name=dg-e2e-prof-job", "ci-agent", "allow")
	profCheckRecord(t, g, "GET", "/v1.41/containers/"+profApp+"/json", "ci-agent", "deny")
	if rec := ccRecord(t, g, "GET", "/v1.41/containers/"+profApp+"/json", "dg-e2e-prof-ryuk"); rec != nil {
		caller := rec["caller"].(map[string]any)
		if caller["acts_for"] != owner || rec["decision"] != "deny" || !slices.Contains(ccSubjects(rec), owner) {
			t.Errorf("the record of the Ryuk's request: %v", azJSON(rec))
		}
	}
}
