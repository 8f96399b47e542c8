package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/dockgate/dockgate/authz/policy"
)

const (
	refMineID   = "1111111111111111111111111111111111111111111111111111111111111111"
	refTheirsID = "2222222222222222222222222222222222222222222222222222222222222222"
	refAgentID  = "3333333333333333333333333333333333333333333333333333333333333333"
	refNetID    = "4444444444444444444444444444444444444444444444444444444444444444"
)

// refInspector: jenkins's container "mine", alice's "theirs", the
// unlabelled "agent"; an exec of each; volumes, networks and images of
// each owner.
func refInspector() *fakeInspector {
	in := newFakeInspector()
	mine := map[string]string{OwnerLabel: "user:jenkins"}
	theirs := map[string]string{OwnerLabel: "user:alice"}
	agent := map[string]string{"role": "agent"}
	for name, c := range map[string]fakeContainer{
		"mine": {id: refMineID, labels: mine}, "111": {id: refMineID, labels: mine},
		"theirs": {id: refTheirsID, labels: theirs}, "222": {id: refTheirsID, labels: theirs},
		"agent": {id: refAgentID, labels: agent},
	} {
		in.containers[name] = c
	}
	in.objects = map[string]fakeContainer{
		"exec:e-mine":        {id: "e-mine", labels: mine},
		"exec:e-theirs":      {id: "e-theirs", labels: theirs},
		"exec:e-agent":       {id: "e-agent", labels: agent},
		"volume:v-mine":      {id: "v-mine", labels: mine},
		"volume:v-theirs":    {id: "v-theirs", labels: theirs},
		"volume:v-none":      {id: "v-none"},
		"network:n-mine":     {id: refNetID, labels: mine},
		"network:444":        {id: refNetID, labels: mine},
		"network:n-theirs":   {id: "5555", labels: theirs},
		"network:n-none":     {id: "6666"},
		"image:app-mine":     {id: "sha256:aa", labels: mine},
		"image:app-theirs":   {id: "sha256:bb", labels: theirs},
		"image:busybox":      {id: "sha256:cc"},
		"image:ci.local/up":  {id: "sha256:dd", labels: map[string]string{"x": "y"}},
		"image:ci.local/app": {id: "sha256:ee", labels: mine},
	}
	in.images["app-mine"] = fakeImage{id: "sha256:aa"}
	return in
}

