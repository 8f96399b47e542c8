package suggest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
)

// Whatever a trail's records hold (they carry what callers chose: names,
// paths, image references), the suggested policy loads: a value a row
// cannot hold is written commented out, never as a row that breaks the
// policy or means more than it says.
func FuzzSuggestedPolicyLoads(f *testing.F) {
	f.Add("bind", "/srv/ci/a", "/srv/ci/b", "alice", "job")
	f.Add("image", "reg.example.com/team/a:1", "reg.example.com/team/b@sha256:00", "bob", "")
	f.Add("endpoint", "container.create", "plugin.install", "", "x,y")
	f.Add("sysctl", "a=*", "b=\"c\"", "we,ird", "")
	f.Add("no-such-kind", "x", "/", "c\nd", "e\x00")
	f.Fuzz(func(t *testing.T, kind, v1, v2, user, container string) {
		l := newLearner(Options{})
		for i, v := range []string{v1, v2} {
			e := &audit.Entry{Record: audit.Record{
				Time: time.Unix(int64(i), 0), Method: "POST", Path: "/v1.41/containers/create\n" + v, Action: "container.create",
				Caller:   &audit.Caller{UID: 1000, User: user, Container: container, ContainerName: container, Subjects: []string{"container:" + container}},
				Facts:    []audit.FactResult{{Kind: "endpoint", Value: "container.create", Decision: "allow"}, {Kind: kind, Value: v, Decision: "allow"}},
				Decision: audit.DecisionAllow, Status: 201,
			}}
			l.record(e)
		}
		s := l.finish()
		if _, err := s.WriteDir(filepath.Join(t.TempDir(), "p"), "fuzz\ntrail"); err != nil {
			t.Fatalf("%v", err)
		}
		for _, p := range s.Principals {
			for _, r := range p.Rows {
				if r.Danger != "" {
					continue
				}
				cp, err := policy.CompilePattern(r.Pattern)
				if err != nil {
					t.Fatalf("row %+v: %v", r, err)
				}
				for _, v := range []string{v1, v2} {
					if r.Kind == kind && r.Kind != "endpoint" && r.Kind != "image" && r.Kind != "bind" && r.Kind != "local-image" && r.Kind != "image-target" && r.Pattern != v && cp.Match(v) {
						t.Fatalf("exact row %q matches another value %q", r.Pattern, v)
					}
				}
			}
		}
	})
}
