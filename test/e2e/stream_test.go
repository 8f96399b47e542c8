package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

const bigSize = 100 << 20 // 100 MiB

// ticker is a container command that prints "line N" ten times a second.
var ticker = []string{"sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.1; done"}

// consecutive checks that out is "line 0", "line 1", ... with no gap or
// repetition, at least min lines: a stream that lost or repeated output is
// not what the container printed.
func consecutive(out string, min int) error {
	ls := lines(out)
	if len(ls) < min {
		return fmt.Errorf("%d lines, want at least %d: %q", len(ls), min, out)
	}
	for i, l := range ls {
		if l != "line "+strconv.Itoa(i) {
			return fmt.Errorf("line %d is %q, want %q", i, l, "line "+strconv.Itoa(i))
		}
	}
	return nil
}

func TestLogsFollowEndsWhenTheContainerStops(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, ticker[0], ticker[1], ticker[2])
		logs := s.background(nil, "logs", "-f", name)
		if !logs.waitFor("line 5\n", 20*time.Second) {
			out, errOut := logs.output()
			s.t.Fatalf("%s: logs -f shows no output as it happens: %q %q", s.side.name, out, errOut)
		}
		s.must("stop", "-t", "1", name)
		r, ok := logs.wait(15 * time.Second)
		if !ok {
			s.t.Fatalf("%s: logs -f still following 15s after the container stopped: %v", s.side.name, r)
		}
		if err := consecutive(r.stdout, 6); err != nil {
			s.t.Errorf("%s: logs -f: %v", s.side.name, err)
		}
		s.maskLast("(lines checked)", "")                // how many lines there are is timing
		s.expect(r, "GET /containers/*/logs 200 stream") // the CLI follows by ID
	})
}

func TestKillingALogsFollowClientWedgesNothing(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, ticker[0], ticker[1], ticker[2])
		g := s.env.Dockgate
		fdsBefore := 0
		if s.side.proxied {
			fdsBefore, _ = testbed.FDCount(g.Pid)
		}
		logs := s.background(nil, "logs", "-f", name)
		if !logs.waitFor("line 3\n", 20*time.Second) {
			s.t.Fatalf("%s: logs -f shows no output", s.side.name)
		}
		logs.kill()

		// dockgate still answers, the container still talks and stops.
		start := time.Now()
		r := s.docker("ps", "--filter", "name="+name, "--format", "{{.Names}} {{.State}}")
		if took := time.Since(start); took > 10*time.Second {
			s.t.Errorf("%s: ps took %v after a logs -f client was killed", s.side.name, took)
		}
		if r.stdout != name+" running\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		r = s.look("logs", "--tail", "1", name)
		if !strings.HasPrefix(r.stdout, "line ") {
			s.t.Errorf("%s: logs after the kill: %v", s.side.name, r)
		}
		s.must("stop", "-t", "1", name)
		if !s.side.proxied {
			return
		}
		// The abandoned stream is over for dockgate too: on record, fds back.
		w := auditWant{pid: logs.cmd.Process.Pid, method: "GET", path: "/containers/*/logs", stream: true, what: "the killed logs -f"}
		s.audits = append(s.audits, w)
		if missing := findMissingWait(s, []auditWant{w}, auditWait); len(missing) > 0 {
			s.t.Errorf("dockgate did not finish the request of a killed logs -f client: %v", missing)
		}
		if err := fdsBackTo(g.Pid, fdsBefore+1, 5*time.Second); err != nil {
			s.t.Errorf("after a killed logs -f client: %v", err)
		}
	})
}

