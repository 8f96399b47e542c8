package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/policygen"
)

// Issue 19's targets for the decision point, measured in this process:
// no dockerd is involved, only the policy.
const (
	decisionRows   = 1_000
	decisionMaxUS  = 20.0
	loadRows       = 10_000
	loadMaxMS      = 200.0
	loadFileRows   = 1_000 // the 10,000 rows come in files of this many, as a site splits them
	loadRepeats    = 5
	decisionCaller = "user:dev42"
)

// decision times a container create decision against a generated
// 1,000-row policy (as authz's BenchmarkDecideContainerCreate/index does:
// the facts are given, the extractor is not timed) and the load of a
// 10,000-row policy directory, as dockgate loads it at start and reload.
func (b *bench) decision(context.Context) ([]row, error) {
	logf("decision with a %s-row policy, load of %s rows", thousands(decisionRows), thousands(loadRows))
	return decisionRowsIn(filepath.Join(b.dir, "decision"))
}

func decisionRowsIn(dir string) ([]row, error) {
	dec := row{Name: fmt.Sprintf("container create decision, %s-row policy", thousands(decisionRows)), Unit: "µs"}
	allocs := row{Name: dec.Name + ": allocations", Unit: "allocs"}
	if us, n, err := timeDecision(filepath.Join(dir, "decide")); err != nil {
		dec.Error, allocs.Error = err.Error(), err.Error()
	} else {
		dec.Dockgate, allocs.Dockgate = round(us), float64(n)
	}
	load := row{Name: fmt.Sprintf("policy load, %s rows", thousands(loadRows)), Unit: "ms"}
	if ms, err := timeLoad(filepath.Join(dir, "load")); err != nil {
		load.Error = err.Error()
	} else {
		load.Dockgate = round(ms)
	}
	return []row{atMost(dec, decisionMaxUS), allocs, atMost(load, loadMaxMS)}, nil
}

// timeDecision returns the µs and allocations of one decision.
func timeDecision(dir string) (us float64, allocs int64, err error) {
	if err := writePolicyFiles(dir, benchPolicyLines(decisionRows), decisionRows); err != nil {
		return 0, 0, err
	}
	p, err := policy.LoadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	if len(p.Rules) != decisionRows {
		return 0, 0, fmt.Errorf("the generated policy has %d rules, want %d", len(p.Rules), decisionRows)
	}
	u, err := url.ParseRequestURI("/v1.41/containers/create")
	if err != nil {
		return 0, 0, err
	}
	m, err := authz.NewRouter().Route(http.MethodPost, u)
	if err != nil {
		return 0, 0, err
	}
	if m.Action != "container.create" {
		return 0, 0, fmt.Errorf("POST %s routes to %s", u, m.Action)
	}
	facts := []policy.Fact{
		{Kind: "image", Value: "registry.example.com/team42/app:1.2.3"},
		{Kind: "bind", Value: "/srv/team42/cache/job/17"},
		{Kind: "bind", Value: "/srv/team42/work"},
		{Kind: "capability", Value: "NET_BIND_SERVICE"},
		{Kind: "namespace", Value: "network=container"},
		{Kind: "sysctl", Value: "net.ipv4.ip_local_port_range=1024 65000"},
		{Kind: "port", Value: "8042"},
		{Kind: "log-driver", Value: "syslog"},
	}
	req := &authz.Request{Method: http.MethodPost, URL: u, Header: http.Header{}, Caller: decisionCaller,
		Subjects: []string{decisionCaller, "uid:1042", "gid:1042", "group:team42", "group:docker", "*"}}
	d := authz.NewPolicyDecider(p)
	d.Extract = func(context.Context, *authz.Match, *authz.Request, authz.Inspector) ([]policy.Fact, error) {
		return facts, nil
	}
	// The namespace fact has no allow row: refused, after every fact was
	// decided. Anything else means the decision timed is not this one.
	got := d.Decide(context.Background(), m, req)
	if got.Allow || len(got.Facts) != len(facts)+1 || !strings.Contains(got.Reason, "namespace network=container") {
		return 0, 0, fmt.Errorf("unexpected decision: allow %v, %d facts, %q", got.Allow, len(got.Facts), got.Reason)
	}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d.Decide(context.Background(), m, req)
		}
	})
	if res.N == 0 {
		return 0, 0, errors.New("the decision benchmark did not run")
	}
	return float64(res.NsPerOp()) / 1e3, res.AllocsPerOp(), nil
}

// timeLoad returns the median ms of loading a loadRows-row policy
// directory.
func timeLoad(dir string) (float64, error) {
	if err := writePolicyFiles(dir, benchPolicyLines(loadRows), loadFileRows); err != nil {
		return 0, err
	}
	var ms []float64
	for range loadRepeats {
		start := time.Now()
		p, err := policy.LoadDir(dir)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if len(p.Rules) != loadRows {
			return 0, fmt.Errorf("the generated policy has %d rules, want %d", len(p.Rules), loadRows)
		}
		ms = append(ms, float64(took)/1e6)
	}
	return median(ms), nil
}

// benchPolicyLines is the policy authz's benchmarks time
// (policygen.Site), line by line, so that the bench times the same one.
func benchPolicyLines(n int) []string {
	return strings.Split(strings.TrimSuffix(policygen.Site(n), "\n"), "\n")
}

// writePolicyFiles writes lines into dir as files of at most perFile p
// rows each (site-000.csv, site-001.csv, ...), in order.
func writePolicyFiles(dir string, lines []string, perFile int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var files [][]string
	rows := perFile
	for _, l := range lines {
		if strings.HasPrefix(l, "p,") {
			if rows == perFile {
				files, rows = append(files, nil), 0
			}
			rows++
		}
		if len(files) == 0 {
			files = append(files, nil)
		}
		files[len(files)-1] = append(files[len(files)-1], l)
	}
	for i, f := range files {
		name := filepath.Join(dir, fmt.Sprintf("site-%03d.csv", i))
		if err := os.WriteFile(name, []byte(strings.Join(f, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// thousands writes n (not negative) with a comma between thousands, as
// the issue does.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
