package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// The audit rows: verify and query over a trail of
// 1,000,000 records, read from a file as an auditor would (in the page
// cache: it was just written), and the cost of writing one record, which
// every request pays. They need no dockerd.

const auditRecords = 1_000_000

var auditCallers = []audit.Caller{
	{UID: 1000, GID: 1000, PID: 4242, User: "alice", Groups: []string{"alice", "docker"}, Exe: "/usr/bin/docker"},
	{UID: 1001, GID: 1001, PID: 5151, User: "jenkins", Groups: []string{"jenkins", "docker"}, Exe: "/usr/bin/docker", Unit: "jenkins.service"},
	{UID: 0, GID: 0, PID: 77, User: "root", Exe: "/usr/bin/containerd-shim", Unit: "compose.service"},
	{UID: 1002, GID: 1002, PID: 6161, User: "bob", Exe: "/usr/local/bin/docker-compose", Container: "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b"},
}

var auditActions = []string{"system.ping", "container.list", "container.create", "container.start", "container.logs", "exec.start", "image.pull", "container.inspect"}

// auditRecord is a realistic final record: a caller, facts with rules, a
// created object.
func auditRecord(i int, now time.Time) *audit.Record {
	c := &auditCallers[i%len(auditCallers)]
	action := auditActions[i%len(auditActions)]
	r := &audit.Record{
		Time: now.Add(time.Duration(i) * time.Millisecond), RequestID: "9f8e7d6c-" + strconv.Itoa(i),
		Caller: c, Method: "POST", Path: "/v1.43/containers/create?name=web-" + strconv.Itoa(i%100), APIVersion: "1.43",
		Action: action, Decision: audit.DecisionAllow, Status: 201,
		BytesIn: 1834, BytesOut: 88, DurationMS: 12.345,
		Facts: []audit.FactResult{
			{Kind: "endpoint", Value: action, Decision: "allow", Rule: "p, role:dev, endpoint, container.*, allow"},
			{Kind: "image", Value: "docker.io/library/nginx:1.27", Decision: "allow", Rule: "p, role:dev, image, docker.io/library/*, allow"},
		},
		ObjectID: "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f",
	}
	if i%10 == 4 { // alice (i%4 == 0) among them
		r.Decision, r.Status, r.ObjectID = audit.DecisionDeny, 403, ""
		r.Facts = append(r.Facts, audit.FactResult{Kind: "privileged", Value: "true", Decision: "deny"})
		r.Reason = "user:" + c.User + " may not privileged true: no rule allows it"
	}
	return r
}

func (b *bench) audit(context.Context) ([]row, error) {
	logf("audit: writing %d records", auditRecords)
	return auditRows(b.dir)
}

func auditRows(dir string) ([]row, error) {
	path := filepath.Join(dir, "audit.log")
	defer os.Remove(path)
	l, err := audit.Open(path)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for i := range auditRecords {
		l.Write(auditRecord(i, now))
	}
	if err := l.Close(); err != nil {
		return nil, err
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	seconds := func(name string, op func() error) row {
		t0 := time.Now()
		err := op()
		r := row{Name: name, Unit: "s", Dockgate: round(time.Since(t0).Seconds())}
		if err != nil {
			r.Error = err.Error()
		}
		return withTarget(r, "≤ 3 s", r.Dockgate <= 3)
	}

	logf("audit verify")
	verify := seconds("audit verify 1M records", func() error {
		res, err := audit.VerifyFiles([]string{path}, audit.VerifyOptions{})
		if err == nil && res.Records != auditRecords {
			err = fmt.Errorf("verified %d records, want %d", res.Records, auditRecords)
		}
		return err
	})
	logf("audit query")
	query := seconds("audit query 1M records (--user --decision)", func() error {
		n := 0
		err := audit.Query([]string{path}, audit.Filter{UID: audit.AnyUID, User: "alice", Decision: audit.DecisionDeny}, func(*audit.Entry, []byte) error {
			n++
			return nil
		})
		if err == nil && n == 0 {
			err = fmt.Errorf("the query found nothing")
		}
		return err
	})
	table := seconds("audit query 1M records (all, as a table)", func() error {
		return audit.Query([]string{path}, audit.Filter{UID: audit.AnyUID}, func(e *audit.Entry, _ []byte) error {
			audit.FormatRow(io.Discard, e)
			return nil
		})
	})

	// The per-request cost: one record written to a file, as serve does.
	logf("audit record write")
	wpath := filepath.Join(dir, "write.log")
	defer os.Remove(wpath)
	wl, err := audit.Open(wpath)
	if err != nil {
		return nil, err
	}
	rec := auditRecord(4, now)
	testing.Init()
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wl.Write(rec)
		}
	})
	wl.Close()
	// The same without the write(2): the encoding and the hash alone.
	ml := audit.NewLogger(io.Discard)
	mem := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			ml.Write(rec)
		}
	})
	ns := float64(res.NsPerOp())
	allocs := float64(res.AllocsPerOp())
	perRec := row{Name: "audit record write (to a file)", Unit: "ns", Dockgate: round(ns)}
	perAllocs := row{Name: "audit record write allocations", Unit: "allocs", Dockgate: allocs}
	if err := wl.Err(); err != nil {
		perRec.Error = err.Error()
	}
	replayed := replayRow(dir)
	return []row{verify, query, table, replayed,
		withTarget(perRec, "≤ 5000 ns", ns <= 5000),
		{Name: "audit record encode+hash (no write)", Unit: "ns", Dockgate: round(float64(mem.NsPerOp()))},
		withTarget(perAllocs, "≤ 2", allocs <= 2)}, nil
}

// runAuditOnly measures the audit rows alone and puts them in place of the
// audit rows of an existing results file, leaving its other rows (and the
// run they came from) as they are.
func runAuditOnly(cfg config) error {
	dir, err := os.MkdirTemp(cfg.tmp, "dockgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rows, err := auditRows(dir)
	if err != nil {
		return err
	}
	res := results{Time: time.Now().UTC(), Revision: cfg.revision, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Kernel: kernel()}
	if cfg.out != "" {
		if b, err := os.ReadFile(cfg.out); err == nil {
			if err := json.Unmarshal(b, &res); err != nil {
				return fmt.Errorf("%s: %w", cfg.out, err)
			}
		}
	}
	res.Rows = slices.DeleteFunc(res.Rows, func(r row) bool { return strings.HasPrefix(r.Name, "audit ") })
	res.Rows = append(res.Rows, rows...)
	printTable(os.Stdout, results{GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Kernel: kernel(), Rows: rows})
	if cfg.out == "" {
		return nil
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.out, append(out, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", cfg.out)
	return nil
}