// TestOwnerFactsOfObjects: execs, volumes, networks and built images say
// whose they are; containers and networks are forwarded by full ID;
// containers named in bodies and queries carry the owner fact and are
// pinned in what is forwarded.
func TestOwnerFactsOfObjects(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\np, role:ci, namespace, *=container, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = refInspector()
	router := NewRouter()
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	root := []string{"uid:0", "user:root", "*"}

	for _, tc := range []struct {
		name, method, target, body string
		subjects                   []string
		owners                     []string // the owner facts in order, each value once
		allow                      bool
		forwarded                  string // the target forwarded, "" when unchanged
		forwardedBody              string // a substring of the body forwarded, "" when unchanged
	}{
		{"exec start, mine", "POST", "/v1.41/exec/e-mine/start", `{"Detach":false}`, jenkins, []string{"self"}, true, "", ""},
		{"exec start, theirs", "POST", "/v1.41/exec/e-theirs/start", `{}`, jenkins, []string{"other"}, false, "", ""},
		{"exec inspect, agent", "GET", "/v1.41/exec/e-agent/json", "", jenkins, []string{"none"}, false, "", ""},
		{"exec resize, theirs", "POST", "/v1.41/exec/e-theirs/resize?h=1&w=1", "", jenkins, []string{"other"}, false, "", ""},
		{"volume inspect, mine", "GET", "/v1.41/volumes/v-mine", "", jenkins, []string{"self"}, true, "", ""},
		{"volume delete, theirs", "DELETE", "/v1.41/volumes/v-theirs", "", jenkins, []string{"other"}, false, "", ""},
		{"volume delete, none", "DELETE", "/volumes/v-none?force=1", "", jenkins, []string{"none"}, false, "", ""},
		{"network inspect by prefix, pinned", "GET", "/v1.41/networks/444?verbose=true", "", jenkins, []string{"self"}, true, "/v1.41/networks/" + refNetID + "?verbose=true", ""},
		{"network delete, theirs", "DELETE", "/v1.41/networks/n-theirs", "", jenkins, []string{"other"}, false, "", ""},
		{"network inspect bridge is shared", "GET", "/v1.41/networks/bridge", "", jenkins, nil, true, "", ""},
		{"network connect theirs to mine", "POST", "/v1.41/networks/n-mine/connect", `{"Container":"theirs"}`, jenkins, []string{"other", "self"}, false, "", ""},
		{"network connect mine, pinned", "POST", "/v1.41/networks/n-mine/connect", `{"Container":"111","EndpointConfig":null}`, jenkins, []string{"self"}, true, "/v1.41/networks/" + refNetID + "/connect", `"Container":"` + refMineID + `"`},
		{"network disconnect the agent", "POST", "/v1.41/networks/n-mine/disconnect", `{"Container":"agent","Force":true}`, jenkins, []string{"none", "self"}, false, "", ""},
		{"image tag, built by me", "POST", "/v1.41/images/app-mine/tag?repo=ci.local/x", "", jenkins, []string{"self"}, true, "/v1.41/images/sha256:aa/tag?repo=ci.local/x", ""},
		{"image push, built by them", "POST", "/v1.41/images/app-theirs/push", "", jenkins, []string{"other"}, false, "", ""},
		{"image delete of a shared base image", "DELETE", "/v1.41/images/busybox", "", jenkins, []string{"none"}, false, "", ""},
		{"image untag of a shared base image's other name", "DELETE", "/v1.41/images/ci.local/up?noprune=1", "", jenkins, []string{"none"}, false, "", ""},
		{"image delete, built by them", "DELETE", "/v1.41/images/app-theirs?force=1", "", jenkins, []string{"other"}, false, "", ""},
		{"image delete, built by me", "DELETE", "/v1.41/images/app-mine", "", jenkins, []string{"self"}, true, "", ""},
		{"image delete of what does not exist: dockerd's 404, not forwarded by name", "DELETE", "/v1.41/images/nope", "", jenkins, nil, false, "", ""},
		{"root deletes a base image", "DELETE", "/v1.41/images/busybox", "", root, nil, true, "", ""},
		{"image inspect, unlabelled", "GET", "/v1.41/images/ci.local/up/json", "", jenkins, nil, true, "", ""},
		{"image save by names", "GET", "/v1.41/images/get?names=busybox&names=app-theirs", "", jenkins, []string{"other"}, false, "", ""},
		{"commit theirs", "POST", "/v1.41/commit?container=theirs&repo=ci.local/x", "", jenkins, []string{"other"}, false, "", ""},
		{"commit mine, pinned", "POST", "/v1.41/commit?container=mine&repo=ci.local/x", "", jenkins, []string{"self"}, true, "/v1.41/commit?container=" + refMineID + "&repo=ci.local/x&changes=LABEL+io.dockgate.owner%3D%27user%3Ajenkins%27", ""},
		{"create with VolumesFrom theirs", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"VolumesFrom":["theirs:ro"]}}`, jenkins, []string{"other"}, false, "", ""},
		{"create with pid of the agent", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"PidMode":"container:agent"}}`, jenkins, []string{"none"}, false, "", ""},
		{"create with network of theirs by short ID", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:222"}}`, jenkins, []string{"other"}, false, "", ""},
		{"create with ipc of theirs", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"IpcMode":"container:theirs"}}`, jenkins, []string{"other"}, false, "", ""},
		{"create with cgroup of theirs", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Cgroup":"container:theirs"}}`, jenkins, []string{"other"}, false, "", ""},
		{"create linking theirs", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Links":["/theirs:/me/db"]}}`, jenkins, []string{"other"}, false, "", ""},
		{"create with all of mine, pinned", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"VolumesFrom":["mine:ro","111"],"NetworkMode":"container:mine","PidMode":"container:111","IpcMode":"container:mine","Links":["mine","111:db"]}}`, jenkins, []string{"self"}, true, "",
			`"VolumesFrom":["` + refMineID + `:ro","` + refMineID + `"]`},
		{"create mounting their volume", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Binds":["v-theirs:/x"]}}`, jenkins, []string{"other"}, false, "", ""},
		{"create mounting the agent's volume", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"v-none","Target":"/x"}]}}`, jenkins, []string{"none"}, false, "", ""},
		{"create mounting my volume and a new one", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Binds":["v-mine:/x","v-new:/y"]}}`, jenkins, []string{"self"}, true, "", `"v-mine:/x"`},
		{"create joining their network", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"n-theirs"}}`, jenkins, []string{"other"}, false, "", ""},
		{"create joining their network by endpoint", "POST", "/v1.41/containers/create", `{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"n-theirs":{}}}}`, jenkins, []string{"other"}, false, "", ""},
		{"create with no network mode", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":""}}`, jenkins, nil, true, "", `"Image":"busybox"`},
		{"create joining mine and the bridge", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"n-mine"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}`, jenkins, []string{"self"}, true, "", `"NetworkMode":"n-mine"`},
		{"root is no tenant: nothing pinned, the creator recorded", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"PidMode":"container:agent"}}`, root, nil, true, "",
			`{"Image":"busybox","HostConfig":{"PidMode":"container:agent"},"Labels":{"io.dockgate.creator":"{\"id\":\"ID\",\"creators\":[[\"uid:0\",\"user:root\",\"*\"]]}"}}`},
		{"root on their exec", "POST", "/v1.41/exec/e-theirs/start", `{}`, root, nil, true, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest(tc.method, tc.target, tc.subjects...)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
				req.Body = []byte(tc.body)
			}
			m, err := router.Route(req.Method, req.URL)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			if dec.Allow != tc.allow {
				t.Fatalf("allow %v (%s), want %v; facts %+v", dec.Allow, dec.Reason, tc.allow, dec.Facts)
			}
			var owners []string
			for _, f := range dec.Facts {
				if f.Kind == policy.OwnerKind {
					owners = append(owners, f.Value)
				}
			}
			if !reflect.DeepEqual(owners, tc.owners) {
				t.Fatalf("owner facts %v, want %v", owners, tc.owners)
			}
			if !tc.allow {
				if dec.Status == http.StatusNotFound && tc.owners == nil {
					return
				}
				if !strings.Contains(dec.Reason, "may not owner") {
					t.Errorf("refusal %q does not name the owner fact", dec.Reason)
				}
				return
			}
			if dec.Target != tc.forwarded {
				t.Errorf("forwarded target %q, want %q", dec.Target, tc.forwarded)
			}
			if tc.forwardedBody == "" && dec.Body != nil && tc.subjects[0] != "user:jenkins" {
				t.Errorf("body replaced for a non-tenant: %s", dec.Body)
			}
			if tc.forwardedBody != "" && !strings.Contains(sameCreatorID(dec.Body), tc.forwardedBody) {
				t.Errorf("forwarded body %s, want it to contain %s", dec.Body, tc.forwardedBody)
			}
		})
	}
}

