package authz

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// namesInspector is a checkerInspector that also keeps a cache of
// container names, recording what it was told to forget.
type namesInspector struct {
	*checkerInspector
	forgotten []string
	calls     int
	// removedBefore is how many containers the image check had removed
	// when names were forgotten.
	removedBefore int
}

func (n *namesInspector) ForgetContainerNames(refs ...string) {
	n.calls++
	n.forgotten = append(n.forgotten, refs...)
	n.removedBefore = len(n.removed)
}

// TestNamesForgottenWhenForwarded: a container create, rename or remove
// forwarded through dockgate, by any caller, drops the names it touches
// once dockerd answered, whatever it answered, and before the client has
// the answer (Verify), so that a script's next request by name does not
// wait for dockerd's event; other requests carry no hook.
func TestNamesForgottenWhenForwarded(t *testing.T) {
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\n"})
	jenkins := []string{"user:jenkins", "uid:1001", "*"}
	root := []string{"uid:0", "user:root", "*"}
	const mineID = "1111111111111111111111111111111111111111111111111111111111111111"
	for _, tc := range []struct {
		name, method, target, body string
		subjects                   []string
		status                     int // dockerd's answer
		want                       []string
	}{
		{name: "a tenant renames foo to bar: both names, and the ID judged", method: "POST", target: "/v1.41/containers/foo/rename?name=bar",
			subjects: jenkins, status: 204, want: []string{"foo", mineID, "bar"}},
		{name: "root renames by ID prefix: the prefix names the container", method: "POST", target: "/v1.41/containers/111111/rename?name=bar",
			subjects: root, status: 204, want: []string{"111111", "bar"}},
		{name: "a rename dockerd refused still drops the names", method: "POST", target: "/v1.41/containers/foo/rename?name=taken",
			subjects: jenkins, status: 409, want: []string{"foo", mineID, "taken"}},
		{name: "a tenant removes foo", method: "DELETE", target: "/v1.41/containers/foo?force=1",
			subjects: jenkins, status: 204, want: []string{"foo", mineID}},
		{name: "root removes foo, path without a version", method: "DELETE", target: "/containers/foo",
			subjects: root, status: 204, want: []string{"foo"}},
		{name: "a tenant creates foo", method: "POST", target: createTarget + "?name=foo", body: `{"Image":"reg.example.com/approved/app:1"}`,
			subjects: jenkins, status: 201, want: []string{"foo"}},
		{name: "root creates foo", method: "POST", target: createTarget + "?name=foo", body: `{"Image":"reg.example.com/approved/app:1"}`,
			subjects: root, status: 201, want: []string{"foo"}},
		{name: "a create without a name forgets no name", method: "POST", target: createTarget, body: `{"Image":"reg.example.com/approved/app:1"}`,
			subjects: root, status: 201, want: []string{}},
		{name: "an inspect by name changes no name", method: "GET", target: "/v1.41/containers/foo/json", subjects: jenkins},
		{name: "a stop changes no name", method: "POST", target: "/v1.41/containers/foo/stop", subjects: root},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeInspector()
			fake.containers["foo"] = fakeContainer{id: mineID, labels: map[string]string{OwnerLabel: "user:jenkins"}}
			in := &namesInspector{checkerInspector: &checkerInspector{fakeInspector: fake, created: map[string]string{pinContainerID: idApp}}}
			d := NewPolicyDecider(p)
			d.Extract = newExtractor(fakeHost(t))
			d.Inspector = in
			dec := decideRequest(t, d, tc.method, tc.target, tc.body, tc.subjects...)
			if !dec.Allow {
				t.Fatalf("refused: %d %s", dec.Status, dec.Reason)
			}
			if tc.want == nil {
				if dec.Verify != nil {
					t.Fatal("a request that changes no name carries a hook on dockerd's answer")
				}
				return
			}
			if dec.Verify == nil {
				t.Fatal("no hook on dockerd's answer")
			}
			if in.calls != 0 {
				t.Fatal("names forgotten before the request was forwarded")
			}
			answer := `{"Id":"` + pinContainerID + `","Warnings":[]}`
			if tc.status >= 300 {
				answer = `{"message":"no"}`
			}
			if err := dec.Verify(context.Background(), tc.status, []byte(answer)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if in.calls != 1 || !slices.Equal(in.forgotten, tc.want) {
				t.Fatalf("forgot %q in %d calls, want %q in one", in.forgotten, in.calls, tc.want)
			}
		})
	}

	t.Run("a create whose image check fails still forgets its name, after the check removed it", func(t *testing.T) {
		fake := newFakeInspector()
		ci := &checkerInspector{fakeInspector: fake, created: map[string]string{pinContainerID: idEvil}}
		in := &namesInspector{checkerInspector: ci}
		d := pinDecider(t, in)
		dec := pinDecide(t, d, createTarget+"?name=foo", `{"Image":"reg.example.com/approved/app:1"}`)
		err := dec.Verify(context.Background(), http.StatusCreated, []byte(`{"Id":"`+pinContainerID+`","Warnings":[]}`))
		var re *RouteError
		if !errors.As(err, &re) || re.Status != http.StatusConflict || !strings.Contains(re.Message, "changed between the decision and the create") {
			t.Fatalf("Verify: %v, want the image check's 409", err)
		}
		if !slices.Equal(ci.removed, []string{pinContainerID}) || !slices.Equal(in.forgotten, []string{"foo"}) || in.removedBefore != 1 {
			t.Fatalf("removed %q, forgot %q (after %d removals); want the container removed, then foo forgotten", ci.removed, in.forgotten, in.removedBefore)
		}
	})
	t.Run("explain and policy tests, whose dockerd caches no names, get no hook", func(t *testing.T) {
		d := pinDecider(t, newFakeInspector())
		if dec := pinDecide(t, d, "/v1.41/containers/foo/rename?name=bar", ""); !dec.Allow || dec.Verify != nil {
			t.Fatalf("allow %v, hook %v: want allowed without a hook", dec.Allow, dec.Verify != nil)
		}
	})
}

