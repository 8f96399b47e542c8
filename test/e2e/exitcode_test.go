package e2e

import (
	"strings"
	"testing"
	"time"
)

// The final record of an exec session carries the exec'd process's exit
// code, read from dockerd after the session ended.
func TestExecRecordCarriesTheExitCode(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.docker("exec", name, "sh", "-c", "exit 4")
		if r.code != 4 {
			s.t.Errorf("%s: want exit 4: %v", s.side.name, r)
		}
		s.expect(r, "POST /exec/*/start 101 hijacked")
		if !s.side.proxied {
			return
		}
		rec := s.finalRecord(r.pid, "the exec start", func(p string) bool {
			return strings.HasPrefix(p, "/exec/") && strings.HasSuffix(p, "/start")
		})
		if num(rec["exit_code"]) != 4 {
			s.t.Errorf("exec record %v: exit_code %v, want 4", rec["request_id"], rec["exit_code"])
		}
	})
}

// The final record of an attach session carries the container's exit code
// when the session ended because the container exited. (With --rm the
// container may be gone before dockgate asks; the record then has none.)
func TestAttachRecordCarriesTheExitCode(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		r := s.docker("run", "--name", name, image, "sh", "-c", "exit 5")
		if r.code != 5 {
			s.t.Errorf("%s: want exit 5: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/*/attach 101 hijacked")
		if !s.side.proxied {
			return
		}
		rec := s.finalRecord(r.pid, "the attach", func(p string) bool { return strings.HasSuffix(p, "/attach") })
		if num(rec["exit_code"]) != 5 {
			s.t.Errorf("attach record %v: exit_code %v, want 5", rec["request_id"], rec["exit_code"])
		}
	})
}

// finalRecord waits for the final audit record (not a start record) of a
// request by process pid whose path (without version and query) match
// accepts, and fails the test when none comes.
func (s *session) finalRecord(pid int, what string, match func(path string) bool) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(auditWait)
	for {
		recs, err := s.env.Dockgate.AuditRecords()
		if err != nil {
			s.t.Fatal(err)
		}
		for _, rec := range recs {
			if callerPid(rec) == pid && rec["phase"] == nil && match(auditPath(rec)) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no final record of %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
