package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// tty starts a client command on a pseudo-terminal, as typed by a person.
func (s *session) tty(args ...string) *ptyProc {
	s.t.Helper()
	ctx, cancel := contextWithTimeout(cmdTimeout)
	s.defer_(cancel)
	p, err := startPTY(s.command(ctx, args...))
	if err != nil {
		s.t.Fatalf("%s: start docker %s on a terminal: %v", s.side.name, strings.Join(args, " "), err)
	}
	s.defer_(func() { _, _ = p.Wait(5 * time.Second) })
	return p
}

// finish waits for a terminal command and records it; output is compared
// from the first line that contains from.
func (s *session) finish(p *ptyProc, args []string) result {
	s.t.Helper()
	code, err := p.Wait(30 * time.Second)
	if err != nil {
		s.t.Errorf("%s: docker %s: %v", s.side.name, strings.Join(args, " "), err)
	}
	r := result{args: args, stdout: p.Output(), code: code, pid: p.cmd.Process.Pid}
	s.record(r, true)
	return r
}

func TestRunStdinEOFReachesTheContainer(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		r := s.run(strings.NewReader("hi\n"), "run", "-i", "--rm", image, "cat")
		if r.code != 0 || r.stdout != "hi\n" {
			s.t.Errorf("%s: want hi and exit 0: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/create 201", "POST /containers/*/attach 101 hijacked", "POST /containers/*/start 204", "POST /containers/*/wait 200")
	})
}

func TestRunStdinCarries8MiBWhileOutputFlows(t *testing.T) {
	data := make([]byte, 8<<20)
	_, _ = io.ReadFull(rand.NewChaCha8([32]byte{3}), data)
	sum := sha256.Sum256(data)
	compare(t, newCLI(t), nil, func(s *session) {
		// tee echoes everything back while stdin is still open.
		r := s.run(bytes.NewReader(data), "run", "-i", "--rm", image, "sh", "-c", "tee /dev/stderr | sha256sum")
		if r.code != 0 || r.stdout != hex.EncodeToString(sum[:])+"  -\n" || r.stderr != string(data) {
			s.t.Errorf("%s: stdin did not arrive whole (exit %d, stdout %q, %d bytes echoed)", s.side.name, r.code, r.stdout, len(r.stderr))
		}
		s.maskLast(r.stdout, "(8 MiB checked)")
		s.expect(r, "POST /containers/*/attach 101 hijacked in>=8388608 out>=8388608")
	})
}

func TestRunTTYShowsATerminal(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		args := []string{"run", "-t", "--rm", image, "sh", "-c", "tty; echo done"}
		r := s.finish(s.tty(args...), args)
		if r.code != 0 || r.stdout != "/dev/pts/0\ndone\n" {
			s.t.Errorf("%s: want the container on a terminal: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/*/attach 101 hijacked")
	})
}

func TestRunInteractiveTTYTakesTypedInput(t *testing.T) {
	compare(t, newCLI(t), func(string) string { return "" }, func(s *session) {
		args := []string{"run", "-it", "--rm", image, "sh"}
		p := s.tty(args...)
		typeAndSee(s, p, "", "# ")
		typeAndSee(s, p, "echo $((6*7))\r", "42")
		typeAndSee(s, p, "exit 5\r", "")
		r := s.finish(p, args)
		if r.code != 5 {
			s.t.Errorf("%s: want exit 5: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/*/attach 101 hijacked", "POST /containers/*/resize 200")
	})
}

// typeAndSee types keys (if any) and waits for the terminal to show want.
func typeAndSee(s *session, p *ptyProc, keys, want string) {
	s.t.Helper()
	if keys != "" {
		if err := p.Type(keys); err != nil {
			s.t.Fatalf("%s: type %q: %v", s.side.name, keys, err)
		}
	}
	if want != "" {
		if err := p.Expect(want, 15*time.Second); err != nil {
			s.t.Fatalf("%s: after typing %q: %v", s.side.name, keys, err)
		}
	}
}

func TestExecRunsInARunningContainer(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.docker("exec", name, "echo", "hi")
		if r.code != 0 || r.stdout != "hi\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/"+name+"/exec 201", "POST /exec/*/start 101 hijacked", "GET /exec/*/json 200")
		r = s.docker("exec", name, "sh", "-c", "echo err >&2; exit 4")
		if r.code != 4 || r.stderr != "err\n" {
			s.t.Errorf("%s: want err and exit 4: %v", s.side.name, r)
		}
		r = s.docker("exec", "-d", name, "sleep", "1")
		s.expect(r, "POST /exec/*/start 200")
	})
}

