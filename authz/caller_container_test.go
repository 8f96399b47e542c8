package authz

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerd"
)

const (
	traefikID = "1111111111111111111111111111111111111111111111111111111111111111"
	ryukID    = "2222222222222222222222222222222222222222222222222222222222222222"
	goneID    = "3333333333333333333333333333333333333333333333333333333333333333"
)

// containersPolicy gives the infrastructure's reverse proxy what it reads,
// a tenant uid:1000 its own objects, and root everything.
const containersPolicy = `
p, container:traefik, endpoint, container.list, allow
p, container:traefik, endpoint, system.events, allow
p, label:role=infra, endpoint, container.inspect, allow
p, image:docker.io/library/backup, host-identity, user:backup, allow
p, user:backup, endpoint, volume.list, allow
p, uid:1000, tenant, uid, allow
p, uid:1000, endpoint, container.*, allow
p, uid:1000, endpoint, system.ping, allow
p, uid:0, *, **, allow
`

func TestJudgeContainer(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"p.csv": containersPolicy})
	for _, tc := range []struct {
		name     string
		c        dockerd.CallerContainer
		found    bool
		subjects []string
		creators [][]string
		tenant   string
		caller   string
	}{{
		name: "no tenant created it: name, image, its creator's labels",
		c: dockerd.CallerContainer{ID: traefikID, Name: "traefik", Image: "traefik:v3.1", ImageKnown: true,
			Labels:      map[string]string{"role": "infra", "org.opencontainers.image.title": "Traefik", "tier": "edge"},
			ImageLabels: map[string]string{"org.opencontainers.image.title": "Traefik", "tier": "web"}},
		found:    true,
		subjects: []string{"container:traefik", "image:docker.io/library/traefik", "label:role=infra", "label:tier=edge", "*"},
		caller:   "container:traefik",
	}, {
		name: "a label only the image set gives nothing",
		c: dockerd.CallerContainer{ID: traefikID, Name: "web", Image: "evil/app", ImageKnown: true,
			Labels: map[string]string{"role": "infra"}, ImageLabels: map[string]string{"role": "infra"}},
		found:    true,
		subjects: []string{"container:web", "image:docker.io/evil/app", "*"},
		caller:   "container:web",
	}, {
		name: "its image gone, no label can be told from the image's",
		c: dockerd.CallerContainer{ID: traefikID, Name: "web", Image: "sha256:" + strings.Repeat("a", 64),
			Labels: map[string]string{"role": "infra"}},
		found:    true,
		subjects: []string{"container:web", "*"},
		caller:   "container:web",
	}, {
		name: "created by ID: no image subject; dockgate's own labels are no subjects",
		c: dockerd.CallerContainer{ID: traefikID, Name: "x", Image: "8b67cc68860a", ImageKnown: true,
			Labels: map[string]string{"io.dockgate.expires": "2030-01-01T00:00:00Z"}},
		found:    true,
		subjects: []string{"container:x", "*"},
		caller:   "container:x",
	}, {
		name:     "a host identity only by a row",
		c:        dockerd.CallerContainer{ID: traefikID, Name: "nightly", Image: "backup:1", ImageKnown: true},
		found:    true,
		subjects: []string{"container:nightly", "image:docker.io/library/backup", "user:backup", "*"},
		caller:   "container:nightly",
	}, {
		name: "a tenant's container is its creator, whatever it is called",
		c: dockerd.CallerContainer{ID: ryukID, Name: "traefik", Image: "backup:1", ImageKnown: true, Labels: map[string]string{
			"role": "infra", OwnerLabel: "uid:1000", CreatorLabel: `{"id":"a1","owner":"uid:1000","creators":[["uid:1000","user:alice","*"]]}`}},
		found:    true,
		subjects: []string{"uid:1000", "user:alice", "*"},
		creators: [][]string{},
		tenant:   "uid:1000",
		caller:   "container:traefik (for uid:1000)",
	}, {
		name:     "an owner label no record of dockgate's vouches for gives nothing",
		c:        dockerd.CallerContainer{ID: ryukID, Name: "r", ImageKnown: true, Labels: map[string]string{OwnerLabel: "uid:1000"}},
		found:    true,
		subjects: []string{"*"},
		caller:   "container:r",
	}, {
		name: "created through dockgate by a non-tenant: capped by its creator",
		c: dockerd.CallerContainer{ID: traefikID, Name: "traefik", ImageKnown: true, Labels: map[string]string{
			CreatorLabel: `{"id":"a2","creators":[["uid:1001","*"]]}`}},
		found:    true,
		subjects: []string{"container:traefik", "*"},
		creators: [][]string{{"uid:1001", "*"}},
		caller:   "container:traefik",
	}, {
		name: "a record its image carries (a commit of a tenant's container, run outside dockgate) is no record: the container is judged as itself",
		c: dockerd.CallerContainer{ID: ryukID, Name: "r", ImageKnown: true,
			Labels:      map[string]string{OwnerLabel: "uid:1000", CreatorLabel: `{"id":"a7","owner":"uid:1000","creators":[["uid:1000","*"]]}`},
			ImageLabels: map[string]string{OwnerLabel: "uid:1000", CreatorLabel: `{"id":"a7","owner":"uid:1000","creators":[["uid:1000","*"]]}`}},
		found:    true,
		subjects: []string{"container:r", "*"},
		caller:   "container:r",
	}, {
		name: "a tenant's container of the tenant's own image, whose owner label is the image's too",
		c: dockerd.CallerContainer{ID: ryukID, Name: "r", ImageKnown: true,
			Labels:      map[string]string{OwnerLabel: "uid:1000", CreatorLabel: `{"id":"a8","owner":"uid:1000","creators":[["uid:1000","*"]]}`},
			ImageLabels: map[string]string{OwnerLabel: "uid:1000"}},
		found:    true,
		subjects: []string{"uid:1000", "*"},
		creators: [][]string{},
		tenant:   "uid:1000",
		caller:   "container:r (for uid:1000)",
	}, {
		name: "a record that names another owner than the label",
		c: dockerd.CallerContainer{ID: ryukID, Name: "r", ImageKnown: true,
			Labels: map[string]string{OwnerLabel: "uid:0", CreatorLabel: `{"id":"a9","owner":"uid:1000","creators":[["uid:1000","*"]]}`}},
		found:    true,
		subjects: []string{"*"},
		caller:   "container:r",
	}, {
		name: "an image's io.dockgate labels are no record of dockgate's",
		c: dockerd.CallerContainer{ID: traefikID, Name: "traefik", ImageKnown: true,
			Labels:      map[string]string{OwnerLabel: "uid:0", CreatorLabel: `[["uid:0","*"]]`},
			ImageLabels: map[string]string{OwnerLabel: "uid:0", CreatorLabel: `[["uid:0","*"]]`}},
		found:    true,
		subjects: []string{"container:traefik", "*"},
		caller:   "container:traefik",
	}, {
		name: "dockgate's record over an image's label is dockgate's",
		c: dockerd.CallerContainer{ID: ryukID, Name: "r", ImageKnown: true,
			Labels:      map[string]string{OwnerLabel: "uid:1000", CreatorLabel: `{"id":"a3","owner":"uid:1000","creators":[["uid:1000","*"]]}`},
			ImageLabels: map[string]string{OwnerLabel: "uid:0", CreatorLabel: `[["uid:0","*"]]`}},
		found:    true,
		subjects: []string{"uid:1000", "*"},
		creators: [][]string{},
		tenant:   "uid:1000",
		caller:   "container:r (for uid:1000)",
	}, {
		name: "dockgate's labels on a container whose image is gone cannot be trusted",
		c: dockerd.CallerContainer{ID: traefikID, Name: "traefik",
			Labels: map[string]string{OwnerLabel: "uid:1000", CreatorLabel: `{"id":"a4","owner":"uid:1000","creators":[["uid:1000","*"]]}`}},
		found:    true,
		subjects: []string{"*"},
		caller:   "container:traefik",
	}, {
		name:     "not a container of this dockerd",
		c:        dockerd.CallerContainer{},
		subjects: []string{"*"},
		caller:   "container 333333333333 (not a container of this dockerd)",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.c.ID
			if id == "" {
				id = goneID
			}
			cc := JudgeContainer(p, id, tc.c, tc.found)
			if !slices.Equal(cc.Subjects, tc.subjects) {
				t.Errorf("subjects %q, want %q", cc.Subjects, tc.subjects)
			}
			if len(cc.Creators) != len(tc.creators) || len(tc.creators) > 0 && !slices.Equal(cc.Creators[0], tc.creators[0]) {
				t.Errorf("creators %q, want %q", cc.Creators, tc.creators)
			}
			if cc.Tenant != tc.tenant {
				t.Errorf("tenant %q, want %q", cc.Tenant, tc.tenant)
			}
			if got := cc.String(); got != tc.caller {
				t.Errorf("named %q, want %q", got, tc.caller)
			}
		})
	}
}

