package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/dockgate/dockgate/authz/policy"
)

// tenantTestPolicy is the tenancy policy of authz/policy's tenant tests,
// for the decider's.
var tenantTestPolicy = func() string {
	b, err := os.ReadFile("policy/testdata/tenancy.csv")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// TestOwnerLabelAdded: a tenant's container, volume and network creates are
// forwarded as the typed value that was judged, re-encoded with the owner
// label; other callers' bodies are forwarded untouched.
func TestOwnerLabelAdded(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	router := NewRouter()
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	root := []string{"uid:0", "user:root", "*"}
	for _, tc := range []struct {
		name, target, body string
		typ                reflect.Type
		labels             func(any) *map[string]string
	}{
		{"container", "/v1.41/containers/create?name=x", `{"image":"busybox","Cmd":["sh","-c","echo <&>"],"Entrypoint":[],"Labels":{"ci.job":"7"},"HostConfig":{"Memory":1,"MaskedPaths":null,"Binds":null},"NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["a"]}}}}`,
			reflect.TypeFor[container.CreateRequest](), func(v any) *map[string]string { return &v.(*container.CreateRequest).Labels }},
		{"container without labels", "/containers/create", `{"Image":"busybox"}`,
			reflect.TypeFor[container.CreateRequest](), func(v any) *map[string]string { return &v.(*container.CreateRequest).Labels }},
		{"volume", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"o":"uid=1"},"Labels":{}}`,
			reflect.TypeFor[volume.CreateOptions](), func(v any) *map[string]string { return &v.(*volume.CreateOptions).Labels }},
		{"network", "/v1.41/networks/create", `{"Name":"n","Labels":{"a":"b"},"Options":{"com.docker.network.driver.mtu":"1400"},"Internal":true}`,
			reflect.TypeFor[network.CreateRequest](), func(v any) *map[string]string { return &v.(*network.CreateRequest).Labels }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest(http.MethodPost, tc.target, jenkins...)
			req.Header.Set("Content-Type", "application/json")
			req.Body = []byte(tc.body)
			m, err := router.Route(req.Method, req.URL)
			if err != nil {
				t.Fatal(err)
			}
			dec := d.Decide(context.Background(), m, req)
			if !dec.Allow || dec.Body == nil {
				t.Fatalf("tenant: allow %v body %q (%s)", dec.Allow, dec.Body, dec.Reason)
			}
			want := reflect.New(tc.typ).Interface()
			if err := json.Unmarshal([]byte(tc.body), want); err != nil {
				t.Fatal(err)
			}
			got := reflect.New(tc.typ).Interface()
			if err := json.Unmarshal([]byte(sameCreatorID(dec.Body)), got); err != nil {
				t.Fatal(err)
			}
			// What is forwarded is what was sent plus the owner label,
			// and a container the creator label.
			if l := tc.labels(want); *l == nil {
				*l = map[string]string{}
			}
			(*tc.labels(want))[OwnerLabel] = "user:jenkins"
			if tc.typ == reflect.TypeFor[container.CreateRequest]() {
				(*tc.labels(want))[CreatorLabel] = creatorLabelOf("user:jenkins", []string{"user:jenkins", "uid:1001", "*"})
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("forwarded %s\n want %s plus the owner label", dec.Body, tc.body)
			}

			// Root is no tenant: nothing is replaced.
			req = testRequest(http.MethodPost, tc.target, root...)
			req.Header.Set("Content-Type", "application/json")
			req.Body = []byte(tc.body)
			if dec := d.Decide(context.Background(), m, req); !dec.Allow || dec.Body != nil {
				t.Fatalf("root: allow %v body %q", dec.Allow, dec.Body)
			}
		})
	}
}

func TestOwnerLabelRefusedWhenLossy(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	router := NewRouter()
	// Forging is refused for tenants and everyone else.
	for _, subj := range [][]string{{"user:jenkins", "uid:1001", "*"}, {"uid:0", "user:root", "*"}} {
		req := testRequest(http.MethodPost, "/v1.41/containers/create", subj...)
		req.Header.Set("Content-Type", "application/json")
		req.Body = []byte(`{"Image":"busybox","Labels":{"io.dockgate.owner":"user:victim"}}`)
		m, _ := router.Route(req.Method, req.URL)
		if dec := d.Decide(context.Background(), m, req); dec.Allow || dec.Status != http.StatusForbidden || !strings.Contains(dec.Reason, OwnerLabel) {
			t.Fatalf("%v: forged label: %+v", subj, dec)
		}
	}
	// A tenant without an owner subject cannot create.
	req := testRequest(http.MethodPost, "/v1.41/volumes/create", "user:unitless", "uid:1005", "*")
	req.Header.Set("Content-Type", "application/json")
	req.Body = []byte(`{"Name":"v"}`)
	m, _ := router.Route(req.Method, req.URL)
	if dec := d.Decide(context.Background(), m, req); dec.Allow || dec.Status != http.StatusForbidden {
		t.Fatalf("unit tenant outside a unit: %+v", dec)
	}
}

// TestOwnerLabelKeepsTheClientsBody: the owner label goes into the
// client's body, whose other members keep their bytes: an empty list that
// the typed encoding would drop (Shell is omitempty; docker-compose v1
// sends empty lists) reaches dockerd as sent.
func TestOwnerLabelKeepsTheClientsBody(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy})
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	// The creator label, as json.Marshal writes its value.
	const creator = `"io.dockgate.creator":"{\"id\":\"ID\",\"owner\":\"user:jenkins\",\"creators\":[[\"user:jenkins\",\"uid:1001\",\"*\"]]}"`
	for _, tc := range []struct{ body, want string }{
		{`{"Image":"busybox","Shell":[]}`, `{"Image":"busybox","Shell":[],"Labels":{` + creator + `,"io.dockgate.owner":"user:jenkins"}}`},
		{`{"Image":"busybox", "Entrypoint":[],"labels":{"a":"b"}}`, `{"Image":"busybox","Entrypoint":[],"labels":{"a":"b",` + creator + `,"io.dockgate.owner":"user:jenkins"}}`},
		{`{"Image":"busybox","Labels":null,"HostConfig":{"Binds":[],"DNS":[]}}`, `{"Image":"busybox","Labels":{` + creator + `,"io.dockgate.owner":"user:jenkins"},"HostConfig":{"Binds":[],"DNS":[]}}`},
	} {
		req := testRequest(http.MethodPost, "/v1.41/containers/create", "user:jenkins", "uid:1001", "*")
		req.Header.Set("Content-Type", "application/json")
		req.Body = []byte(tc.body)
		m, _ := NewRouter().Route(req.Method, req.URL)
		dec := d.Decide(context.Background(), m, req)
		if !dec.Allow || sameCreatorID(dec.Body) != tc.want {
			t.Errorf("%s:\n got %s %+v\nwant %s", tc.body, dec.Body, dec, tc.want)
		}
	}
}

// TestTenantTTL: the shortest tenant-ttl row of a tenant's subjects gives
// what it creates an expiry label; rows are checked at load.
func TestTenantTTL(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, tenant-ttl, 2h, allow\np, user:jenkins, tenant-ttl, 90m, allow\np, role:units, tenant-ttl, 24h, allow\n"})
	for _, tc := range []struct {
		subjects []string
		want     time.Duration
	}{
		{[]string{"uid:1001", "user:jenkins", "*"}, 90 * time.Minute},
		{[]string{"uid:1002", "user:alice", "group:runners", "*"}, 2 * time.Hour},
		{[]string{"uid:0", "user:root", "*"}, 0},
	} {
		if got := p.TTL(tc.subjects); got != tc.want {
			t.Errorf("%v: TTL %v, want %v", tc.subjects, got, tc.want)
		}
	}

	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	now := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	req := testRequest(http.MethodPost, "/v1.41/volumes/create", "user:jenkins", "uid:1001", "*")
	req.Header.Set("Content-Type", "application/json")
	req.Body = []byte(`{"Name":"v"}`)
	req.Now = func() time.Time { return now }
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	dec := d.Decide(context.Background(), m, req)
	var got volume.CreateOptions
	if err := json.Unmarshal(dec.Body, &got); !dec.Allow || err != nil {
		t.Fatalf("allow %v (%s), body %s: %v", dec.Allow, dec.Reason, dec.Body, err)
	}
	if got.Labels[ExpiresLabel] != "2026-11-26T23:30:00Z" || got.Labels[OwnerLabel] != "user:jenkins" {
		t.Fatalf("labels %v", got.Labels)
	}

	for _, row := range []string{"p, role:ci, tenant-ttl, 0s, allow", "p, role:ci, tenant-ttl, soon, allow", "p, role:ci, tenant-ttl, 1h, deny", "p, role:ci, tenant-ttl, -1h, allow"} {
		if _, err := policy.LoadDir(writePolicy(t, map[string]string{"t.csv": row + "\n"})); err == nil || !strings.Contains(err.Error(), "tenant-ttl") || !strings.Contains(err.Error(), "t.csv:1") {
			t.Errorf("%s: want a tenant-ttl error at t.csv:1, got %v", row, err)
		}
	}
}
