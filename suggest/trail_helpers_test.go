package suggest

import (
	"testing"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/trailtest"
)

// The trails of these tests are written as serve writes them
// (internal/trailtest).

// call is one request of a test trail.
type call = trailtest.Call

func image(v string) policy.Fact   { return trailtest.Image(v) }
func fact(k, v string) policy.Fact { return trailtest.Fact(k, v) }

func writePolicy(t *testing.T, rows string) string { return trailtest.WritePolicy(t, rows) }

func loadPolicy(t *testing.T, rows string) *policy.Policy { return trailtest.LoadPolicy(t, rows) }

func recordCalls(t *testing.T, l *audit.Logger, rows string, auditMode bool, calls []call) {
	t.Helper()
	trailtest.RecordCalls(t, l, rows, auditMode, calls)
}

func writeTrail(t *testing.T, rows string, auditMode bool, calls []call) string {
	t.Helper()
	return trailtest.WriteTrail(t, rows, auditMode, calls)
}
