package authz

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestRouteRowsHaveWhatTheirWordsNeed: each word of a route row holds only
// with what it depends on, so that a new row cannot half-work.
func TestRouteRowsHaveWhatTheirWordsNeed(t *testing.T) {
	rules := []struct {
		name string
		bad  func(r *Route) bool
	}{
		{"a tenant's labelled create reads its body and has a fact reader to patch it", func(r *Route) bool {
			return r.labels == ownerLabelsInBody && (!r.NeedsBody || r.facts == nil)
		}},
		{"a tenant's labelled image has a fact reader to put the labels in its query", func(r *Route) bool {
			return r.labels == ownerLabelsOnImage && r.facts == nil
		}},
		{"an object target names a variable of the path (or reads its query)", func(r *Route) bool {
			return r.target != nil && r.target.kind != "" && !containsVar(r.Path, r.target.pathVar) && r.target.query == nil
		}},
		{"a target forwarded by full ID is the path's first variable", func(r *Route) bool {
			if r.target == nil || !r.target.pin {
				return false
			}
			open := strings.IndexByte(r.Path, '{')
			return open < 0 || !strings.HasPrefix(r.Path[open+1:], r.target.pathVar+"}") && !strings.HasPrefix(r.Path[open+1:], r.target.pathVar+":")
		}},
		{"a target is a route that names something", func(r *Route) bool {
			return r.target != nil && r.target.kind == "" && r.target.query == nil
		}},
		{"a hijacked session streams", func(r *Route) bool { return r.Hijack && !r.Stream }},
		{"an exit code is of a hijacked session named by {name}", func(r *Route) bool {
			return r.ExitOf != "" && (!r.Hijack || !containsVar(r.Path, "name") || r.ExitOf != ObjectExec && r.ExitOf != ObjectContainer)
		}},
		{"a new ID in the answer's body is in a whole answer", func(r *Route) bool { return r.NewID == NewIDInBody && r.Stream }},
		{"a new ID in a progress stream is in a stream", func(r *Route) bool { return r.NewID == NewIDInProgress && !r.Stream }},
		{"gRPC is a stream", func(r *Route) bool { return r.GRPC && !r.Stream }},
		{"a body is read into memory or spooled, not both", func(r *Route) bool { return r.Spool && r.NeedsBody }},
		{"a scoped list names no object", func(r *Route) bool { return r.scope != nil && r.target != nil }},
		{"a 404 for an absent object names it by {name}", func(r *Route) bool {
			return r.absent404 != "" && !containsVar(r.Path, "name")
		}},
		{"an action is a resource and a verb", func(r *Route) bool {
			return r.Action == ActionUnknown || !strings.Contains(r.Action, ".")
		}},
	}
	table := routeTable()
	for _, rule := range rules {
		for i := range table {
			if r := &table[i]; rule.bad(r) {
				t.Errorf("%s %s (%s): breaks %q", r.Method, r.Path, r.Action, rule.name)
			}
		}
	}
}

// TestRowsOfOneActionMeanTheSame: a policy names an action, not a row, so
// every row of an action (image.save with and without {name}, GET and
// HEAD /_ping, both network list paths) is judged and relayed alike.
func TestRowsOfOneActionMeanTheSame(t *testing.T) {
	first := map[string]Route{}
	for _, r := range routeTable() {
		f, ok := first[r.Action]
		if !ok {
			first[r.Action] = r
			continue
		}
		if a, b := rowMeaning(&f), rowMeaning(&r); a != b {
			t.Errorf("%s: %s %s and %s %s differ in more than method, path and query:\n%s\n%s", r.Action, f.Method, f.Path, r.Method, r.Path, a, b)
		}
	}
}

// rowMeaning spells out everything of a row but where it is.
func rowMeaning(r *Route) string {
	fn := func(f any) uintptr { return reflect.ValueOf(f).Pointer() }
	target := "none"
	if t := r.target; t != nil {
		target = fmt.Sprintf("%s by {%s} pin %v unlabelled-none %v query %x", t.kind, t.pathVar, t.pin, t.unlabelledNone, fn(t.query))
	}
	return fmt.Sprintf("stream %v body %v spool %v hijack %v exit %q new-id %d grpc %v facts %x target %s labels %d scope %x absent-404 %q gives-host %q",
		r.Stream, r.NeedsBody, r.Spool, r.Hijack, r.ExitOf, r.NewID, r.GRPC, fn(r.facts), target, r.labels, fn(r.scope), r.absent404, r.givesHost)
}

// TestObjectRoutesHaveTargets: every container, exec, volume and network
// route that names an object in its path carries the owner fact.
func TestObjectRoutesHaveTargets(t *testing.T) {
	for _, r := range routeTable() {
		resource, _, _ := strings.Cut(r.Action, ".")
		named := containsVar(r.Path, "name") || containsVar(r.Path, "id")
		if r.target == nil && named && (resource == "container" || resource == "exec" || resource == "volume" || resource == "network") {
			t.Errorf("%s %s names an object but has no owner fact", r.Method, r.Path)
		}
	}
}

// TestTenantListsAreScoped: every list, event stream or prune of an object
// kind a tenant creates is limited to the tenant's objects, and the
// decider computes the owner of each.
func TestTenantListsAreScoped(t *testing.T) {
	scoped := map[string]bool{}
	for _, r := range routeTable() {
		if r.scope != nil {
			scoped[r.Action] = true
			if !r.needsOwner() {
				t.Errorf("%s is owner-scoped but the decider computes no owner for it", r.Action)
			}
		}
	}
	for _, a := range []string{"container.list", "volume.list", "network.list", "image.list", "system.events", "system.df", "container.prune", "volume.prune", "network.prune", "image.prune", "build.prune"} {
		if !scoped[a] {
			t.Errorf("%s is not owner-scoped", a)
		}
	}
}

// TestFactReadersReadWhatTheirRouteReads: a fact reader on a route that
// does not read the body (or spool it) never asks for it: it would judge
// nothing while dockerd gets the body. Each reader runs for a tenant, with
// a JSON body and a spooled one present, and must not reach for what its
// route leaves unread (extraction.body, spooledBody).
func TestFactReadersReadWhatTheirRouteReads(t *testing.T) {
	spool, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	if _, err := spool.WriteString("{}"); err != nil {
		t.Fatal(err)
	}
	extract := DefaultExtractor()
	for _, r := range routeTable() {
		if r.facts == nil || r.NeedsBody && r.Spool {
			continue
		}
		vars := map[string]string{}
		path := r.Path
		for _, v := range []string{"name", "id"} {
			for _, form := range []string{"{" + v + "}", "{" + v + ":.*}", "{" + v + ":.+}"} {
				if strings.Contains(path, form) {
					path = strings.Replace(path, form, "c1", 1)
					vars[v] = "c1"
				}
			}
		}
		target := "/v1.41" + path + "?fromImage=busybox&tag=1&repo=x&t=x&remote=x&container=c1"
		rt := r
		m := &Match{Route: &rt, APIVersion: "1.41", Vars: vars}
		req := &Request{Method: r.Method, URL: parseTarget(t, target), Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte("{}"), BodyFile: spool, BodySize: 2, Caller: "user:jenkins", Subjects: []string{"user:jenkins", "*"}, Owner: "user:jenkins"}
		_, err := extract(context.Background(), m, req, newFakeInspector())
		if err != nil && strings.Contains(err.Error(), "its route does not read") {
			t.Errorf("%s %s: %v", r.Method, r.Path, err)
		}
	}
}
