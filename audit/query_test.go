package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var genBase = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// genRecord makes the i-th record of a varied, realistic trail: 20 users,
// a mix of actions, images, refusals and privileged attempts.
func genRecord(i int) *Record {
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
		"mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "jenkins"}
	u := i % len(users)
	r := &Record{
		Time:       genBase.Add(time.Duration(i) * time.Millisecond),
		RequestID:  fmt.Sprintf("c%04x-%d", i/7, i),
		Caller:     &Caller{UID: uint32(1000 + u), GID: 1000, PID: int32(4000 + i%5000), User: users[u], Groups: []string{users[u], "docker"}, Exe: "/usr/bin/docker", Unit: "session-3.scope"},
		APIVersion: "1.47",
		Decision:   DecisionAllow,
		Status:     200,
		BytesIn:    int64(i % 900),
		BytesOut:   int64(i % 4000),
		DurationMS: float64(i%1000) / 100,
	}
	if u == 19 {
		r.Caller.Unit = "jenkins.service"
	}
	switch i % 10 {
	case 0, 1:
		img := []string{"docker.io/library/nginx:latest", "docker.io/library/busybox:1.36", "ghcr.io/acme/api:v2"}[i%3]
		r.Method, r.Path, r.Action = "POST", "/v1.47/containers/create?name=w"+fmt.Sprint(i), "container.create"
		r.Facts = []FactResult{{Kind: "endpoint", Value: "container.create", Decision: "allow", Rule: "p, role:dev, endpoint, container.*, allow"},
			{Kind: "image", Value: img, Decision: "allow", Rule: "p, role:dev, image, docker.io/*, allow"}}
		r.Status, r.ObjectID = 201, genID(i)
		if i%100 == 0 {
			r.Facts = append(r.Facts, FactResult{Kind: "privileged", Value: "container", Decision: "deny"})
			r.Decision, r.Status, r.Reason, r.ObjectID = DecisionDeny, 403, "user:"+users[u]+" may not run privileged containers: no rule allows it", ""
		}
	case 2:
		r.Method, r.Path, r.Action = "POST", "/v1.47/containers/"+genID(i-2)+"/start", "container.start"
		r.Status = 204
	case 3:
		r.Method, r.Path, r.Action = "POST", "/v1.47/containers/"+genID(i-3)+"/attach?stream=1&stdout=1", "container.attach"
		r.Hijacked, r.Status = true, 101
		if i%20 == 3 {
			r.Phase = PhaseStart
		}
	case 4:
		r.Method, r.Path, r.Action = "POST", "/v1.47/containers/create", "container.create"
		r.Facts = []FactResult{{Kind: "bind", Value: "/etc", Decision: "deny"}}
		r.Decision, r.Status, r.Reason = DecisionDeny, 403, "user:"+users[u]+" may not bind /etc: no rule allows it"
	default:
		r.Method, r.Path, r.Action = "GET", "/v1.47/containers/json", "container.list"
	}
	return r
}

// genID is the 64-hex-digit ID of the object record i created.
func genID(i int) string {
	return strings.Repeat(fmt.Sprintf("%08x", uint32(i+1)*2654435761), 8)
}

