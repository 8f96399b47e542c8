package replay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/proxy"
)

const ciPolicy = `g, user:jenkins, role:ci
p, role:ci, endpoint, *, allow
p, role:ci, endpoint, plugin.*, deny
p, role:ci, image, registry.example.com/approved/**, allow
p, user:alice, endpoint, container.*, allow
p, user:alice, endpoint, image.pull, allow
p, user:alice, image, docker.io/library/**, allow
p, cert:deploy-bot, endpoint, system.ping, allow
p, uid:0, *, **, allow
`

// ciCalls is a day of a CI host: jenkins builds and runs approved images
// and once asks for a privileged container; alice runs library images,
// once tries an image from elsewhere and once a plugin; a deploy bot on
// TLS pings.
var ciCalls = []call{
	{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{image("registry.example.com/approved/app:1")}, Status: 201},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/images/create?fromImage=registry.example.com/approved/app&tag=1", Facts: []policy.Fact{image("registry.example.com/approved/app:1")}},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{image("registry.example.com/approved/app:1"), fact("privileged", "container")}},
	{Caller: alice, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{image("docker.io/library/busybox:latest")}, Status: 201},
	{Caller: alice, Method: "POST", Path: "/v1.41/images/create?fromImage=evil.example.com/x&tag=1", Facts: []policy.Fact{image("evil.example.com/x:1")}},
	{Caller: alice, Method: "GET", Path: "/v1.41/containers/json"},
	{Caller: alice, Method: "POST", Path: "/v1.41/plugins/pull?remote=vieux/sshfs", Facts: []policy.Fact{fact("image", "docker.io/vieux/sshfs:latest")}},
	{Caller: robot, Method: "GET", Path: "/_ping"},
	{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{image("registry.example.com/approved/gone:1")}, Status: 404},
}

// outcome is a change as the tests name it: caller, action, and the fact
// that decides it.
func outcomes(cs []Change) []string {
	var out []string
	for _, c := range cs {
		s := c.Caller + " " + c.Action + " " + c.Fact.Kind + " " + c.Fact.Value
		if c.Succeeded {
			s += " (succeeded)"
		}
		out = append(out, s)
	}
	return out
}

func TestReplayCandidates(t *testing.T) {
	trail := writeTrail(t, ciPolicy, false, ciCalls)
	tests := []struct {
		name          string
		candidate     string
		newlyRefused  []string
		newlyAllowed  []string
		notReplayable map[string]int
		fails         bool
	}{
		{
			name:          "the same policy changes nothing",
			candidate:     ciPolicy,
			notReplayable: map[string]int{},
		},
		{
			name:          "a row removed refuses exactly the requests it allowed",
			candidate:     strings.Replace(ciPolicy, "p, user:alice, image, docker.io/library/**, allow\n", "", 1),
			newlyRefused:  []string{"alice container.create image docker.io/library/busybox:latest (succeeded)"},
			notReplayable: map[string]int{},
			fails:         true,
		},
		{
			name:          "a TLS caller's row removed refuses its requests",
			candidate:     strings.Replace(ciPolicy, "p, cert:deploy-bot, endpoint, system.ping, allow\n", "", 1),
			newlyRefused:  []string{"cert:deploy-bot system.ping endpoint system.ping (succeeded)"},
			notReplayable: map[string]int{},
			fails:         true,
		},
		{
			name:          "a deny of what only refused requests did refuses nothing that succeeded",
			candidate:     ciPolicy + "p, *, privileged, **, deny\np, *, endpoint, plugin.*, deny\np, *, image, evil.example.com/**, deny\n",
			notReplayable: map[string]int{},
		},
		{
			name:          "a broader candidate lists what it newly allows",
			candidate:     ciPolicy + "p, role:ci, privileged, container, allow\np, user:alice, image, **, allow\n",
			newlyAllowed:  []string{"jenkins container.create privileged container", "alice image.pull image evil.example.com/x:1"},
			notReplayable: map[string]int{},
		},
		{
			name:          "an endpoint allowed that was refused before its body was read is not replayable",
			candidate:     ciPolicy + "p, user:alice, endpoint, plugin.*, allow\n",
			notReplayable: map[string]int{WhyEndpointOnly: 1},
		},
		{
			name:          "a removed role link refuses the role's requests, the failed one not counted as succeeded",
			candidate:     strings.Replace(ciPolicy, "g, user:jenkins, role:ci\n", "", 1),
			newlyRefused:  []string{"jenkins container.create endpoint container.create (succeeded)", "jenkins image.pull endpoint image.pull (succeeded)", "jenkins container.create endpoint container.create"},
			notReplayable: map[string]int{},
			fails:         true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Trail(loadPolicy(t, tt.candidate), []string{trail}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != len(ciCalls) {
				t.Errorf("replayed %d requests, want %d", rep.Requests, len(ciCalls))
			}
			if got := outcomes(rep.NewlyRefused); !slices.Equal(got, tt.newlyRefused) {
				t.Errorf("newly refused:\n got %q\nwant %q", got, tt.newlyRefused)
			}
			if got := outcomes(rep.NewlyAllowed); !slices.Equal(got, tt.newlyAllowed) {
				t.Errorf("newly allowed:\n got %q\nwant %q", got, tt.newlyAllowed)
			}
			if fmt.Sprint(rep.NotReplayable) != fmt.Sprint(tt.notReplayable) {
				t.Errorf("not replayable: got %v, want %v", rep.NotReplayable, tt.notReplayable)
			}
			changed := len(rep.NewlyRefused) + len(rep.NewlyAllowed) + rep.NotReplayableTotal()
			if rep.Unchanged != rep.Requests-changed {
				t.Errorf("unchanged %d, want %d", rep.Unchanged, rep.Requests-changed)
			}
			if rep.Fails() != tt.fails {
				t.Errorf("Fails() = %v, want %v", rep.Fails(), tt.fails)
			}
		})
	}
}

