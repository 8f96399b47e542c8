package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/test/testbed"
)

func TestVersionShowsTheServer(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		r := s.docker("version")
		if r.code != 0 || !strings.Contains(r.stdout, "Server:") || !strings.Contains(r.stdout, "API version:") {
			s.t.Fatalf("%s: want a Server section and exit 0: %v", s.side.name, r)
		}
		s.expect(r, "GET /version 200")
	})
}

// volatileInfo are the `docker info` keys whose values change by themselves.
var volatileInfo = regexp.MustCompile(`(?m)^(\s*(?:Goroutines|File Descriptors|System Time|EventsListeners|Containers|Running|Paused|Stopped|Images)):.*$`)

// runtimesLine lists the daemon's runtimes, in the order of a Go map.
var runtimesLine = regexp.MustCompile(`(?m)^( Runtimes:)(.*)$`)

func TestInfoDescribesTheDaemon(t *testing.T) {
	norm := func(s string) string {
		s = volatileInfo.ReplaceAllString(s, "$1: <v>")
		s = runtimesLine.ReplaceAllStringFunc(s, func(l string) string {
			f := strings.Fields(strings.TrimPrefix(l, " Runtimes:"))
			slices.Sort(f)
			return " Runtimes: " + strings.Join(f, " ")
		})
		return shape(s)
	}
	compare(t, newCLI(t), norm, func(s *session) {
		r := s.docker("info")
		if r.code != 0 || !strings.Contains(r.stdout, "Server Version:") {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		s.expect(r, "GET /info 200")
	})
}

func TestPsListsContainersOfEveryState(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		created, exited := s.name("created"), s.name("exited")
		s.rmContainer(created)
		s.rmContainer(exited)
		s.must("create", "--name", created, image, "sleep", "600")
		s.must("run", "--name", exited, image, "true")
		r := s.docker("ps", "-a", "--filter", "name="+s.name(""), "--format", "{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Ports}}")
		want := []string{exited + `|` + image + `|"true"|exited|`, created + `|` + image + `|"sleep 600"|created|`}
		if got := lines(r.stdout); strings.Join(got, "\n") != strings.Join(want, "\n") {
			s.t.Errorf("%s: ps -a shows %q, want %q", s.side.name, got, want)
		}
		s.expect(r, "GET /containers/json 200")
		// The table's time columns tick; its header and rows must not differ.
		r = s.look("ps", "-a", "--filter", "name="+s.name(""))
		ls := strings.Split(strings.TrimSpace(r.stdout), "\n")
		s.note("ps -a header", strings.Join(strings.Fields(ls[0]), " "))
		s.note("ps -a rows", string(rune('0'+len(ls)-1)))
		s.expect(r, "GET /containers/json 200")
	})
}

func TestImagesListsTheBusyboxImage(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		r := s.must("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}", "test/busybox")
		if !strings.HasPrefix(r.stdout, image+" ") {
			s.t.Errorf("%s: images shows %q, want %s", s.side.name, r.stdout, image)
		}
		s.expect(r, "GET /images/json 200")
		r = s.look("images", "test/busybox")
		ls := strings.Split(strings.TrimSpace(r.stdout), "\n")
		s.note("images header", strings.Join(strings.Fields(ls[0]), " "))
		for _, l := range ls[1:] { // REPOSITORY TAG ID CREATED... SIZE
			f := strings.Fields(l)
			s.note("images row", strings.Join(f[:3], " ")+" "+f[len(f)-1])
		}
	})
}

func TestRunRemovesTheContainerAndPrintsItsOutput(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		r := s.docker("run", "--rm", "--name", name, image, "echo", "hello")
		if r.code != 0 || r.stdout != "hello\n" {
			s.t.Errorf("%s: want hello and exit 0: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/create 201", "POST /containers/*/attach 101 hijacked", "POST /containers/*/start 204", "POST /containers/*/wait 200")
		r = s.docker("ps", "-a", "-q", "--filter", "name="+name)
		if r.stdout != "" {
			s.t.Errorf("%s: --rm left the container behind: %v", s.side.name, r)
		}
	})
}

func TestRunPropagatesTheExitCodeAndBothStreams(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		r := s.docker("run", "--rm", image, "sh", "-c", "exit 3")
		if r.code != 3 {
			s.t.Errorf("%s: want exit 3: %v", s.side.name, r)
		}
		r = s.docker("run", "--rm", image, "sh", "-c", "echo out; echo err >&2; exit 42")
		if r.code != 42 || r.stdout != "out\n" || r.stderr != "err\n" {
			s.t.Errorf("%s: want out, err and exit 42: %v", s.side.name, r)
		}
	})
}