// genTrail writes n generated records to a file in dir through the Logger.
func genTrail(tb testing.TB, dir string, n int) string {
	tb.Helper()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		l.Write(genRecord(i))
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

func queryAll(t *testing.T, f Filter, paths ...string) []*Entry {
	t.Helper()
	var got []*Entry
	if err := Query(paths, f, func(e *Entry, line []byte) error {
		c := *e
		got = append(got, &c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestQueryFilters(t *testing.T) {
	dir := t.TempDir()
	path := genTrail(t, dir, 1000)
	gz := filepath.Join(dir, "audit.log.1.gz")
	gzipFileTo(t, path, gz)
	any := Filter{UID: AnyUID}
	all := queryAll(t, any, path)
	// 1000 records less the 50 phase:start ones (i%20 == 3).
	if len(all) != 950 {
		t.Fatalf("%d records", len(all))
	}
	withStarts := any
	withStarts.Starts = true
	if n := len(queryAll(t, withStarts, path)); n != 1000 {
		t.Fatalf("with starts: %d", n)
	}
	if n := len(queryAll(t, any, gz, path)); n != 1900 {
		t.Fatalf("gz + plain: %d", n)
	}
	count := func(f Filter, want func(i int, r *Record) bool) {
		t.Helper()
		got := queryAll(t, f, path)
		var wantN int
		for i := range 1000 {
			r := genRecord(i)
			if r.Phase != PhaseStart && want(i, r) {
				wantN++
			}
		}
		if len(got) != wantN || wantN == 0 {
			t.Errorf("%+v: %d records, want %d", f, len(got), wantN)
		}
		for _, e := range got {
			if r := genRecord(int(e.Seq) - 1); !want(int(e.Seq)-1, r) || r.RequestID != e.RequestID {
				t.Errorf("%+v selected %s", f, e.RequestID)
			}
		}
	}
	f := func(mod func(*Filter)) Filter { x := any; mod(&x); return x }
	count(f(func(x *Filter) { x.User = "bob" }), func(i int, r *Record) bool { return r.Caller.User == "bob" })
	count(f(func(x *Filter) { x.UID = 1019 }), func(i int, r *Record) bool { return r.Caller.UID == 1019 })
	count(f(func(x *Filter) { x.Unit = "jenkins.service" }), func(i int, r *Record) bool { return r.Caller.Unit == "jenkins.service" })
	count(f(func(x *Filter) { x.Action = "container.c*" }), func(i int, r *Record) bool { return r.Action == "container.create" })
	count(f(func(x *Filter) { x.Decision = DecisionDeny }), func(i int, r *Record) bool { return r.Decision == DecisionDeny })
	count(f(func(x *Filter) { x.Image = "docker.io/*" }), func(i int, r *Record) bool {
		return r.Action == "container.create" && len(r.Facts) > 1 && strings.HasPrefix(r.Facts[1].Value, "docker.io/")
	})
	count(f(func(x *Filter) {
		x.Since, x.Until = genBase.Add(100*time.Millisecond), genBase.Add(200*time.Millisecond)
	}),
		func(i int, r *Record) bool { return i >= 100 && i < 200 })
	count(f(func(x *Filter) { x.User, x.Decision = "alice", DecisionDeny }), func(i int, r *Record) bool {
		return r.Caller.User == "alice" && r.Decision == DecisionDeny
	})
	// --object traces a created container to its creator and what was
	// done with it later (the start and attach two and three records on).
	id := genID(10)
	count(f(func(x *Filter) { x.Object = id[:12] }), func(i int, r *Record) bool { return i == 10 || i == 12 || i == 13 })
	if n := len(queryAll(t, f(func(x *Filter) { x.Container = "nope" }), path)); n != 0 {
		t.Errorf("container filter: %d", n)
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"container.*", "container.create", true}, {"container.*", "exec.start", false},
		{"docker.io/*", "docker.io/library/nginx:latest", true}, {"*nginx*", "docker.io/library/nginx:latest", true},
		{"?xec.*", "exec.start", true}, {"exec", "exec.start", false}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
	} {
		if got := Glob(c.p, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestFormatRowAndSummary(t *testing.T) {
	var b bytes.Buffer
	e := &Entry{Record: *fullRecord()}
	e.Phase = ""
	e.Reason = "evil\n\x1b[31mred"
	FormatRow(&b, e)
	if strings.Count(b.String(), "\n") != 1 || strings.Contains(b.String(), "\x1b") || !strings.Contains(b.String(), "bind=/etc") ||
		!strings.Contains(b.String(), "jenkins@4f1c9a2e8b7d") || !strings.Contains(b.String(), "deny*") {
		t.Errorf("row %q", b.String())
	}

	path := genTrail(t, t.TempDir(), 1000)
	s, err := Summarize([]string{path}, Filter{UID: AnyUID})
	if err != nil {
		t.Fatal(err)
	}
	// dave (i%20 == 3) has only phase:start records, which do not count.
	if len(s.Callers) != 19 {
		t.Fatalf("%d callers", len(s.Callers))
	}
	alice := s.byName["alice"]
	// alice is i%20 == 0: i%10 is 0, so container.create, privileged when i%100 == 0.
	if alice.Requests != 50 || alice.Refused != 10 || alice.Privileged["container.create"].Refused != 10 ||
		alice.Refusals["no rule allows privileged"] != 10 {
		t.Fatalf("alice %+v %+v", alice, alice.Privileged)
	}
	var out bytes.Buffer
	s.Write(&out, 3)
	for _, want := range []string{"alice: 50 requests, 10 refused", "no rule allows privileged", "images run", "privileged attempts:", "busiest actions:", "jenkins: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// The auditor's benchmarks: verify and query over 1,000,000 records,
// read from a file (in the page cache) as an auditor would.
const benchRecords = 1_000_000

func benchTrail(b *testing.B) (string, int64) {
	path := genTrail(b, b.TempDir(), benchRecords)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, fi.Size()
}

func BenchmarkVerify1M(b *testing.B) {
	path, size := benchTrail(b)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		res, err := VerifyFiles([]string{path}, VerifyOptions{})
		if err != nil || res.Records != benchRecords {
			b.Fatal(res, err)
		}
	}
}

func BenchmarkQuery1M(b *testing.B) {
	path, size := benchTrail(b)
	for _, c := range []struct {
		name string
		f    Filter
	}{
		{"user+decision", Filter{UID: AnyUID, User: "alice", Decision: DecisionDeny}},
		{"action-glob", Filter{UID: AnyUID, Action: "container.cr*"}},
		{"all", Filter{UID: AnyUID}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				var n int
				var out bytes.Buffer
				err := Query([]string{path}, c.f, func(e *Entry, line []byte) error {
					n++
					out.Reset()
					FormatRow(&out, e)
					return nil
				})
				if err != nil || n == 0 {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// An image that exists only on this host is a "local-image" fact: --image
// finds it and summary counts it among the images run.
func TestLocalImageFactsAreImages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range []FactResult{
		{Kind: "local-image", Value: "ci.local/app:latest", Decision: "allow"},
		{Kind: "image", Value: "docker.io/library/nginx:latest", Decision: "allow"},
	} {
		l.Write(&Record{Time: genBase, RequestID: fmt.Sprint(i), Caller: &Caller{UID: 1000, User: "alice"}, Method: "POST",
			Path: "/containers/create", Action: "container.create", Facts: []FactResult{f}, Decision: DecisionAllow, Status: 201})
	}
	l.Close()
	var got []string
	if err := Query([]string{path}, Filter{UID: AnyUID, Image: "ci.local/*"}, func(e *Entry, _ []byte) error {
		got = append(got, e.RequestID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "0" {
		t.Fatalf("--image ci.local/*: %v", got)
	}
	// A name given to an image (tag, build -t) is found by --image too.
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(&Record{Time: genBase, RequestID: "tag", Caller: &Caller{UID: 1000, User: "alice"}, Method: "POST",
		Path: "/images/x/tag", Action: "image.tag", Facts: []FactResult{{Kind: "image-target", Value: "ci.local/app:2", Decision: "allow"}}, Decision: DecisionAllow, Status: 201})
	l.Close()
	got = nil
	if err := Query([]string{path}, Filter{UID: AnyUID, Image: "ci.local/app:2"}, func(e *Entry, _ []byte) error {
		got = append(got, e.RequestID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "tag" {
		t.Fatalf("--image ci.local/app:2 (an image-target): %v", got)
	}
	s, err := Summarize([]string{path}, Filter{UID: AnyUID})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	s.Write(&b, 0)
	if !strings.Contains(b.String(), "ci.local/app:latest") || !strings.Contains(b.String(), "nginx") {
		t.Fatalf("summary:\n%s", b.String())
	}
}
