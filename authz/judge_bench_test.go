package authz

import (
	"context"
	"net/http"
	"testing"

	"github.com/dockgate/dockgate/authz/policy"
)

// rootCallerSubjects are the subjects the proxy gives root on a Debian host
// (proxy.Caller.Subjects).
var rootCallerSubjects = []string{"uid:0", "user:root", "gid:0", "group:root", "*"}

// benchJudge judges one routed request over and over with the embedded
// default policy and the default extractor, as serve does: the work every
// cheap call pays between routing and forwarding.
func benchJudge(b *testing.B, method, target, action string, subjects ...string) {
	p, err := policy.Default()
	if err != nil {
		b.Fatal(err)
	}
	d := NewPolicyDecider(p)
	d.Extract = DefaultExtractor()
	u := parseTarget(b, target)
	m, err := NewRouter().Route(method, u)
	if err != nil || m.Action != action {
		b.Fatalf("Route(%s %s) = %v, %v; want %s", method, target, m, err, action)
	}
	req := &Request{Method: method, URL: u, Header: http.Header{}, Caller: subjects[0], Subjects: subjects}
	ctx := context.Background()
	if dec := Judge(ctx, d, m, req); !dec.Allow || len(dec.Facts) == 0 {
		b.Fatalf("Judge(%s %s) = %+v; want it allowed", method, target, dec)
	}
	b.ReportAllocs()
	for b.Loop() {
		Judge(ctx, d, m, req)
	}
}

func BenchmarkJudgePing(b *testing.B) {
	benchJudge(b, "GET", "/_ping", "system.ping", rootCallerSubjects...)
}

func BenchmarkJudgeContainerList(b *testing.B) {
	b.Run("root", func(b *testing.B) {
		benchJudge(b, "GET", "/v1.41/containers/json?all=1", "container.list", rootCallerSubjects...)
	})
	b.Run("user", func(b *testing.B) {
		benchJudge(b, "GET", "/v1.41/containers/json?all=1", "container.list", "uid:1000", "user:dev", "gid:1000", "group:dev", "group:docker", "*")
	})
}

func BenchmarkJudgeContainerInspect(b *testing.B) {
	benchJudge(b, "GET", "/v1.41/containers/4c01db0b339c0f2b1d5b9d8a1c3f1e2a6b7c8d9e0f1a2b3c4d5e6f708192a3b4/json", "container.inspect", rootCallerSubjects...)
}