// TestCreateReferencesPinned: every reference of a tenant's create is
// forwarded as the full ID, with modes and link aliases as dockerd would
// have read them from the names.
func TestCreateReferencesPinned(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\np, role:ci, namespace, *=container, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = refInspector()
	req := testRequest("POST", "/v1.41/containers/create", "user:jenkins", "uid:1001", "*")
	req.Header.Set("Content-Type", "application/json")
	req.Body = []byte(`{"Image":"busybox","HostConfig":{"VolumesFrom":["mine:ro","111"],"NetworkMode":"container:mine","PidMode":"container:111","IpcMode":"container:mine","Cgroup":"container:mine","Links":["mine","111:db","/mine:/x/cache"]}}`)
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	dec := d.Decide(context.Background(), m, req)
	if !dec.Allow {
		t.Fatalf("refused: %s", dec.Reason)
	}
	var got container.CreateRequest
	if err := json.Unmarshal(dec.Body, &got); err != nil {
		t.Fatal(err)
	}
	hc := got.HostConfig
	want := container.HostConfig{
		VolumesFrom: []string{refMineID + ":ro", refMineID},
		NetworkMode: container.NetworkMode("container:" + refMineID),
		PidMode:     container.PidMode("container:" + refMineID),
		IpcMode:     container.IpcMode("container:" + refMineID),
		Cgroup:      container.CgroupSpec("container:" + refMineID),
		Links:       []string{refMineID + ":mine", refMineID + ":db", refMineID + ":cache"},
	}
	if !reflect.DeepEqual(hc.VolumesFrom, want.VolumesFrom) || hc.NetworkMode != want.NetworkMode || hc.PidMode != want.PidMode ||
		hc.IpcMode != want.IpcMode || hc.Cgroup != want.Cgroup || !reflect.DeepEqual(hc.Links, want.Links) {
		t.Fatalf("forwarded host config %+v", hc)
	}
	if got.Labels[OwnerLabel] != "user:jenkins" {
		t.Fatalf("labels %v", got.Labels)
	}
}

