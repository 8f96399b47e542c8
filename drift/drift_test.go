package drift

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// The end-to-end test (test/e2e/drift_test.go) runs real work on real
// dockerds. These tests give the comparison the odd cases a real dockerd
// does not show on demand (events it no longer has, a build's own
// containers, an Engine that names no execID), from a dockerd that answers
// only the read-only calls drift makes.

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// fakeDockerd is dockerd's view: its events, containers (with create
// times), volumes and networks.
type fakeDockerd struct {
	events     []map[string]any
	containers []map[string]any
	volumes    []map[string]any
	privileged map[string]bool
	binds      map[string][]string
}

func ev(typ, action, id string, at time.Time, attrs map[string]string) map[string]any {
	return map[string]any{"Type": typ, "Action": action, "Actor": map[string]any{"ID": id, "Attributes": attrs}, "time": at.Unix(), "timeNano": at.UnixNano()}
}

func (f *fakeDockerd) serve(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Api-Version", "1.41") })
	mux.HandleFunc("/v1.41/events", func(w http.ResponseWriter, r *http.Request) {
		enc := json.NewEncoder(w)
		for _, e := range f.events {
			enc.Encode(e)
		}
	})
	mux.HandleFunc("/v1.41/containers/json", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(f.containers) })
	mux.HandleFunc("/v1.41/containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !slices.ContainsFunc(f.containers, func(c map[string]any) bool { return c["Id"] == id }) {
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
			return
		}
		var mounts []map[string]any
		for _, b := range f.binds[id] {
			mounts = append(mounts, map[string]any{"Type": "bind", "Source": b, "Destination": "/x"})
		}
		json.NewEncoder(w).Encode(map[string]any{"Id": id, "HostConfig": map[string]any{"Privileged": f.privileged[id]}, "Mounts": mounts})
	})
	mux.HandleFunc("/v1.41/volumes", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"Volumes": f.volumes})
	})
	mux.HandleFunc("/v1.41/networks", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("[]")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return "tcp://" + strings.TrimPrefix(srv.URL, "http://")
}