// fakeContainers answers CallerContainer from a table.
type fakeContainers struct {
	byID map[string]dockerd.CallerContainer
	err  error
}

func (f *fakeContainers) CallerContainer(_ context.Context, id string) (dockerd.CallerContainer, bool, error) {
	c, ok := f.byID[id]
	return c, ok, f.err
}

// TestContainerCallersAreJudgedAsContainers: root in a container is not
// host root; a container never does more than its recorded creator; a
// tenant's container owns what it creates under the tenant; a caller whose
// container dockerd cannot be asked about is refused, not guessed.
func TestContainerCallersAreJudgedAsContainers(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"p.csv": containersPolicy})
	fc := &fakeContainers{byID: map[string]dockerd.CallerContainer{
		traefikID: {ID: traefikID, Name: "traefik", ImageKnown: true},
		ryukID: {ID: ryukID, Name: "traefik", ImageKnown: true, Labels: map[string]string{
			OwnerLabel: "uid:1000", CreatorLabel: `{"id":"a5","owner":"uid:1000","creators":[["uid:1000","*"]]}`}},
	}}
	d := NewPolicyDecider(p)
	d.Containers = fc
	router := NewRouter()
	decide := func(id, method, target string) Decision {
		t.Helper()
		req := testRequest(method, target, "uid:0", "user:root", "*")
		req.ContainerID = id
		m, err := router.Route(method, req.URL)
		if err != nil {
			t.Fatal(err)
		}
		return d.Decide(context.Background(), m, req)
	}
	if dec := decide(traefikID, "GET", "/v1.41/containers/json"); !dec.Allow || dec.Container == nil || dec.Container.Name != "traefik" {
		t.Errorf("traefik lists containers: %+v", dec)
	}
	dec := decide(traefikID, "POST", "/v1.41/containers/create")
	if dec.Allow || dec.Status != http.StatusForbidden || !strings.HasPrefix(dec.Reason, "container:traefik may not endpoint container.create") {
		t.Errorf("root in the traefik container creates a container: %d %s", dec.Status, dec.Reason)
	}
	// The tenant's container named traefik is the tenant: it may create,
	// and not list events as the real traefik may.
	if dec := decide(ryukID, "GET", "/v1.41/events"); dec.Allow {
		t.Errorf("a tenant's container named traefik reads events: %s", dec.Reason)
	}
	if dec := decide(ryukID, "GET", "/_ping"); !dec.Allow {
		t.Errorf("a tenant's container may not do what its tenant may: %s", dec.Reason)
	}

	// Capped by its creator: uid:1001 may do nothing, so neither may
	// the container it made, whatever its name.
	fc.byID[traefikID] = dockerd.CallerContainer{ID: traefikID, Name: "traefik", ImageKnown: true, Labels: map[string]string{CreatorLabel: `{"id":"a6","creators":[["uid:1001","*"]]}`}}
	dec = decide(traefikID, "GET", "/v1.41/containers/json")
	if dec.Allow || !strings.Contains(dec.Reason, "its creator uid:1001 may not") {
		t.Errorf("a container does more than its creator: %s", dec.Reason)
	}

	if dec := decide(goneID, "GET", "/_ping"); dec.Allow {
		t.Errorf("a caller in a container dockerd does not know is judged as more than *: %s", dec.Reason)
	}
	fc.err = errors.New("dockerd is down")
	if dec := decide(traefikID, "GET", "/_ping"); dec.Allow || dec.Status != http.StatusBadGateway {
		t.Errorf("a caller dockerd cannot say anything about: %d %s", dec.Status, dec.Reason)
	}
	d.Containers = nil
	if dec := decide(traefikID, "GET", "/_ping"); dec.Allow {
		t.Error("a container caller judged with nobody to ask")
	}
}
