package e2e

import (
	"os"
	"strings"
	"testing"
)

// oldCLI is Debian's docker 20.10 CLI, where it is installed: an older
// client that speaks API 1.41 and its own hijack dialect.
func oldCLI(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(oldCLIPath); err != nil {
		t.Skipf("no %s on this machine", oldCLIPath)
	}
	return oldCLIPath
}

func TestOldCLIRunPrintsOutputAndExitCode(t *testing.T) {
	compare(t, oldCLI(t), nil, func(s *session) {
		r := s.docker("run", "--rm", image, "echo", "hello")
		if r.code != 0 || r.stdout != "hello\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/create 201", "POST /containers/*/attach 101 hijacked", "POST /containers/*/start 204")
		r = s.docker("run", "--rm", image, "sh", "-c", "echo err >&2; exit 3")
		if r.code != 3 || r.stderr != "err\n" {
			s.t.Errorf("%s: want err and exit 3: %v", s.side.name, r)
		}
	})
}

func TestOldCLIRunStdinEOFReachesTheContainer(t *testing.T) {
	compare(t, oldCLI(t), nil, func(s *session) {
		r := s.run(strings.NewReader("hi\n"), "run", "-i", "--rm", image, "cat")
		if r.code != 0 || r.stdout != "hi\n" {
			s.t.Errorf("%s: want hi and exit 0: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/*/attach 101 hijacked")
	})
}

func TestOldCLIExecWithAndWithoutStdin(t *testing.T) {
	compare(t, oldCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.docker("exec", name, "sh", "-c", "echo hi; exit 4")
		if r.code != 4 || r.stdout != "hi\n" {
			s.t.Errorf("%s: want hi and exit 4: %v", s.side.name, r)
		}
		s.expect(r, "POST /exec/*/start 101 hijacked")
		r = s.run(strings.NewReader("a\nb\n"), "exec", "-i", name, "sh", "-c", "cat; echo after-eof")
		if r.code != 0 || r.stdout != "a\nb\nafter-eof\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
	})
}

func TestOldCLIPsListsContainers(t *testing.T) {
	compare(t, oldCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("create", "--name", name, image, "true")
		r := s.docker("ps", "-a", "--filter", "name="+name, "--format", "{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}")
		if r.stdout != name+"|"+image+`|"true"|Created`+"\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		s.expect(r, "GET /containers/json 200")
	})
}
