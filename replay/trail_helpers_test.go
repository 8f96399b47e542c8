package replay

import (
	"testing"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
	"github.com/dockgate/dockgate/internal/trailtest"
	"github.com/dockgate/dockgate/proxy"
)

// The trails of these tests are written as serve writes them
// (internal/trailtest).

var (
	alice   = &proxy.Caller{UID: 1000, GID: 1000, GIDs: []uint32{1000, 998}, User: "alice", Groups: []string{"alice", "docker"}, Exe: "/usr/bin/docker"}
	jenkins = &proxy.Caller{UID: 1001, GID: 1001, GIDs: []uint32{1001}, User: "jenkins", Groups: []string{"jenkins"}, Exe: "/usr/bin/docker", Unit: "jenkins.service"}
	robot   = &proxy.Caller{UID: ^uint32(0), GID: ^uint32(0), Cert: "deploy-bot", CertSANs: []string{"cert-dns:deploy.example.com"}}
)

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
