package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/replay"
)

// The policy replay row: `dockgate policy replay` of a trail of 500,000
// records from a week of a CI host (several callers creating, pulling,
// exec'ing and inspecting, a tenth refused) under a stricter candidate.
// It needs no dockerd.

const replayRecords = 500_000

// replayRecording is the policy the trail was recorded under; the
// candidate drops one image row and adds a deny.
const replayRecording = `g, user:jenkins, role:ci
g, group:ci-runners, role:ci
g, unit:gitlab-runner.service, role:ci
p, role:ci, endpoint, *, allow
p, role:ci, endpoint, plugin.*, deny
p, role:ci, image, registry.example.com/approved/**, allow
p, role:ci, image, docker.io/library/**, allow
p, role:ci, bind, /srv/ci-cache/**, allow
p, user:alice, endpoint, container.*, allow
p, user:alice, endpoint, exec.*, allow
p, user:alice, endpoint, image.pull, allow
p, user:alice, image, docker.io/library/**, allow
p, uid:0, *, **, allow
`

const replayCandidate = `g, user:jenkins, role:ci
g, group:ci-runners, role:ci
g, unit:gitlab-runner.service, role:ci
p, role:ci, endpoint, *, allow
p, role:ci, endpoint, plugin.*, deny
p, role:ci, image, registry.example.com/approved/**, allow
p, role:ci, bind, /srv/ci-cache/**, allow
p, role:ci, bind, /srv/ci-cache/secrets/**, deny
p, user:alice, endpoint, container.*, allow
p, user:alice, endpoint, exec.*, allow
p, user:alice, endpoint, image.pull, allow
p, user:alice, image, docker.io/library/**, allow
p, uid:0, *, **, allow
`

var replayCallers = []audit.Caller{
	{UID: 1001, GID: 1001, PID: 5151, User: "jenkins", Groups: []string{"jenkins", "docker"}, Exe: "/usr/bin/docker", Unit: "jenkins.service"},
	{UID: 1000, GID: 1000, PID: 4242, User: "alice", Groups: []string{"alice", "docker"}, Exe: "/usr/bin/docker"},
	{UID: 998, GID: 997, PID: 6161, User: "gitlab-runner", Groups: []string{"gitlab-runner", "ci-runners"}, Exe: "/usr/bin/gitlab-runner", Unit: "gitlab-runner.service"},
	{UID: 0, GID: 0, PID: 77, User: "root", Exe: "/usr/bin/docker"},
	{UID: 1003, GID: 1003, PID: 7171, User: "carol", Groups: []string{"carol", "ci-runners"}, Exe: "/usr/bin/docker"},
}

var replayImages = []string{
	"registry.example.com/approved/app:1", "registry.example.com/approved/app:2", "registry.example.com/approved/builder:3",
	"docker.io/library/busybox:latest", "docker.io/library/golang:1.26", "docker.io/library/alpine:3.21",
}

// replayTrailRecord is request i of the trail as the proxy records it
// under replayRecording.
func replayTrailRecord(i int, now time.Time) *audit.Record {
	p := replayPolicy
	c := &replayCallers[i%len(replayCallers)]
	subjects := []string{"uid:" + strconv.FormatUint(uint64(c.UID), 10), "user:" + c.User, "gid:" + strconv.FormatUint(uint64(c.GID), 10)}
	for _, g := range c.Groups {
		subjects = append(subjects, "group:"+g)
	}
	if c.Unit != "" {
		subjects = append(subjects, "unit:"+c.Unit)
	}
	subjects = append(subjects, "*")
	img := replayImages[(i/7)%len(replayImages)]
	var method, path, action string
	var facts []policy.Fact
	status := 200
	switch i % 8 {
	case 0, 1:
		method, path, action, status = "POST", "/v1.47/containers/create?name=job-"+strconv.Itoa(i), "container.create", 201
		facts = []policy.Fact{{Kind: "image", Value: img}}
		if i%24 == 0 {
			facts = append(facts, policy.Fact{Kind: "bind", Value: "/srv/ci-cache/job-" + strconv.Itoa(i%50)})
		}
		if i%40 == 8 {
			facts = append(facts, policy.Fact{Kind: "privileged", Value: "container"})
		}
	case 2:
		method, path, action = "POST", "/v1.47/images/create?fromImage="+img, "image.pull"
		facts = []policy.Fact{{Kind: "image", Value: img}}
	case 3:
		method, path, action, status = "POST", "/v1.47/containers/job-"+strconv.Itoa(i-3)+"/exec", "container.exec", 201
	case 4:
		method, path, action, status = "POST", "/v1.47/exec/"+strconv.Itoa(i)+"/start", "exec.start", 101
	case 5, 6:
		method, path, action = "GET", "/v1.47/containers/job-"+strconv.Itoa(i-5)+"/json", "container.inspect"
	default:
		method, path, action, status = "POST", "/v1.47/containers/job-"+strconv.Itoa(i-7)+"/start", "container.start", 204
	}
	rules := p.RulesFor(subjects)
	r := &audit.Record{Time: now.Add(time.Duration(i) * time.Millisecond), RequestID: "5a1e-" + strconv.Itoa(i),
		Caller: c, Method: method, Path: path, APIVersion: "1.47", Action: action, Decision: audit.DecisionAllow, Status: status,
		BytesIn: 1834, BytesOut: 88, DurationMS: 3.2}
	refused := false
	for _, f := range append([]policy.Fact{{Kind: "endpoint", Value: action}}, facts...) {
		res, ok := rules.Result(f)
		r.Facts = append(r.Facts, audit.FactResult(res))
		if !ok {
			refused = true
			if f.Kind == "endpoint" {
				break // enforce mode reads no further
			}
		}
	}
	if refused {
		r.Decision, r.Status = audit.DecisionDeny, 403
	}
	return r
}

var replayPolicy *policy.Policy

func loadBenchPolicy(dir, name, rows string) (*policy.Policy, error) {
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d, "policy.csv"), []byte(rows), 0o644); err != nil {
		return nil, err
	}
	return policy.LoadDir(d)
}

// replayRow writes the trail and measures the replay in records per
// second.
func replayRow(dir string) row {
	r := row{Name: "audit policy replay 500k records", Unit: "records/s"}
	fail := func(err error) row {
		r.Error = err.Error()
		return withTarget(r, "≥ 200000", false)
	}
	var err error
	if replayPolicy, err = loadBenchPolicy(dir, "recording", replayRecording); err != nil {
		return fail(err)
	}
	candidate, err := loadBenchPolicy(dir, "candidate", replayCandidate)
	if err != nil {
		return fail(err)
	}
	path := filepath.Join(dir, "replay.log")
	defer os.Remove(path)
	l, err := audit.Open(path)
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	for i := range replayRecords {
		l.Write(replayTrailRecord(i, now))
	}
	if err := l.Close(); err != nil {
		return fail(err)
	}
	logf("policy replay")
	t0 := time.Now()
	rep, err := replay.Trail(candidate, []string{path}, replay.Options{})
	secs := time.Since(t0).Seconds()
	if err != nil {
		return fail(err)
	}
	if rep.Requests != replayRecords || len(rep.NewlyRefused) == 0 {
		return fail(fmt.Errorf("replayed %d requests, %d newly refused: want %d and some", rep.Requests, len(rep.NewlyRefused), replayRecords))
	}
	r.Dockgate = round(float64(replayRecords) / secs)
	return withTarget(r, "≥ 200000", r.Dockgate >= 200000)
}
