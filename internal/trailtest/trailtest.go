// Package trailtest writes audit trails for tests as serve writes them:
// each request is judged by the real decider under the recording policy
// (its facts given, as the route's fact reader would read them), for the
// subjects the proxy gives its caller, and recorded through the real audit
// logger with the decision, facts and status the proxy records. For
// tests only (replay, suggest).
package trailtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/proxy"
)

// Call is one request of a test trail.
type Call struct {
	Caller *proxy.Caller
	Method string
	Path   string
	Facts  []policy.Fact // beyond the endpoint fact
	Status int           // dockerd's answer when forwarded; 0: 200
	// container and judged, for a caller in a container, are the name
	// and subjects dockerd's answer gave it (authz.JudgeContainer).
	Container string
	Judged    []string
	// record, when set, changes the record before it is written (a
	// container caller's judged subjects, an error).
	Record func(*audit.Record)
}

// Image and Fact are facts a call carries beyond its endpoint fact.
func Image(v string) policy.Fact   { return policy.Fact{Kind: "image", Value: v} }
func Fact(k, v string) policy.Fact { return policy.Fact{Kind: k, Value: v} }

// WritePolicy writes a policy directory with one CSV file.
func WritePolicy(t *testing.T, rows string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.csv"), []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// LoadPolicy loads a policy of rows.
func LoadPolicy(t *testing.T, rows string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadDir(WritePolicy(t, rows))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RecordCalls judges each call under the recording policy rows (in audit
// mode when auditMode) and writes its record with l.
func RecordCalls(t *testing.T, l *audit.Logger, rows string, auditMode bool, calls []Call) {
	t.Helper()
	p := LoadPolicy(t, rows)
	router := authz.NewRouter()
	for i, c := range calls {
		d := authz.NewPolicyDecider(p)
		d.Put(p, auditMode)
		facts := c.Facts
		d.Extract = func(context.Context, *authz.Match, *authz.Request, authz.Inspector) ([]policy.Fact, error) {
			return facts, nil
		}
		u, err := url.ParseRequestURI(c.Path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := router.Route(c.Method, u)
		if err != nil {
			t.Fatalf("%s %s: %v", c.Method, c.Path, err)
		}
		req := &authz.Request{Method: c.Method, URL: u, Header: http.Header{}, Caller: c.Caller.String(), Subjects: c.Caller.Subjects()}
		if c.Judged != nil {
			req.Subjects = c.Judged
		}
		dec := authz.Judge(context.Background(), d, m, req)
		rec := &audit.Record{Time: time.Date(2026, 12, 1, 10, 0, i, 0, time.UTC), RequestID: fmt.Sprintf("r-%d", i),
			Caller: c.Caller.AuditCaller(), Method: c.Method, Path: c.Path, Action: m.Action, WouldDeny: dec.WouldDeny, Reason: dec.Reason}
		for _, f := range dec.Facts {
			rec.Facts = append(rec.Facts, audit.FactResult(f))
		}
		switch {
		case dec.Allow:
			rec.Decision, rec.Status = audit.DecisionAllow, c.Status
			if rec.Status == 0 {
				rec.Status = http.StatusOK
			}
		case dec.Status == http.StatusForbidden:
			rec.Decision, rec.Status = audit.DecisionDeny, dec.Status
		default:
			rec.Decision, rec.Status = audit.DecisionError, dec.Status
		}
		if c.Judged != nil {
			rec.Caller.ContainerName, rec.Caller.Subjects = c.Container, c.Judged
		}
		if c.Record != nil {
			c.Record(rec)
		}
		l.Write(rec)
	}
}

// WriteTrail writes the calls' records to a new trail file.
func WriteTrail(t *testing.T, rows string, auditMode bool, calls []Call) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	RecordCalls(t, l, rows, auditMode, calls)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