// findMissingWait polls the audit log until wants are there or wait passes.
func findMissingWait(s *session, wants []auditWant, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		recs, err := s.env.Dockgate.AuditRecords()
		if err != nil {
			return []string{err.Error()}
		}
		missing := findMissing(recs, wants, s.start)
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fdsBackTo waits until pid holds at most want fds.
func fdsBackTo(pid, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := testbed.FDCount(pid)
		if err != nil {
			return err
		}
		if n <= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockgate holds %d fds %v later, want at most %d", n, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestEventsStreamAsTheyHappen(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		label := "e2e.stream=" + s.side.name
		s.rmContainer(name)
		// --since replays what happened before the stream was set up, so the
		// test does not race the subscription.
		since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
		events := s.background(nil, "events", "--since", since, "--filter", "label="+label, "--format", "{{.Action}} {{.Actor.Attributes.name}}")
		s.must("create", "--name", name, "--label", label, image, "true")
		if !events.waitFor("create "+name+"\n", 10*time.Second) {
			out, errOut := events.output()
			s.t.Fatalf("%s: events did not show the create as it happened: %q %q", s.side.name, out, errOut)
		}
		s.must("rm", name)
		if !events.waitFor("destroy "+name+"\n", 10*time.Second) {
			out, _ := events.output()
			s.t.Fatalf("%s: events did not show the destroy as it happened: %q", s.side.name, out)
		}
		out, _ := events.output()
		s.note("events", out)
		events.kill()
		s.expect(result{pid: events.cmd.Process.Pid}, "GET /events 200 stream")
	})
}

// randomFile writes size pseudo-random bytes and returns their sha256.
func randomFile(t *testing.T, name string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8([32]byte{byte(seed)}), size); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSHA(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestCpCarries100MiBBothWays(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "big")
	sum := randomFile(t, src, bigSize, 1)
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.runTimeout(2*cmdTimeout, nil, "cp", src, name+":/tmp/big")
		if r.code != 0 {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		s.expect(r, "PUT /containers/"+name+"/archive 200 in>="+strconv.Itoa(bigSize))
		r = s.must("exec", name, "sha256sum", "/tmp/big")
		if r.stdout != sum+"  /tmp/big\n" {
			s.t.Errorf("%s: the copy in the container is not the file: %v, want %s", s.side.name, r, sum)
		}
		out := filepath.Join(dir, "out-"+s.side.name)
		r = s.runTimeout(2*cmdTimeout, nil, "cp", name+":/tmp/big", out)
		if r.code != 0 {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		s.expect(r, "GET /containers/"+name+"/archive 200 out>="+strconv.Itoa(bigSize))
		if got := fileSHA(s.t, out); got != sum {
			s.t.Errorf("%s: the copy out of the container has sha256 %s, want %s", s.side.name, got, sum)
		}
		os.Remove(out)
		s.maskLast(strings.ReplaceAll(r.stdout, out, "<out>"), strings.ReplaceAll(r.stderr, out, "<out>"))
	})
}

func TestSaveLoadCarries100MiBImage(t *testing.T) {
	env := testbed.Shared(t)
	ref := "e2e/big:1"
	h := sha256.New()
	data := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{2}), bigSize), h)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.Dockerd.ImportImage(ctx, ref, testbed.File{Name: "big", Size: bigSize, Data: data}); err != nil {
		t.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dir := t.TempDir()
	t.Cleanup(func() { dockerDirect(t, env, "rmi", "-f", ref) })
	compare(t, newCLI(t), nil, func(s *session) {
		tarball := filepath.Join(dir, s.side.name+".tar")
		r := s.runTimeout(2*cmdTimeout, nil, "save", "-o", tarball, ref)
		if r.code != 0 {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		s.expect(r, "GET /images/get 200 out>="+strconv.Itoa(bigSize))
		s.note("saved sha256", fileSHA(s.t, tarball))
		s.must("rmi", ref)
		r = s.runTimeout(2*cmdTimeout, nil, "load", "-i", tarball)
		if r.code != 0 || !strings.Contains(r.stdout, "Loaded image: "+ref) {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		s.expect(r, "POST /images/load 200 in>="+strconv.Itoa(bigSize))
		os.Remove(tarball)
		r = s.must("run", "--rm", ref, "sha256sum", "/big")
		if r.stdout != sum+"  /big\n" {
			s.t.Errorf("%s: the loaded image's file is not the imported one: %v, want %s", s.side.name, r, sum)
		}
	})
}

// dockerDirect runs a docker CLI command against dockerd itself, for setup
// and cleanup outside the compared flows.
func dockerDirect(t *testing.T, env *testbed.Env, args ...string) {
	s := &session{t: t, top: t, env: env, side: side{name: sideDirect, host: env.DirectHost()}, cli: newCLI(t), home: t.TempDir()}
	s.quiet(args...)
}