func TestDaemonErrorsReachTheClient(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		for _, args := range [][]string{
			{"start", "e2e-no-such-container"},
			{"rm", "e2e-no-such-container"},
			{"inspect", "e2e-no-such-container"},
			{"network", "rm", "e2e-no-such-network"},
			{"run", "--rm", image, "/no/such/binary"},
		} {
			r := s.docker(args...)
			if r.code == 0 || r.stderr == "" {
				s.t.Errorf("%s: want an error: %v", s.side.name, r)
			}
		}
	})
}

func TestWaitReturnsTheExitCode(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sh", "-c", "sleep 1; exit 5")
		r := s.docker("wait", name)
		if r.code != 0 || r.stdout != "5\n" {
			s.t.Errorf("%s: want 5: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/"+name+"/wait 200")
	})
}

func TestStopEndsAContainer(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.docker("stop", "-t", "1", name)
		if r.code != 0 || r.stdout != name+"\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/"+name+"/stop 204")
		s.docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name)
	})
}

func TestKillEndsAContainer(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.docker("kill", name)
		if r.code != 0 || r.stdout != name+"\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		s.expect(r, "POST /containers/"+name+"/kill 204")
		s.docker("wait", name)
		r = s.docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name)
		if r.stdout != "false 137\n" {
			s.t.Errorf("%s: want a killed container: %v", s.side.name, r)
		}
	})
}

func TestRmForceRemovesARunningContainer(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		r := s.docker("rm", "-f", name)
		if r.code != 0 || r.stdout != name+"\n" {
			s.t.Errorf("%s: %v", s.side.name, r)
		}
		s.expect(r, "DELETE /containers/"+name+" 204")
		if r := s.docker("inspect", name); r.code == 0 {
			s.t.Errorf("%s: container still there: %v", s.side.name, r)
		}
	})
}

func TestVolumeCreateListRemove(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("v")
		s.defer_(func() { s.quiet("volume", "rm", "-f", name) })
		r := s.must("volume", "create", name)
		s.expect(r, "POST /volumes/create 201")
		r = s.must("volume", "ls", "--filter", "name="+name, "--format", "{{.Driver}} {{.Name}}")
		if r.stdout != "local "+name+"\n" {
			s.t.Errorf("%s: volume ls: %v", s.side.name, r)
		}
		s.expect(r, "GET /volumes 200")
		r = s.must("volume", "rm", name)
		s.expect(r, "DELETE /volumes/"+name+" 204")
		s.docker("volume", "ls", "-q", "--filter", "name="+name)
	})
}

func TestNetworkCreateConnectRemove(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		a, b, c := s.name("a"), s.name("b"), s.name("c")
		s.rmContainer(c)
		s.defer_(func() { s.quiet("network", "rm", a, b) })
		r := s.must("network", "create", a)
		s.expect(r, "POST /networks/create 201")
		s.must("network", "create", b)
		s.must("run", "-d", "--name", c, "--network", a, image, "sleep", "600")
		r = s.must("network", "connect", b, c)
		s.expect(r, "POST /networks/"+b+"/connect 200")
		r = s.must("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", c)
		if r.stdout != a+" "+b+" \n" {
			s.t.Errorf("%s: want the container on both networks: %v", s.side.name, r)
		}
		s.must("network", "disconnect", b, c)
		s.must("rm", "-f", c)
		r = s.must("network", "rm", a, b)
		s.expect(r, "DELETE /networks/"+a+" 204", "DELETE /networks/"+b+" 204")
	})
}

func TestEventsSinceUntilReplaysHistory(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		label := "e2e.events=" + s.side.name
		s.rmContainer(name)
		since := time.Now().Add(-time.Second)
		s.must("create", "--name", name, "--label", label, image, "true")
		s.must("rm", name)
		until := time.Now().Add(time.Second)
		time.Sleep(time.Until(until)) // --until in the future would wait for it
		r := s.docker("events", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano),
			"--filter", "label="+label, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
		want := "container create " + name + "\ncontainer destroy " + name + "\n"
		if r.code != 0 || r.stdout != want {
			s.t.Errorf("%s: want %q: %v", s.side.name, want, r)
		}
		s.expect(r, "GET /events 200")
	})
}

func TestStatsNoStreamReportsTheContainer(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		name := s.name("c")
		s.rmContainer(name)
		s.must("run", "-d", "--name", name, image, "sleep", "600")
		// The numbers change from one sample to the next; the table does not.
		r := s.look("stats", "--no-stream", name)
		ls := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(ls) != 2 || !strings.Contains(ls[1], " "+name+" ") {
			s.t.Fatalf("%s: want a header and the container's row: %v", s.side.name, r)
		}
		s.note("stats header", strings.Join(strings.Fields(ls[0]), " "))
		s.note("stats row", shape(strings.Fields(ls[1])[0]+" "+strings.Fields(ls[1])[1]))
		s.expect(r, "GET /containers/"+name+"/stats 200")
	})
}

