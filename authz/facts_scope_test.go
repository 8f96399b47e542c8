package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/filters"
)

// scopeDecider decides with the tenant test policy: user:jenkins is a
// tenant owning by "user:jenkins", uid:0 is none.
func scopeDecider(t *testing.T) *PolicyDecider {
	t.Helper()
	d := NewPolicyDecider(loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy}))
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = newFakeInspector()
	return d
}

var (
	scopeJenkins = []string{"user:jenkins", "uid:1001", "*"}
	scopeRoot    = []string{"uid:0", "user:root", "*"}
)

// scopeDecide decides one request; form, when set, is sent as a form body.
func scopeDecide(t *testing.T, d *PolicyDecider, method, target, form string, subjects []string) (Decision, *Match) {
	t.Helper()
	req := testRequest(method, target, subjects...)
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Body = []byte(form)
	}
	m, err := NewRouter().Route(req.Method, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	return d.Decide(context.Background(), m, req), m
}

// ownerOnly is the filters value of a tenant that sent none.
const ownerOnly = `{"label":{"io.dockgate.owner=user:jenkins":true}}`

func TestScopeOwnerFilterMerged(t *testing.T) {
	d := scopeDecider(t)
	q := url.QueryEscape
	for _, tc := range []struct {
		name, method, target, form string
		action                     string
		// want is the forwarded target; wantErr a substring of a 400.
		want, wantErr string
	}{
		{"list without filters", "GET", "/v1.41/containers/json?all=1", "", "container.list",
			"/v1.41/containers/json?all=1&filters=" + q(ownerOnly), ""},
		{"no query at all", "GET", "/containers/json", "", "container.list",
			"/containers/json?filters=" + q(ownerOnly), ""},
		{"empty filters", "GET", "/v1.41/containers/json?filters=&all=1", "", "container.list",
			"/v1.41/containers/json?filters=" + q(ownerOnly) + "&all=1", ""},
		{"empty object", "GET", "/v1.41/containers/json?filters=%7B%7D", "", "container.list",
			"/v1.41/containers/json?filters=" + q(ownerOnly), ""},
		{"map form merged", "GET", "/v1.41/containers/json?filters=" + q(`{"status":{"running":true},"label":{"job=7":true}}`), "", "container.list",
			"/v1.41/containers/json?filters=" + q(`{"label":{"io.dockgate.owner=user:jenkins":true,"job=7":true},"status":{"running":true}}`), ""},
		{"legacy list form", "GET", "/v1.41/containers/json?filters=" + q(`{"label":["job=7"],"name":["web","db"]}`), "", "container.list",
			"/v1.41/containers/json?filters=" + q(`{"label":{"io.dockgate.owner=user:jenkins":true,"job=7":true},"name":{"db":true,"web":true}}`), ""},
		{"null label set", "GET", "/v1.41/containers/json?filters=" + q(`{"label":null}`), "", "container.list",
			"/v1.41/containers/json?filters=" + q(ownerOnly), ""},
		{"false values kept: dockerd matches every key", "GET", "/v1.41/containers/json?filters=" + q(`{"label":{"job=7":false}}`), "", "container.list",
			"/v1.41/containers/json?filters=" + q(`{"label":{"io.dockgate.owner=user:jenkins":true,"job=7":false}}`), ""},
		{"a claim of another owner only narrows", "GET", "/v1.41/containers/json?filters=" + q(`{"label":{"io.dockgate.owner=user:alice":true}}`), "", "container.list",
			"/v1.41/containers/json?filters=" + q(`{"label":{"io.dockgate.owner=user:alice":true,"io.dockgate.owner=user:jenkins":true}}`), ""},
		{"negated owner label kept", "GET", "/v1.41/volumes?filters=" + q(`{"label!":{"io.dockgate.owner=user:jenkins":true}}`), "", "volume.list",
			"/v1.41/volumes?filters=" + q(`{"label":{"io.dockgate.owner=user:jenkins":true},"label!":{"io.dockgate.owner=user:jenkins":true}}`), ""},
		{"several filters: the first is dockerd's", "GET", "/v1.41/containers/json?filters=" + q(`{"name":{"a":true}}`) + "&all=1&filters=" + q(`{"name":{"b":true}}`), "", "container.list",
			"/v1.41/containers/json?filters=" + q(`{"label":{"io.dockgate.owner=user:jenkins":true},"name":{"a":true}}`) + "&all=1&filters=" + q(`{"name":{"b":true}}`), ""},
		{"escaped parameter name", "GET", "/v1.41/containers/json?fil%74ers=" + q(`{"id":{"abc":true}}`) + "&filters=x", "", "container.list",
			"/v1.41/containers/json?filters=" + q(`{"id":{"abc":true},"label":{"io.dockgate.owner=user:jenkins":true}}`) + "&filters=x", ""},
		{"volume list", "GET", "/v1.41/volumes?filters=" + q(`{"dangling":{"true":true}}`), "", "volume.list",
			"/v1.41/volumes?filters=" + q(`{"dangling":{"true":true},"label":{"io.dockgate.owner=user:jenkins":true}}`), ""},
		{"events", "GET", "/v1.41/events?since=1&until=2&filters=" + q(`{"type":{"container":true}}`), "", "system.events",
			"/v1.41/events?since=1&until=2&filters=" + q(`{"label":{"io.dockgate.owner=user:jenkins":true},"type":{"container":true}}`), ""},
		{"container prune", "POST", "/v1.41/containers/prune?filters=" + q(`{"until":{"24h":true}}`), "", "container.prune",
			"/v1.41/containers/prune?filters=" + q(`{"label":{"io.dockgate.owner=user:jenkins":true},"until":{"24h":true}}`), ""},
		{"volume prune", "POST", "/v1.41/volumes/prune", "", "volume.prune",
			"/v1.41/volumes/prune?filters=" + q(ownerOnly), ""},
		{"network prune", "POST", "/v1.41/networks/prune", "", "network.prune",
			"/v1.41/networks/prune?filters=" + q(ownerOnly), ""},
		{"image prune", "POST", "/v1.41/images/prune?filters=" + q(`{"dangling":["false"]}`), "", "image.prune",
			"/v1.41/images/prune?filters=" + q(`{"dangling":{"false":true},"label":{"io.dockgate.owner=user:jenkins":true}}`), ""},
		{"prune with a form body of other parameters", "POST", "/v1.41/containers/prune", "x=1", "container.prune",
			"/v1.41/containers/prune?filters=" + q(ownerOnly), ""},
		{"prune with filters in a form body", "POST", "/v1.41/containers/prune", "filters=" + q(`{"until":{"1h":true}}`), "container.prune",
			"", "form body"},
		{"not JSON", "GET", "/v1.41/containers/json?filters=notjson", "", "container.list", "", "invalid filters"},
		{"a string set", "GET", "/v1.41/containers/json?filters=" + q(`{"label":"x"}`), "", "container.list", "", "invalid filters"},
		{"mixed map and list forms", "GET", "/v1.41/containers/json?filters=" + q(`{"label":["a"],"name":{"b":true}}`), "", "container.list", "", "invalid filters"},
		{"trailing data", "GET", "/v1.41/volumes?filters=" + q(`{} {}`), "", "volume.list", "", "invalid filters"},
		{"a list", "GET", "/v1.41/events?filters=" + q(`[1]`), "", "system.events", "", "invalid filters"},
		{"malformed query", "GET", "/v1.41/containers/json?filters=%zz", "", "container.list", "", "malformed query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec, m := scopeDecide(t, d, tc.method, tc.target, tc.form, scopeJenkins)
			if m.Action != tc.action {
				t.Fatalf("routed to %s, want %s", m.Action, tc.action)
			}
			if tc.wantErr != "" {
				if dec.Allow || dec.Status != http.StatusBadRequest || !strings.Contains(dec.Reason, tc.wantErr) {
					t.Fatalf("allow %v status %d (%s), want 400 with %q", dec.Allow, dec.Status, dec.Reason, tc.wantErr)
				}
				return
			}
			if !dec.Allow {
				t.Fatalf("refused %d: %s", dec.Status, dec.Reason)
			}
			if dec.Target != tc.want {
				t.Fatalf("forwarded\n  %s\nwant\n  %s", dec.Target, tc.want)
			}
			if dec.FilterResponse != nil {
				t.Error("a label-filtered request also filters its response")
			}
			// What dockerd reads: the same action, and a first filters
			// value that decodes with the owner label in its label set.
			u, err := url.ParseRequestURI(dec.Target)
			if err != nil {
				t.Fatal(err)
			}
			if fm, err := NewRouter().Route(tc.method, u); err != nil || fm.Action != tc.action {
				t.Errorf("forwarded target routes to %+v, %v", fm, err)
			}
			args, err := filters.FromJSON(u.Query().Get("filters"))
			if err != nil {
				t.Fatalf("dockerd cannot read the forwarded filters: %v", err)
			}
			if !slices.Contains(args.Get("label"), OwnerLabel+"=user:jenkins") {
				t.Errorf("forwarded filters %v do not hold the owner label", args.Get("label"))
			}
		})
	}
}