func TestExecStdinEOFReachesTheProcess(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.run(strings.NewReader("a\nb\n"), "exec", "-i", name, "sh", "-c", "cat; echo after-eof")
		if r.code != 0 || r.stdout != "a\nb\nafter-eof\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		s.expect(r, "POST /exec/*/start 101 hijacked")
	})
}

func TestExecTTYTakesTypedInput(t *testing.T) {
	compare(t, newCLI(t), func(string) string { return "" }, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		args := []string{"exec", "-t", name, "tty"}
		r := s.finish(s.tty(args...), args)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "/dev/pts/") {
			s.t.Errorf("%s: want a terminal: %v", s.side.name, r)
		}
		args = []string{"exec", "-it", name, "sh"}
		p := s.tty(args...)
		typeAndSee(s, p, "", "# ")
		typeAndSee(s, p, "echo $((6*7))\r", "42")
		typeAndSee(s, p, "exit 6\r", "")
		r = s.finish(p, args)
		if r.code != 6 {
			s.t.Errorf("%s: want exit 6: %v", s.side.name, r)
		}
		s.expect(r, "POST /exec/*/start 101 hijacked", "POST /exec/*/resize 200")
	})
}

func TestAttachCarriesStdinAndOutput(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "-i", "--name", name, image, "sh", "-c", "read x; echo out $x; echo err $x >&2; read y; exit 7")
		// dockerd ends an attach's output when its stdin ends (the container
		// was not started with StdinOnce), so stdin stays open until the
		// output is there.
		a, pw := s.backgroundStdin("attach", name)
		if _, err := io.WriteString(pw, "go\n"); err != nil {
			s.t.Fatal(err)
		}
		if !a.waitFor("out go\n", 15*time.Second) || !a.waitForStderr("err go\n", 15*time.Second) {
			out, errOut := a.output()
			s.t.Fatalf("%s: attach shows %q %q", s.side.name, out, errOut)
		}
		if _, err := io.WriteString(pw, "bye\n"); err != nil {
			s.t.Fatal(err)
		}
		r, ok := a.wait(15 * time.Second)
		if !ok || r.code != 7 || r.stdout != "out go\n" || r.stderr != "err go\n" {
			s.t.Errorf("%s: want out, err and exit 7: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/"+name+"/attach 101 hijacked")
	})
}

func TestAttachShowsOutputAfterAttaching(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, ticker[0], ticker[1], ticker[2])
		a := s.background(nil, "attach", "--no-stdin", name)
		if !a.waitFor("line ", 15*time.Second) {
			s.t.Fatalf("%s: attach shows no output", s.side.name)
		}
		s.must("stop", "-t", "1", name)
		r, ok := a.wait(15 * time.Second)
		if !ok {
			s.t.Fatalf("%s: attach still running after the container stopped", s.side.name)
		}
		if r.code != 137 {
			s.t.Errorf("%s: want the container's exit code 137: %v", s.side.name, r)
		}
		s.maskLast("(output checked)", r.stderr)
		s.expect(r, "POST /containers/"+name+"/attach 101 hijacked")
	})
}

func TestStartAttachInteractiveCarriesStdin(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("create", "-i", "--name", name, image, "sh", "-c", "read x; echo got $x")
		r := s.run(strings.NewReader("hi\n"), "start", "-ai", name)
		if r.code != 0 || r.stdout != "got hi\n" {
			s.t.Errorf("%s: want got hi: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/*/attach 101 hijacked", "POST /containers/*/start 204") // by ID
	})
}

func TestKillingAnExecClientWedgesNothing(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		fdsBefore := 0
		if s.side.proxied {
			fdsBefore, _ = fdCount(s)
		}
		e, pw := s.backgroundStdin("exec", "-i", name, "cat")
		if _, err := io.WriteString(pw, "ping\n"); err != nil {
			s.t.Fatal(err)
		}
		if !e.waitFor("ping\n", 15*time.Second) {
			s.t.Fatalf("%s: exec -i echoes nothing", s.side.name)
		}
		e.kill()
		r := s.docker("exec", name, "echo", "still here")
		if r.stdout != "still here\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		if !s.side.proxied {
			return
		}
		w := auditWant{pid: e.cmd.Process.Pid, method: "POST", path: "/exec/*/start", stream: true, hijack: true, what: "the killed exec -i"}
		if missing := findMissingWait(s, []auditWant{w}, auditWait); len(missing) > 0 {
			s.t.Errorf("dockgate did not finish the session of a killed exec -i client: %v", missing)
		}
		if err := fdsBackTo(s.env.Dockgate.Pid, fdsBefore+1, 5*time.Second); err != nil {
			s.t.Errorf("after a killed exec -i client: %v", err)
		}
	})
}