func TestTagPushPullThroughTheRegistry(t *testing.T) {
	env := testbed.Shared(t)
	if env.Registry == nil {
		t.Skip("no registry in this bed")
	}
	digestLine := regexp.MustCompile(`(?m)^.*digest: sha256:[0-9a-f]{64}.*$`)
	// Each side pushes its own repository: a second push of the same one
	// would report "Layer already exists" instead of "Pushed".
	sameSide := strings.NewReplacer("push-"+sideDirect, "push-<side>", "push-"+sideProxied, "push-<side>")
	compare(t, newCLI(t), func(s string) string { return shape(sameSide.Replace(s)) }, func(s *session) {
		repo := env.Registry.Addr + "/e2e/push-" + s.side.name
		ref := repo + ":1"
		s.defer_(func() { s.quiet("rmi", "-f", ref) })
		r := s.must("tag", image, ref)
		s.expect(r, "POST /images/test/busybox:1/tag 201")
		r = s.look("push", ref)
		if r.code != 0 {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		pushed := digestLine.FindString(r.stdout)
		s.note("push digest", strings.ReplaceAll(pushed, repo, "<repo>"))
		s.expect(r, "POST /images/"+repo+"/push 200")
		s.must("rmi", ref)
		r = s.look("pull", ref)
		if r.code != 0 || !strings.Contains(r.stdout, "Status: Downloaded newer image for "+ref) {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		for _, l := range lines(r.stdout) {
			if strings.HasPrefix(l, "Digest: ") || strings.HasPrefix(l, "Status: ") {
				s.note("pull", strings.ReplaceAll(l, repo, "<repo>"))
			}
		}
		s.expect(r, "POST /images/create 200")
		// Engine 29's containerd image store lists a RepoDigest for every
		// name of the image (test/busybox@… too): the repository's own is
		// the one that must name the pushed digest.
		r = s.must("image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", ref)
		var own string
		for _, l := range lines(r.stdout) {
			if strings.HasPrefix(l, repo+"@sha256:") {
				own = l
			}
		}
		if own == "" || !strings.Contains(pushed, strings.TrimPrefix(own, repo+"@")) {
			s.t.Errorf("%s: RepoDigests %q do not name the pushed digest %q", s.side.name, r.stdout, pushed)
		}
		s.note("repo digest", strings.ReplaceAll(own, repo, "<repo>"))
	})
}

func TestBuildWithTheClassicBuilder(t *testing.T) {
	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "Dockerfile"), "FROM "+image+"\nRUN echo built > /built && echo step output\nCOPY hello.txt /hello.txt\n")
	writeFile(t, filepath.Join(ctxDir, "hello.txt"), "hello from the context\n")
	// Through dockgate the FROM step names the base by the ID judged
	// (pinned, docs/policy-language.md), directly by the name.
	fromStep := regexp.MustCompile(`(Step [0-9]+/[0-9]+ : FROM )\S+`)
	norm := func(s string) string { return shape(fromStep.ReplaceAllString(s, "${1}<base>")) }
	compare(t, newCLI(t), norm, func(s *session) {
		ref := "e2e/built:1"
		s.extra = []string{"DOCKER_BUILDKIT=0"}
		s.defer_(func() { s.quiet("rmi", "-f", ref) })
		r := s.docker("build", "--no-cache", "-t", ref, ctxDir)
		if r.code != 0 || !strings.Contains(r.stdout, "Successfully tagged "+ref) || !strings.Contains(r.stdout, "step output") {
			s.t.Fatalf("%s: %v", s.side.name, r)
		}
		s.expect(r, "POST /build 200")
		if s.side.proxied {
			base := strings.TrimSpace(s.look("image", "inspect", "--format", "{{.Id}}", image).stdout)
			if !strings.Contains(r.stdout, " : FROM "+base+"\n") {
				s.t.Errorf("the FROM step is not pinned to %s: %q", base, r.stdout)
			}
			// The build's record names the image it made.
			id := strings.TrimSpace(s.look("image", "inspect", "--format", "{{.Id}}", ref).stdout)
			rec := s.finalRecord(r.pid, "the build", func(p string) bool { return p == "/build" })
			if rec["object_id"] != id {
				s.t.Errorf("build record object_id %v, want the built image %s", rec["object_id"], id)
			}
		}
		r = s.docker("run", "--rm", ref, "cat", "/built", "/hello.txt")
		if r.stdout != "built\nhello from the context\n" {
			s.t.Errorf("%s: the built image lacks its files: %v", s.side.name, r)
		}
	})
}

func writeFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