func TestReplayNamesTheCandidatesRule(t *testing.T) {
	trail := writeTrail(t, ciPolicy, false, ciCalls)
	rep, err := Trail(loadPolicy(t, ciPolicy+"p, user:alice, image, docker.io/library/busybox:*, deny\n"), []string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NewlyRefused) != 1 {
		t.Fatalf("newly refused %v, want alice's busybox", outcomes(rep.NewlyRefused))
	}
	c := rep.NewlyRefused[0]
	if c.Fact.Rule != "policy.csv:10: p, user:alice, image, docker.io/library/busybox:*, deny" || !strings.Contains(c.WasRule, "docker.io/library/**, allow") {
		t.Errorf("rule %q (was %q)", c.Fact.Rule, c.WasRule)
	}
	if c.Path != "/v1.41/containers/create" || c.Method != "POST" || c.File != trail || c.Line == 0 {
		t.Errorf("change does not say which request: %+v", c)
	}
	if got := rep.BySubject["alice"]; got == nil || got.NewlyRefused != 1 || got.Succeeded != 1 {
		t.Errorf("by subject: %+v", rep.BySubject)
	}
	if got := rep.ByRule[c.Fact.Rule]; got == nil || got.NewlyRefused != 1 {
		t.Errorf("by rule: %+v", rep.ByRule)
	}
}