func TestMergeOwnerFilterReadsBackExactly(t *testing.T) {
	for _, raw := range []string{"", "{}", `{"label":null}`, `{"a":{"\u00e9":true}}`, `{"label":["x=<y>&","x=\"q\""]}`, "{\"k\":{\"\xff\":true}}"} {
		out, err := mergeOwnerFilter(raw, "user:jenkins")
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		before, _ := filters.FromJSON(raw)
		after, err := filters.FromJSON(out)
		if err != nil {
			t.Fatalf("%q → %q: %v", raw, out, err)
		}
		for _, k := range before.Keys() {
			for _, v := range before.Get(k) {
				if !after.ExactMatch(k, v) {
					t.Errorf("%q → %q lost %s=%s", raw, out, k, v)
				}
			}
		}
		if after.Len() != before.Len()+boolInt(!before.Contains("label")) || len(after.Get("label")) != len(before.Get("label"))+1 {
			t.Errorf("%q → %q: more than the owner label added", raw, out)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestScopeResponseFilters(t *testing.T) {
	d := scopeDecider(t)
	const (
		self  = `{"io.dockgate.owner":"user:jenkins","job":"7"}`
		other = `{"io.dockgate.owner":"user:alice"}`
	)
	for _, tc := range []struct {
		name, target string
		in, want     string // want "": an error
	}{
		{"images: other tenants' hidden, shared and own kept, bytes kept", "/v1.41/images/json",
			`[{"Id":"a","Labels":null,"Future":{"x":[1, 2]}},{"Id":"b","Labels":` + other + `},{"Id":"c", "Labels":` + self + `},{"Id":"d","Labels":{}},{"Id":"e"},{"Id":"f","Labels":{"io.dockgate.owner":""}}]` + "\n",
			`[{"Id":"a","Labels":null,"Future":{"x":[1, 2]}},{"Id":"c", "Labels":` + self + `},{"Id":"d","Labels":{}},{"Id":"e"}]` + "\n"},
		{"images: only others'", "/images/json?all=1", `[{"Id":"b","Labels":` + other + `}]`, "[]\n"},
		{"images: empty", "/v1.41/images/json", "[]\n", "[]\n"},
		{"images: null", "/v1.41/images/json", "null\n", "null\n"},
		{"images: malformed", "/v1.41/images/json", `[{"Id":"a",`, ""},
		{"images: not a list", "/v1.41/images/json", `{"Id":"a"}`, ""},
		{"images: labels of the wrong type", "/v1.41/images/json", `[{"Id":"a","Labels":"x"}]`, ""},
		{"images: trailing data", "/v1.41/images/json", `[] []`, ""},
		{"df: own containers and volumes, visible images, no build cache, the rest as sent", "/v1.41/system/df",
			`{"LayersSize":123,"Images":[{"Id":"s","Labels":null},{"Id":"o","Labels":` + other + `},{"Id":"m","Labels":` + self + `}],` +
				`"Containers":[{"Id":"1","Labels":` + self + `},{"Id":"2","Labels":` + other + `},{"Id":"3","Labels":{"job":"agent"}},{"Id":"4","Labels":null}],` +
				`"Volumes":[{"Name":"v1","Labels":null,"UsageData":{"Size":1,"RefCount":0}},{"Name":"v2","Labels":` + self + `},{"Name":"v3","Labels":` + other + `}],` +
				`"BuildCache":[{"ID":"bc1","Size":9}],"BuilderSize":9,"Unknown":{"nested":[null,{"Labels":` + other + `}]}}` + "\n",
			`{"LayersSize":123,"Images":[{"Id":"s","Labels":null},{"Id":"m","Labels":` + self + `}],` +
				`"Containers":[{"Id":"1","Labels":` + self + `}],` +
				`"Volumes":[{"Name":"v2","Labels":` + self + `}],` +
				`"BuildCache":[],"BuilderSize":9,"Unknown":{"nested":[null,{"Labels":` + other + `}]}}` + "\n"},
		{"df: null lists stay null", "/v1.41/system/df",
			`{"LayersSize":0,"Images":null,"Containers":null,"Volumes":null,"BuildCache":null}`,
			`{"LayersSize":0,"Images":null,"Containers":null,"Volumes":null,"BuildCache":null}` + "\n"},
		{"df: keys as the client folds them", "/system/df",
			`{"containers":[{"Id":"2","Labels":` + other + `}],"VOLUMES":[{"Name":"v3","Labels":` + other + `}]}`,
			`{"containers":[],"VOLUMES":[]}` + "\n"},
		{"networks: own and dockerd's predefined ones", "/v1.41/networks",
			`[{"Name":"bridge","Id":"1","Labels":{}},{"Name":"host","Id":"2"},{"Name":"none","Id":"3","Labels":null},{"Name":"mine","Id":"4","Labels":` + self + `},` +
				`{"Name":"theirs","Id":"5","Labels":` + other + `},{"Name":"agent","Id":"6","Labels":{"job":"x"}},{"Name":"bridge","Id":"7","Labels":` + other + `}]`,
			`[{"Name":"bridge","Id":"1","Labels":{}},{"Name":"host","Id":"2"},{"Name":"none","Id":"3","Labels":null},{"Name":"mine","Id":"4","Labels":` + self + `}]` + "\n"},
		{"networks: trailing slash", "/v1.41/networks/", `[{"Name":"theirs","Labels":` + other + `}]`, "[]\n"},
		{"networks: malformed", "/v1.41/networks", `[{"Name":1}]`, ""},
		{"df: empty object", "/v1.41/system/df", "{}", "{}\n"},
		{"df: malformed", "/v1.41/system/df", `{"Images":[}`, ""},
		{"df: not an object", "/v1.41/system/df", `[]`, ""},
		{"df: null", "/v1.41/system/df", `null`, ""},
		{"df: trailing data", "/v1.41/system/df", `{} x`, ""},
		{"df: a list that is not one", "/v1.41/system/df", `{"Containers":{"Id":"1"}}`, ""},
		{"df: labels of the wrong type", "/v1.41/system/df", `{"Volumes":[{"Name":"v","Labels":["x"]}]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec, _ := scopeDecide(t, d, "GET", tc.target, "", scopeJenkins)
			if !dec.Allow {
				t.Fatalf("refused %d: %s", dec.Status, dec.Reason)
			}
			if dec.Target != "" {
				t.Errorf("a response-filtered request forwarded as %q", dec.Target)
			}
			if dec.FilterResponse == nil {
				t.Fatal("no response filter")
			}
			out, err := dec.FilterResponse([]byte(tc.in))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("filtered %q to %q, want an error", tc.in, out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("filtered to\n  %s\nwant\n  %s", out, tc.want)
			}
			if !json.Valid(out) {
				t.Errorf("%q is not JSON", out)
			}
		})
	}
}

// TestScopeNotForNonTenants: a caller the policy makes no tenant keeps
// the bytes of its request and of dockerd's answer.
func TestScopeNotForNonTenants(t *testing.T) {
	d := scopeDecider(t)
	for _, tc := range []struct{ method, target string }{
		{"GET", "/v1.41/containers/json?all=1&filters=%7B%7D"},
		{"GET", "/v1.41/volumes"},
		{"GET", "/v1.41/networks"},
		{"GET", "/v1.41/events?since=1"},
		{"POST", "/v1.41/containers/prune"},
		{"POST", "/v1.41/volumes/prune"},
		{"POST", "/v1.41/networks/prune"},
		{"POST", "/v1.41/images/prune"},
		{"POST", "/v1.41/build/prune"},
		{"GET", "/v1.41/images/json"},
		{"GET", "/v1.41/system/df"},
		// A filters value dockerd will refuse is dockerd's business.
		{"GET", "/v1.41/containers/json?filters=notjson"},
	} {
		dec, m := scopeDecide(t, d, tc.method, tc.target, "", scopeRoot)
		if m.scope == nil {
			t.Errorf("%s is not owner-scoped", m.Action)
		}
		if !dec.Allow || dec.Target != "" || dec.FilterResponse != nil {
			t.Errorf("root %s %s: allow %v (%s), target %q, response filter %v", tc.method, tc.target, dec.Allow, dec.Reason, dec.Target, dec.FilterResponse != nil)
		}
	}
	// A tenant's other requests are not scoped.
	for _, target := range []string{"/v1.41/info", "/v1.41/version", "/v1.41/plugins"} {
		dec, _ := scopeDecide(t, d, "GET", target, "", scopeJenkins)
		if !dec.Allow || dec.Target != "" || dec.FilterResponse != nil {
			t.Errorf("jenkins %s: allow %v (%s), target %q, response filter %v", target, dec.Allow, dec.Reason, dec.Target, dec.FilterResponse != nil)
		}
	}
}

func TestScopeBuildPruneRefused(t *testing.T) {
	d := scopeDecider(t)
	for _, target := range []string{"/v1.41/build/prune", "/build/prune?all=1", "/v1.41/build/prune?filters=%7B%7D"} {
		dec, _ := scopeDecide(t, d, "POST", target, "", scopeJenkins)
		if dec.Allow || dec.Status != http.StatusForbidden || !strings.Contains(dec.Reason, "build cache") || !strings.Contains(dec.Reason, "user:jenkins") {
			t.Errorf("%s: allow %v status %d (%s), want 403 about the build cache", target, dec.Allow, dec.Status, dec.Reason)
		}
		if dec, _ := scopeDecide(t, d, "POST", target, "", scopeRoot); !dec.Allow {
			t.Errorf("root %s: refused %s", target, dec.Reason)
		}
	}
}