// rec is a forwarded request of the trail, at seconds after t0.
func rec(sec float64, action, path, objectID string, facts ...audit.FactResult) *audit.Record {
	return &audit.Record{
		Time: t0.Add(time.Duration(sec * float64(time.Second))), RequestID: fmt.Sprintf("r-%v", sec),
		Caller: &audit.Caller{UID: 1001, User: "jenkins"}, Method: "POST", Path: path, Action: action,
		Facts:    append([]audit.FactResult{{Kind: "endpoint", Value: action, Decision: "allow"}}, facts...),
		Decision: audit.DecisionAllow, Status: 201, DurationMS: 500, ObjectID: objectID,
	}
}

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func TestDriftMatches(t *testing.T) {
	idA, idB := strings.Repeat("a", 64), strings.Repeat("b", 64)
	refused := rec(1, "container.create", "/v1.41/containers/create", "")
	refused.Decision, refused.Status = audit.DecisionDeny, 403
	tests := []struct {
		name    string
		trail   []*audit.Record
		dockerd fakeDockerd
		drift   []string // "OBJECT ID SEEN"
		runtime []string // "WHAT ID ALLOWED-FOR"
	}{
		{
			name:    "a container created through dockgate is no drift",
			trail:   []*audit.Record{rec(1, "container.create", "/v1.41/containers/create", idA)},
			dockerd: fakeDockerd{events: []map[string]any{ev("container", "create", idA, at(1.2), nil)}, containers: []map[string]any{{"Id": idA, "Created": at(1).Unix()}}},
		},
		{
			name:    "a container created on dockerd's socket is drift",
			trail:   []*audit.Record{rec(1, "container.create", "/v1.41/containers/create", idA)},
			dockerd: fakeDockerd{events: []map[string]any{ev("container", "create", idA, at(1.2), nil), ev("container", "create", idB, at(1.3), map[string]string{"name": "sneaky"})}},
			drift:   []string{"container " + idB + " event"},
		},
		{
			name:    "a request refused at the same time explains nothing",
			trail:   []*audit.Record{rec(0, "system.ping", "/_ping", ""), refused},
			dockerd: fakeDockerd{events: []map[string]any{ev("container", "create", idB, at(1.1), nil)}},
			drift:   []string{"container " + idB + " event"},
		},
		{
			name:    "a container whose events dockerd no longer has is found by its create time",
			trail:   []*audit.Record{rec(0, "system.ping", "/_ping", "")},
			dockerd: fakeDockerd{containers: []map[string]any{{"Id": idB, "Created": at(3).Unix(), "Names": []string{"/old"}, "Image": "x"}}},
			drift:   []string{"container " + idB + " list"},
		},
		{
			name:    "a container created before the period is not drift",
			trail:   []*audit.Record{rec(10, "system.ping", "/_ping", "")},
			dockerd: fakeDockerd{containers: []map[string]any{{"Id": idB, "Created": at(2).Unix()}}},
		},
		{
			name:    "the legacy builder's containers during a build are its own",
			trail:   []*audit.Record{rec(1, "build.run", "/v1.41/build?t=x", "")},
			dockerd: fakeDockerd{events: []map[string]any{ev("container", "create", idB, at(1.3), nil)}},
		},
		{
			name:  "an exec created through dockgate is no drift, and its start is allowed for its caller",
			trail: []*audit.Record{rec(1, "container.exec", "/v1.41/containers/job/exec", "e1"), rec(2, "exec.start", "/v1.41/exec/e1e1e1e1e1e1e1/start", "")},
			dockerd: fakeDockerd{events: []map[string]any{
				ev("container", "exec_create: sh", idA, at(1.1), map[string]string{"execID": "e1", "name": "job"}),
				ev("container", "exec_start: sh", idA, at(2.1), map[string]string{"execID": "e1e1e1e1e1e1e1", "name": "job"}),
			}},
			runtime: []string{WhatExec + " " + idA + " jenkins"},
		},
		{
			name:  "an exec an Engine names no execID of is matched by its container and time",
			trail: []*audit.Record{rec(1, "container.exec", "/v1.41/containers/job/exec", "e1")},
			dockerd: fakeDockerd{events: []map[string]any{
				ev("container", "exec_create: sh", idA, at(1.1), map[string]string{"name": "job"}),
			}},
		},
		{
			name:  "an exec on dockerd's socket is drift, and its start not through dockgate",
			trail: []*audit.Record{rec(1, "container.exec", "/v1.41/containers/job/exec", "e1")},
			dockerd: fakeDockerd{events: []map[string]any{
				ev("container", "exec_create: sh", idA, at(5), map[string]string{"execID": "e2", "name": "job"}),
				ev("container", "exec_start: sh", idA, at(5.1), map[string]string{"execID": "e2", "name": "job"}),
			}},
			drift:   []string{"exec e2 event"},
			runtime: []string{WhatExec + " " + idA + " -"},
		},
		{
			name:    "a volume a container create made is no drift",
			trail:   []*audit.Record{rec(1, "container.create", "/v1.41/containers/create", idA)},
			dockerd: fakeDockerd{events: []map[string]any{ev("volume", "create", "anon1", at(1.1), nil), ev("container", "create", idA, at(1.2), nil)}},
		},
		{
			name:    "a volume created later with no request is drift, by event and not again by list",
			trail:   []*audit.Record{rec(1, "container.create", "/v1.41/containers/create", idA)},
			dockerd: fakeDockerd{events: []map[string]any{ev("volume", "create", "v9", at(20), nil)}, volumes: []map[string]any{{"Name": "v9", "CreatedAt": at(20).Format(time.RFC3339), "Driver": "local"}}},
			drift:   []string{"volume v9 event"},
		},
		{
			name:    "an image pulled through dockgate is no drift; one pulled around it is",
			trail:   []*audit.Record{rec(1, "image.pull", "/v1.41/images/create?fromImage=a", "")},
			dockerd: fakeDockerd{events: []map[string]any{ev("image", "pull", "a:1", at(1.3), nil), ev("image", "pull", "b:1", at(30), nil)}},
			drift:   []string{"image b:1 event"},
		},
		{
			name: "a container gone before drift ran is reported with the binds its create asked for",
			trail: []*audit.Record{
				rec(1, "container.create", "/v1.41/containers/create?name=job", idA, audit.FactResult{Kind: "bind", Value: "/srv/ci/1", Decision: "allow"}),
				rec(2, "container.start", "/v1.41/containers/job/start", ""),
			},
			dockerd: fakeDockerd{events: []map[string]any{ev("container", "create", idA, at(1.1), map[string]string{"name": "job"}), ev("container", "start", idA, at(2.1), map[string]string{"name": "job"})}},
			runtime: []string{WhatHostBind + " " + idA + " /srv/ci/1 jenkins"},
		},
		{
			name:  "a container started with a host bind is reported with what dockerd shows",
			trail: []*audit.Record{rec(1, "container.create", "/v1.41/containers/create?name=job", idA), rec(2, "container.start", "/v1.41/containers/"+idA[:12]+"/start", "")},
			dockerd: fakeDockerd{
				events:     []map[string]any{ev("container", "create", idA, at(1.1), nil), ev("container", "start", idA, at(2.1), map[string]string{"name": "job"})},
				containers: []map[string]any{{"Id": idA, "Created": at(1).Unix()}}, binds: map[string][]string{idA: {"/srv/data"}},
			},
			runtime: []string{WhatHostBind + " " + idA + " /srv/data jenkins"},
		},
		{
			name:    "a privileged container created through dockgate is reported for its caller",
			trail:   []*audit.Record{rec(1, "container.create", "/v1.41/containers/create", idA, audit.FactResult{Kind: "privileged", Value: "container", Decision: "allow"})},
			dockerd: fakeDockerd{events: []map[string]any{ev("container", "create", idA, at(1.2), nil)}},
			runtime: []string{WhatPrivileged + " " + idA + " jenkins"},
		},
		{
			name:    "a privileged container created around dockgate is reported as not through it",
			trail:   []*audit.Record{rec(0, "system.ping", "/_ping", "")},
			dockerd: fakeDockerd{events: []map[string]any{ev("container", "create", idB, at(1.2), nil)}, containers: []map[string]any{{"Id": idB, "Created": at(1).Unix()}}, privileged: map[string]bool{idB: true}},
			drift:   []string{"container " + idB + " event"},
			runtime: []string{WhatPrivileged + " " + idB + " -"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l, err := audit.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.trail {
				l.Write(r)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rep, err := Run(ctx, Options{Upstream: tt.dockerd.serve(t), Until: at(60)}, []string{path})
			if err != nil {
				t.Fatal(err)
			}
			var drift, runtime []string
			for _, f := range rep.Drift {
				drift = append(drift, f.Object+" "+f.ID+" "+f.Seen)
			}
			for _, f := range rep.Runtime {
				who := "-"
				if f.Allowed {
					who = f.Caller
				}
				id := f.ID
				if len(f.Binds) > 0 {
					id += " " + strings.Join(f.Binds, ",")
				}
				runtime = append(runtime, f.What+" "+id+" "+who)
			}
			if !slices.Equal(drift, tt.drift) {
				t.Errorf("drift:\n got %q\nwant %q", drift, tt.drift)
			}
			if !slices.Equal(runtime, tt.runtime) {
				t.Errorf("runtime:\n got %q\nwant %q", runtime, tt.runtime)
			}
			if rep.Found() != (len(tt.drift) > 0) {
				t.Errorf("Found() = %v", rep.Found())
			}
		})
	}
}

// A trail with no records gives no period: drift does not guess one.
func TestDriftNeedsAPeriod(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Run(context.Background(), Options{Upstream: "unix:///nonexistent"}, []string{path}); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("err = %v", err)
	}
}

// Every action drift matches dockerd's events by is one the route table
// names: a renamed action would otherwise explain nothing, and every
// object it made would read as drift.
func TestDriftActionsAreRoutes(t *testing.T) {
	actions := authz.Actions()
	for _, a := range actionsNamed {
		if _, ok := actions[a]; !ok {
			t.Errorf("%s is no action of the route table", a)
		}
	}
}