func TestParseLink(t *testing.T) {
	for _, tc := range []struct{ in, name, alias, err string }{
		{"db", "db", "db", ""},
		{"db:alias", "db", "alias", ""},
		{"/db:/web/alias", "db", "alias", ""},
		{"", "", "", "empty"},
		{"a:b:c", "", "", "bad format"},
	} {
		name, alias, err := parseLink(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || alias != tc.alias {
			t.Errorf("%q: %q %q %v", tc.in, name, alias, err)
		}
	}
}

// TestImageOwnerLabels: what a tenant's build, commit and import make
// carries the owner labels, in the query dockerd reads them from; client
// changes that would swallow the owner's LABEL are refused.
func TestImageOwnerLabels(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\np, role:ci, local-image, **, allow\np, role:ci, build, network=container, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = refInspector()
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	for _, tc := range []struct {
		name, method, target string
		status               int
		forwarded            string
	}{
		{"build without labels", "POST", "/v1.41/build?t=ci.local/app", 0, "/v1.41/build?t=ci.local/app&labels=%7B%22io.dockgate.owner%22%3A%22user%3Ajenkins%22%7D"},
		{"build merges into the first labels", "POST", "/v1.41/build?labels=%7B%22a%22%3A%22b%22%7D&labels=x", 0, "/v1.41/build?labels=%7B%22a%22%3A%22b%22%2C%22io.dockgate.owner%22%3A%22user%3Ajenkins%22%7D&labels=x"},
		{"build in my container's network, pinned", "POST", "/v1.41/build?networkmode=container%3Amine", 0, "/v1.41/build?networkmode=container%3A" + refMineID + "&labels=%7B%22io.dockgate.owner%22%3A%22user%3Ajenkins%22%7D"},
		{"build in their container's network", "POST", "/v1.41/build?networkmode=container%3Atheirs", http.StatusForbidden, ""},
		{"commit", "POST", "/v1.41/commit?container=mine&changes=ENV+A%3D1", 0, "/v1.41/commit?container=" + refMineID + "&changes=ENV+A%3D1&changes=LABEL+io.dockgate.owner%3D%27user%3Ajenkins%27"},
		{"commit with a trailing continuation", "POST", "/v1.41/commit?container=mine&changes=LABEL+a%3Db+%5C", http.StatusBadRequest, ""},
		{"import", "POST", "/v1.41/images/create?fromSrc=-&repo=ci.local/imp", 0, "/v1.41/images/create?fromSrc=-&repo=ci.local/imp&changes=LABEL+io.dockgate.owner%3D%27user%3Ajenkins%27"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest(tc.method, tc.target, jenkins...)
			m, err := NewRouter().Route(req.Method, req.URL)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			if tc.status != 0 {
				if dec.Allow || dec.Status != tc.status {
					t.Fatalf("allow %v status %d (%s), want %d", dec.Allow, dec.Status, dec.Reason, tc.status)
				}
				return
			}
			if !dec.Allow || dec.Target != tc.forwarded {
				t.Fatalf("allow %v (%s), forwarded\n %s\nwant\n %s", dec.Allow, dec.Reason, dec.Target, tc.forwarded)
			}
		})
	}
}