// staleNamesInspector answers ObjectOwner for some container names with
// what a name cache may still hold for them (the container the name meant
// before a change made outside dockgate), while ContainerMounts asks
// dockerd afresh.
type staleNamesInspector struct {
	*fakeInspector
	stale map[string]fakeContainer
}

func (s *staleNamesInspector) ObjectOwner(ctx context.Context, kind, name string) (string, map[string]string, bool, error) {
	if c, ok := s.stale[name]; ok && kind == ObjectContainer {
		return c.id, c.labels, true, nil
	}
	return s.fakeInspector.ObjectOwner(ctx, kind, name)
}

// Two containers a tenant's request may name "foo": the one dockerd now
// resolves it to, and the one a name cache may still hold.
const (
	freshFoo = "1111111111111111111111111111111111111111111111111111111111111111"
	staleFoo = "2222222222222222222222222222222222222222222222222222222222222222"
)

// staleNamesDecider judges with a policy that lets jenkins act on its own
// containers, where "foo" is jenkins's freshFoo to dockerd and staleOwner's
// staleFoo to the name cache.
func staleNamesDecider(t *testing.T, staleOwner string) *PolicyDecider {
	t.Helper()
	p := loadTestPolicy(t, map[string]string{"t.csv": tenantTestPolicy + "p, role:ci, owner, self, allow\n"})
	in := &staleNamesInspector{fakeInspector: newFakeInspector(), stale: map[string]fakeContainer{
		"foo": {id: staleFoo, labels: map[string]string{OwnerLabel: staleOwner}},
	}}
	in.containers["foo"] = fakeContainer{id: freshFoo, labels: map[string]string{OwnerLabel: "user:jenkins"}}
	d := NewPolicyDecider(p)
	d.Extract = newExtractor(fakeHost(t))
	d.Inspector = in
	return d
}

// TestOneContainerJudgedPerRequest: a tenant's exec, attach, rename or
// copy into a container resolves its name once, for the socket it may
// hold, and its owner is read of that same container, never of what the
// name resolves to a second time (a cached name still meaning the
// container it meant a moment ago); the request is pinned to it.
func TestOneContainerJudgedPerRequest(t *testing.T) {
	d := staleNamesDecider(t, "user:alice")
	for _, tc := range []struct{ name, method, target, body string }{
		{"exec", "POST", "/v1.41/containers/foo/exec", `{"Cmd":["true"]}`},
		{"attach", "POST", "/v1.41/containers/foo/attach?stream=1&stdout=1", ""},
		{"rename", "POST", "/v1.41/containers/foo/rename?name=bar", ""},
		{"copy into", "PUT", "/v1.41/containers/foo/archive?path=/tmp", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := decideRequest(t, d, tc.method, tc.target, tc.body, "user:jenkins", "uid:1001", "*")
			if !dec.Allow {
				t.Fatalf("refused: %d %s (the owner was read of another container than the one judged)", dec.Status, dec.Reason)
			}
			if !strings.Contains(dec.Target, "/containers/"+freshFoo+"/") {
				t.Fatalf("forwarded as %q, want pinned to %.12s", dec.Target, freshFoo)
			}
		})
	}
}

// TestVolumesFromOwnedAsJudged: a tenant's create with VolumesFrom judges
// the binds of the container the name means, and that same container's
// owner, and is forwarded with VolumesFrom pinned to it, never to what
// the name resolves to a second time.
func TestVolumesFromOwnedAsJudged(t *testing.T) {
	d := staleNamesDecider(t, "user:jenkins")
	dec := decideCreate(t, d, `{"Image":"reg.example.com/approved/app:1","HostConfig":{"VolumesFrom":["foo:ro"]}}`, "user:jenkins", "uid:1001", "*")
	if !dec.Allow {
		t.Fatalf("refused: %d %s", dec.Status, dec.Reason)
	}
	if !strings.Contains(string(dec.Body), `"VolumesFrom":["`+freshFoo+`:ro"]`) {
		t.Fatalf("forwarded %s, want VolumesFrom pinned to %.12s, whose binds were judged", dec.Body, freshFoo)
	}
}