// In audit mode everything was forwarded; what the candidate refuses of
// it is newly refused, whether the recording policy refused it too or not.
func TestReplayAuditModeTrail(t *testing.T) {
	strict := "p, *, endpoint, system.ping, allow\np, user:alice, endpoint, container.*, allow\n"
	trail := writeTrail(t, strict, true, []call{
		{Caller: alice, Method: "GET", Path: "/v1.41/containers/json"},
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create", Facts: []policy.Fact{image("docker.io/library/busybox:latest")}, Status: 201},
		{Caller: jenkins, Method: "POST", Path: "/v1.41/images/create?fromImage=busybox", Facts: []policy.Fact{image("docker.io/library/busybox:latest")}, Status: 500},
	})
	rep, err := Trail(loadPolicy(t, strict), []string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice container.create image docker.io/library/busybox:latest (succeeded)", "jenkins image.pull endpoint image.pull"}
	if got := outcomes(rep.NewlyRefused); !slices.Equal(got, want) {
		t.Errorf("newly refused:\n got %q\nwant %q", got, want)
	}
	if !rep.NewlyRefused[0].WouldDeny || !rep.Fails() {
		t.Errorf("would_deny %v, fails %v", rep.NewlyRefused[0].WouldDeny, rep.Fails())
	}
	rep, err = Trail(loadPolicy(t, strict+"p, *, endpoint, image.pull, allow\np, *, image, **, allow\n"), []string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NewlyRefused) != 0 || rep.Fails() {
		t.Errorf("a candidate allowing what audit mode recorded refuses %v", outcomes(rep.NewlyRefused))
	}
}

func TestReplayRotatedGzipTrail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := audit.Open(path, audit.Options{Rotate: audit.RotateOptions{MaxSize: 1500, Compress: true}})
	if err != nil {
		t.Fatal(err)
	}
	recordCalls(t, l, ciPolicy, false, ciCalls)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := filepath.Glob(path + ".*.gz")
	if len(rotated) < 2 {
		t.Fatalf("rotated gzip files: %v, want several", rotated)
	}
	slices.Sort(rotated)
	rep, err := Trail(loadPolicy(t, strings.Replace(ciPolicy, "p, user:alice, image, docker.io/library/**, allow\n", "", 1)), append(rotated, path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != len(ciCalls) || len(rep.NewlyRefused) != 1 || !strings.HasSuffix(rep.NewlyRefused[0].File, ".gz") && rep.NewlyRefused[0].File != path {
		t.Errorf("read %d requests across %d files, newly refused %v", rep.Requests, len(rotated)+1, outcomes(rep.NewlyRefused))
	}
}

func TestReplayBadLines(t *testing.T) {
	trail := writeTrail(t, ciPolicy, false, ciCalls[:3])
	good, err := os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(good, []byte("\n"))
	// A foreign line after the header, and a torn record at the end.
	var b bytes.Buffer
	b.Write(lines[0])
	b.WriteString("dockgate: starting\n")
	for _, l := range lines[1:] {
		b.Write(l)
	}
	b.WriteString(`{"type":"audit","time":"2026-12-01T10:00:09Z","request_id":"torn","caller":{"uid":10`)
	path := filepath.Join(t.TempDir(), "mixed.log")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	candidate := loadPolicy(t, ciPolicy)

	_, err = Trail(candidate, []string{path}, Options{})
	var bad audit.BadLine
	if !errors.As(err, &bad) || bad.Line != 2 || bad.File != path {
		t.Fatalf("without --skip-bad: %v, want the foreign line 2", err)
	}

	rep, err := Trail(candidate, []string{path}, Options{SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.BadLines) != 2 || rep.BadLines[0].Line != 2 || rep.BadLines[1].Line != len(lines)+1 {
		t.Errorf("bad lines %+v, want lines 2 and %d", rep.BadLines, len(lines)+1)
	}
	if rep.Requests != 3 {
		t.Errorf("replayed %d requests, want the 3 good ones", rep.Requests)
	}
}

// What the trail cannot tell is never counted as allowed: it is not
// replayable, and when it had succeeded the candidate fails.
func TestReplayNotReplayable(t *testing.T) {
	inContainer := &proxy.Caller{UID: 0, Container: "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"}
	rows := ciPolicy + "p, container:ci-agent, endpoint, container.list, allow\np, group:docker, endpoint, system.info, allow\n"
	trail := writeTrail(t, rows, false, []call{
		{Caller: inContainer, Method: "GET", Path: "/v1.41/containers/json", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"}},
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create", Record: func(r *audit.Record) {
			r.Decision, r.Status, r.Facts, r.Reason = audit.DecisionError, 400, r.Facts[:1], "malformed body"
		}},
		{Caller: alice, Method: "GET", Path: "/v1.41/nonsense"},
		{Caller: alice, Method: "GET", Path: "/v1.41/info", Status: 200},
		{Caller: alice, Method: "GET", Path: "/v1.41/containers/web/json"},
	})
	tests := []struct {
		name      string
		candidate string
		want      map[string]int
		fails     bool
	}{
		{"a container caller allowed on its own subjects", rows, map[string]int{WhyCreators: 1, WhyErrorDecision: 1, WhyUnknownRoute: 1}, true},
		{"a candidate naming a supplementary gid judges by the gids on record", rows + "p, gid:998, endpoint, system.info, deny\n", map[string]int{WhyCreators: 1, WhyErrorDecision: 1, WhyUnknownRoute: 1}, true},
		{"a candidate making a caller a tenant", rows + "p, user:alice, tenant, user, allow\n", map[string]int{WhyCreators: 1, WhyErrorDecision: 1, WhyUnknownRoute: 1, WhyTenancyChanged: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Trail(loadPolicy(t, tt.candidate), []string{trail}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rep.NotReplayable) != fmt.Sprint(tt.want) {
				t.Errorf("not replayable: got %v, want %v", rep.NotReplayable, tt.want)
			}
			if rep.Fails() != tt.fails {
				t.Errorf("Fails() = %v, want %v", rep.Fails(), tt.fails)
			}
		})
	}
}

// TestReplayOfRecordsWithoutGIDs: records of a dockgate that did not
// record the supplementary gids cannot be judged by a candidate that
// names one, and say so.
func TestReplayOfRecordsWithoutGIDs(t *testing.T) {
	rows := ciPolicy + "p, group:docker, endpoint, system.info, allow\n"
	old := func(r *audit.Record) {
		c := *r.Caller
		c.GIDs = nil
		r.Caller = &c
	}
	trail := writeTrail(t, rows, false, []call{
		{Caller: alice, Method: "GET", Path: "/v1.41/info", Status: 200, Record: old},
	})
	for _, tc := range []struct {
		candidate string
		want      map[string]int
	}{
		{rows + "p, gid:998, endpoint, system.info, deny\n", map[string]int{whySupplementaryGIDs: 1}},
		{rows + "p, gid:1000, endpoint, system.info, deny\n", map[string]int{}},
	} {
		rep, err := Trail(loadPolicy(t, tc.candidate), []string{trail}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rep.NotReplayable) != fmt.Sprint(tc.want) {
			t.Errorf("%q: not replayable %v, want %v", tc.candidate, rep.NotReplayable, tc.want)
		}
	}
}

// TestReplayJudgesBySupplementaryGIDs: a candidate that refuses one of
// the caller's supplementary groups by gid newly refuses its request.
func TestReplayJudgesBySupplementaryGIDs(t *testing.T) {
	rows := ciPolicy + "p, group:docker, endpoint, system.info, allow\n"
	trail := writeTrail(t, rows, false, []call{{Caller: alice, Method: "GET", Path: "/v1.41/info", Status: 200}})
	rep, err := Trail(loadPolicy(t, rows+"p, gid:998, endpoint, system.info, deny\n"), []string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NewlyRefused) != 1 || !rep.Fails() {
		t.Fatalf("newly refused %+v, want alice's /info", rep.NewlyRefused)
	}
}

func TestReplaySubjectSelects(t *testing.T) {
	trail := writeTrail(t, ciPolicy, false, ciCalls)
	rep, err := Trail(loadPolicy(t, ""), []string{trail}, Options{Subject: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 4 {
		t.Errorf("--subject user:alice replayed %d requests, want alice's 4", rep.Requests)
	}
	for _, c := range rep.NewlyRefused {
		if c.Caller != "alice" {
			t.Errorf("replayed %s's request", c.Caller)
		}
	}
}

// A caller in a container whose create is in the trail, and shows that
// dockgate recorded its creator on it (a tenant's container, a Docker
// socket bound), is judged with those creators: the candidate judges it
// fully. A plain create may or may not have recorded one (VolumesFrom
// does, unseen): not replayable.
func TestReplayContainerCallersCappedByCreators(t *testing.T) {
	const agentID = "a9e1c0ffee5eed0000000000000000000000000000000000000000000000beef"
	const jobID = "b0b0c0ffee5eed0000000000000000000000000000000000000000000000beef"
	const plainID = "c0c0c0ffee5eed0000000000000000000000000000000000000000000000beef"
	agent := &proxy.Caller{UID: 0, Container: agentID}
	job := &proxy.Caller{UID: 0, Container: jobID}
	plain := &proxy.Caller{UID: 0, Container: plainID}
	rows := ciPolicy + "p, user:alice, docker-socket, **, allow\np, container:ci-agent, endpoint, container.list, allow\np, container:web, endpoint, container.list, allow\np, user:alice, endpoint, system.info, allow\n" +
		"p, role:ci, tenant, user, allow\np, role:ci, owner, self, allow\n"
	created := func(id string) func(*audit.Record) { return func(r *audit.Record) { r.ObjectID = id } }
	jenkinsJudged := append(slices.Clone(jenkins.Subjects()), "*")
	trail := writeTrail(t, rows, false, []call{
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=ci-agent", Facts: []policy.Fact{image("docker.io/library/busybox:latest"), fact("docker-socket", "/var/run/docker.sock")}, Status: 201, Record: created(agentID)},
		{Caller: agent, Method: "GET", Path: "/v1.41/containers/json", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"}},
		{Caller: agent, Method: "GET", Path: "/v1.41/info", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"}},
		// The real fact reader labels a tenant's create with its owner;
		// the decider refuses one that is not (500): as the proxy
		// records it once labelled.
		{Caller: jenkins, Method: "POST", Path: "/v1.41/containers/create?name=job", Facts: []policy.Fact{image("registry.example.com/approved/app:1")}, Record: func(r *audit.Record) {
			r.ObjectID, r.Decision, r.Status = jobID, audit.DecisionAllow, 201
		}},
		{Caller: job, Method: "GET", Path: "/v1.41/version", Container: "job", Judged: jenkinsJudged, Record: func(r *audit.Record) { r.Caller.ActsFor = "user:jenkins" }},
		{Caller: alice, Method: "POST", Path: "/v1.41/containers/create?name=web", Facts: []policy.Fact{image("docker.io/library/busybox:latest")}, Status: 201, Record: created(plainID)},
		{Caller: plain, Method: "GET", Path: "/v1.41/containers/json", Container: "web", Judged: []string{"container:web", "*"}},
	})
	plainUnknown := map[string]int{WhyCreators: 1}
	tests := []struct {
		name          string
		candidate     string
		newlyRefused  []string
		newlyAllowed  []string
		rule          string
		notReplayable map[string]int
	}{
		{name: "the same policy changes nothing", candidate: rows, notReplayable: plainUnknown},
		{
			name:          "its creator losing the row refuses it",
			candidate:     strings.Replace(rows, "p, user:alice, endpoint, container.*, allow\n", "p, user:alice, endpoint, container.create, allow\n", 1),
			newlyRefused:  []string{"container:ci-agent container.list endpoint container.list (succeeded)"},
			rule:          "its creator uid:1000 may not (no rule allows it)",
			notReplayable: plainUnknown,
		},
		{
			name:          "a row for the container allows what its creator may do too",
			candidate:     rows + "p, container:ci-agent, endpoint, system.info, allow\n",
			newlyAllowed:  []string{"container:ci-agent system.info endpoint system.info"},
			notReplayable: plainUnknown,
		},
		{
			name:          "a tenant's container loses what its tenant loses",
			candidate:     strings.Replace(rows, "g, user:jenkins, role:ci\n", "g, user:jenkins, role:ci\np, user:jenkins, endpoint, system.version, deny\n", 1),
			newlyRefused:  []string{"container:job for user:jenkins system.version endpoint system.version (succeeded)"},
			rule:          "policy.csv:2: p, user:jenkins, endpoint, system.version, deny",
			notReplayable: plainUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Trail(loadPolicy(t, tt.candidate), []string{trail}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := outcomes(rep.NewlyRefused); !slices.Equal(got, tt.newlyRefused) {
				t.Errorf("newly refused:\n got %q\nwant %q", got, tt.newlyRefused)
			}
			if got := outcomes(rep.NewlyAllowed); !slices.Equal(got, tt.newlyAllowed) {
				t.Errorf("newly allowed:\n got %q\nwant %q", got, tt.newlyAllowed)
			}
			if tt.rule != "" && (len(rep.NewlyRefused) == 0 || rep.NewlyRefused[0].Fact.Rule != tt.rule) {
				t.Errorf("rule: %+v, want %q", rep.NewlyRefused, tt.rule)
			}
			if fmt.Sprint(rep.NotReplayable) != fmt.Sprint(tt.notReplayable) {
				t.Errorf("not replayable: %v, want %v", rep.NotReplayable, tt.notReplayable)
			}
		})
	}
}

// TestReplayCreatorsOnRecord: a record that carries the creators that
// capped a container's request is replayed with them, whether or not the
// trail holds the container's create.
func TestReplayCreatorsOnRecord(t *testing.T) {
	const agentID = "d0d0c0ffee5eed0000000000000000000000000000000000000000000000beef"
	agent := &proxy.Caller{UID: 0, Container: agentID}
	rows := ciPolicy + "p, container:ci-agent, endpoint, container.list, allow\n"
	creators := func(sets ...[]string) func(*audit.Record) {
		if sets == nil {
			sets = [][]string{} // on record, empty: nothing capped it
		}
		return func(r *audit.Record) { r.Caller.Creators = sets }
	}
	trail := writeTrail(t, rows, false, []call{
		{Caller: agent, Method: "GET", Path: "/v1.41/containers/json", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"},
			Record: creators([]string{"uid:1000", "user:alice", "gid:1000", "group:alice", "group:docker", "*"})},
		{Caller: agent, Method: "GET", Path: "/v1.41/containers/json", Container: "ci-agent", Judged: []string{"container:ci-agent", "*"},
			Record: creators()},
	})
	rep, err := Trail(loadPolicy(t, strings.Replace(rows, "p, user:alice, endpoint, container.*, allow\n", "", 1)), []string{trail}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NotReplayable) != 0 {
		t.Errorf("not replayable: %v", rep.NotReplayable)
	}
	if len(rep.NewlyRefused) != 1 || !strings.Contains(rep.NewlyRefused[0].Fact.Rule, "its creator uid:1000 may not") {
		t.Fatalf("newly refused %+v, want the request capped by alice only", rep.NewlyRefused)
	}
	if rep.Unchanged != 1 {
		t.Errorf("unchanged %d, want the request nothing capped", rep.Unchanged)
	}
}