// TestTenantVolumesCreatedOwned: the volumes a tenant's create makes come
// out labelled: a mount's through its VolumeOptions labels, a bind's
// because dockgate creates it first (Prepare); a volume someone else
// created meanwhile refuses the create; nobody may label a mount's volume
// in dockgate's namespace.
func TestTenantVolumesCreatedOwned(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\n"})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	in := refInspector()
	d.Inspector = in
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	decide := func(subjects []string, body string) Decision {
		req := testRequest("POST", "/v1.41/containers/create", subjects...)
		req.Header.Set("Content-Type", "application/json")
		req.Body = []byte(body)
		m, err := NewRouter().Route(req.Method, req.URL)
		if err != nil {
			t.Fatal(err)
		}
		return d.Decide(context.Background(), m, req)
	}

	dec := decide(jenkins, `{"Image":"busybox","HostConfig":{"VolumeDriver":"","Binds":["newvol:/x","v-mine:/y","newvol:/z:ro"],"Mounts":[{"Type":"volume","Target":"/anon"},{"Type":"volume","Source":"newmnt","Target":"/m","VolumeOptions":{"Labels":{"a":"b"}}}]}}`)
	if !dec.Allow || dec.Prepare == nil {
		t.Fatalf("allow %v (%s), prepare %v", dec.Allow, dec.Reason, dec.Prepare != nil)
	}
	var w container.CreateRequest
	if err := json.Unmarshal(dec.Body, &w); err != nil {
		t.Fatal(err)
	}
	for _, m := range w.HostConfig.Mounts {
		if m.VolumeOptions == nil || m.VolumeOptions.Labels[OwnerLabel] != "user:jenkins" {
			t.Errorf("mount %s: volume options %+v, want the owner label", m.Target, m.VolumeOptions)
		}
	}
	if l := w.HostConfig.Mounts[1].VolumeOptions.Labels; l["a"] != "b" {
		t.Errorf("the client's own volume labels were lost: %v", l)
	}
	if len(in.created) != 0 {
		t.Fatalf("volumes created before the proxy forwards: %v", in.created)
	}
	if err := dec.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(in.created) != 1 || in.created["newvol"][OwnerLabel] != "user:jenkins" {
		t.Fatalf("created %v, want newvol only, the tenant's", in.created)
	}

	// Someone else's volume appeared between the check and the create.
	in.created = nil
	dec = decide(jenkins, `{"Image":"busybox","HostConfig":{"Binds":["racevol:/x"]}}`)
	in.objects["volume:racevol"] = fakeContainer{id: "racevol", labels: map[string]string{OwnerLabel: "user:alice"}}
	var re *RouteError
	if err := dec.Prepare(context.Background()); !errors.As(err, &re) || re.Status != http.StatusForbidden {
		t.Fatalf("prepare with a raced volume: %v", err)
	}

	// Root is no tenant: nothing is created or labelled.
	if dec := decide([]string{"uid:0", "user:root", "*"}, `{"Image":"busybox","HostConfig":{"Binds":["rootvol:/x"]}}`); !dec.Allow || dec.Prepare != nil || dec.Body != nil {
		t.Fatalf("root: allow %v prepare %v body %s", dec.Allow, dec.Prepare != nil, dec.Body)
	}
	for _, subjects := range [][]string{jenkins, {"uid:0", "user:root", "*"}} {
		dec := decide(subjects, `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"x","Target":"/x","VolumeOptions":{"Labels":{"io.dockgate.owner":"user:alice"}}}]}}`)
		if dec.Allow || dec.Status != http.StatusForbidden || !strings.Contains(dec.Reason, "io.dockgate.owner") {
			t.Errorf("%v: a mount's volume labelled in dockgate's namespace: allow %v %d %s", subjects[0], dec.Allow, dec.Status, dec.Reason)
		}
	}
}
