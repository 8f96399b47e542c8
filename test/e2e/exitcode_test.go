package e2e

import (
	"strings"
	"testing"
	"time"
)

// The final record of an exec session carries the exec'd process's exit
// code, read from dockerd after the session ended (issue 6, part 2).
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
		deadline := time.Now().Add(auditWait)
		for {
			recs, err := s.env.Dockgate.AuditRecords()
			if err != nil {
				s.t.Fatal(err)
			}
			for _, rec := range recs {
				if callerPid(rec) == r.pid && rec["phase"] == nil && strings.HasSuffix(auditPath(rec), "/start") && strings.Contains(auditPath(rec), "/exec/") {
					if num(rec["exit_code"]) != 4 {
						s.t.Errorf("exec record %v: exit_code %v, want 4", rec["request_id"], rec["exit_code"])
					}
					return
				}
			}
			if time.Now().After(deadline) {
				s.t.Fatal("no final record of the exec start")
			}
			time.Sleep(100 * time.Millisecond)
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
		deadline := time.Now().Add(auditWait)
		for {
			recs, err := s.env.Dockgate.AuditRecords()
			if err != nil {
				s.t.Fatal(err)
			}
			for _, rec := range recs {
				if callerPid(rec) == r.pid && rec["phase"] == nil && strings.HasSuffix(auditPath(rec), "/attach") {
					if num(rec["exit_code"]) != 5 {
						s.t.Errorf("attach record %v: exit_code %v, want 5", rec["request_id"], rec["exit_code"])
					}
					return
				}
			}
			if time.Now().After(deadline) {
				s.t.Fatal("no final record of the attach")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
