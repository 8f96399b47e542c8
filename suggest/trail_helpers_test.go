package suggest

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

// The trails of these tests are written as serve writes them: each
// request is judged by the real decider under the recording policy (its
// facts given, as the route's fact reader would read them), for the
// subjects the proxy gives its caller, and recorded through the real audit
// logger with the decision, facts and status the proxy records.

// call is one request of a test trail.
type call struct {
	caller *proxy.Caller
	method string
	path   string
	facts  []policy.Fact // beyond the endpoint fact
	status int           // dockerd's answer when forwarded; 0: 200
	// container and judged, for a caller in a container, are the name
	// and subjects dockerd's answer gave it (authz.JudgeContainer).
	container string
	judged    []string
	// record, when set, changes the record before it is written (a
	// container caller's judged subjects, an error).
	record func(*audit.Record)
}

func image(v string) policy.Fact   { return policy.Fact{Kind: "image", Value: v} }
func fact(k, v string) policy.Fact { return policy.Fact{Kind: k, Value: v} }

// writePolicy writes a policy directory with one CSV file.
func writePolicy(t *testing.T, rows string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.csv"), []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadPolicy(t *testing.T, rows string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadDir(writePolicy(t, rows))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// recordCalls judges each call under the recording policy rows (in audit
// mode when auditMode) and writes its record with l.
func recordCalls(t *testing.T, l *audit.Logger, rows string, auditMode bool, calls []call) {
	t.Helper()
	p := loadPolicy(t, rows)
	router := authz.NewRouter()
	for i, c := range calls {
		d := authz.NewPolicyDecider(p)
		d.Put(p, auditMode)
		facts := c.facts
		d.Extract = func(context.Context, *authz.Match, *authz.Request, authz.Inspector) ([]policy.Fact, error) {
			return facts, nil
		}
		u, err := url.ParseRequestURI(c.path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := router.Route(c.method, u)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		req := &authz.Request{Method: c.method, URL: u, Header: http.Header{}, Caller: c.caller.String(), Subjects: c.caller.Subjects()}
		if c.judged != nil {
			req.Subjects = c.judged
		}
		dec := authz.Judge(context.Background(), d, m, req)
		rec := &audit.Record{Time: time.Date(2026, 12, 1, 10, 0, i, 0, time.UTC), RequestID: fmt.Sprintf("r-%d", i),
			Caller: c.caller.AuditCaller(), Method: c.method, Path: c.path, Action: m.Action, WouldDeny: dec.WouldDeny, Reason: dec.Reason}
		for _, f := range dec.Facts {
			rec.Facts = append(rec.Facts, audit.FactResult(f))
		}
		switch {
		case dec.Allow:
			rec.Decision, rec.Status = audit.DecisionAllow, c.status
			if rec.Status == 0 {
				rec.Status = http.StatusOK
			}
		case dec.Status == http.StatusForbidden:
			rec.Decision, rec.Status = audit.DecisionDeny, dec.Status
		default:
			rec.Decision, rec.Status = audit.DecisionError, dec.Status
		}
		if c.judged != nil {
			rec.Caller.ContainerName, rec.Caller.Subjects = c.container, c.judged
		}
		if c.record != nil {
			c.record(rec)
		}
		l.Write(rec)
	}
}

// writeTrail writes the calls' records to a new trail file.
func writeTrail(t *testing.T, rows string, auditMode bool, calls []call) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	recordCalls(t, l, rows, auditMode, calls)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
